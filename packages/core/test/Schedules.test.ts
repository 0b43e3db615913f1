import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, type Schedule, TestClock } from "effect"
import * as Schedules from "../src/Schedules.js"

/** Runs an always-failing effect on `schedule` and returns how many attempts it made and how long it took. */
const exhaust = <Out>(schedule: Schedule.Schedule<Out, unknown>) =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make(0)
    const start = yield* TestClock.currentTimeMillis
    const fiber = yield* Ref.update(attempts, (n) => n + 1).pipe(
      Effect.zipRight(Effect.fail("boom")),
      Effect.retry(schedule),
      Effect.ignore,
      Effect.zipRight(TestClock.currentTimeMillis),
      Effect.fork
    )
    for (let i = 0; i < 2000 && fiber.unsafePoll() === null; i++) yield* TestClock.adjust("100 millis")
    const end = yield* Fiber.join(fiber)
    return { attempts: yield* Ref.get(attempts), elapsed: Duration.millis(end - start) }
  })

describe("Schedules", () => {
  it.effect("sinkWrite retries many times but returns inside its budget, well under a Lambda timeout", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.sinkWrite)
      expect(attempts).toBeGreaterThan(5)
      // upTo lets the last delay start before the budget ends; that delay is capped at 5 s.
      expect(Duration.lessThanOrEqualTo(elapsed, Duration.sum(Schedules.sinkWriteBudget, "5 seconds"))).toBe(
        true
      )
    })
  )

  it.effect("fallbackSend gives up within a second so the collector can answer 503", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.fallbackSend)
      expect(attempts).toBe(4)
      expect(Duration.lessThan(elapsed, "1 second")).toBe(true)
    })
  )

  it.effect("failureDestinationSend keeps trying for minutes, bounded", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.failureDestinationSend)
      expect(attempts).toBeGreaterThan(10)
      expect(Duration.lessThanOrEqualTo(elapsed, "130 seconds")).toBe(true)
    })
  )

  it("isRetryable reads the flag errors carry", () => {
    expect(Schedules.isRetryable({ isRetryable: true })).toBe(true)
    expect(Schedules.isRetryable({ isRetryable: false })).toBe(false)
    expect(Schedules.isRetryable(new Error("x"))).toBe(false)
    expect(Schedules.isRetryable(null)).toBe(false)
  })
})
