import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, type Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as Schedules from "../src/Schedules.js"

/**
 * Runs an always-failing effect on `schedule` and returns how many attempts it made and how long it
 * took, moving the clock in `step`s (a sleep ends at its own instant whatever the step).
 */
const exhaust = <Out>(schedule: Schedule.Schedule<Out, unknown>, step: Duration.Input = "100 millis") =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make(0)
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Ref.update(attempts, (n) => n + 1).pipe(
      Effect.andThen(Effect.fail("boom")),
      Effect.retry(schedule),
      Effect.ignore,
      Effect.andThen(Clock.currentTimeMillis),
      Effect.forkChild
    )
    for (let i = 0; i < 2000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(step)
    const end = yield* Fiber.join(fiber)
    return { attempts: yield* Ref.get(attempts), elapsed: Duration.millis(end - start) }
  })

describe("Schedules", () => {
  it.effect("sinkWrite retries many times but returns inside its budget, well under a Lambda timeout", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.sinkWrite)
      expect(attempts).toBeGreaterThan(5)
      // upTo lets the last delay start until 20 s have passed; that delay is at most 5 s × 1.2.
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.seconds(20))).toBe(true)
      expect(Duration.isLessThanOrEqualTo(elapsed, Schedules.sinkWriteBudget)).toBe(true)
    })
  )

  it.effect("fallbackSend gives up within a second so the collector can answer 503", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.fallbackSend)
      expect(attempts).toBe(4)
      expect(Duration.isLessThan(elapsed, Duration.seconds(1))).toBe(true)
    })
  )

  it.effect("archiveRead keeps trying for about two minutes, then stops", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.archiveRead, "1 second")
      // 200 ms doubling up to the 10 s spacing (jittered ±20%), then every 8–12 s.
      expect(attempts).toBeGreaterThan(10)
      expect(attempts).toBeLessThan(30)
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.minutes(2))).toBe(true)
      // upTo lets the last delay start just before two minutes; that delay is at most 12 s.
      expect(Duration.isLessThanOrEqualTo(elapsed, Duration.seconds(132))).toBe(true)
    })
  )

  it.effect("replayPut backs off for about a minute, then lets the replay stop at its checkpoint", () =>
    Effect.gen(function* () {
      const { attempts, elapsed } = yield* exhaust(Schedules.replayPut, "1 second")
      // 200 ms doubling up to the 5 s spacing (jittered ±20%), then every 4–6 s.
      expect(attempts).toBeGreaterThan(10)
      expect(attempts).toBeLessThan(25)
      expect(Duration.isGreaterThanOrEqualTo(elapsed, Duration.minutes(1))).toBe(true)
      // upTo lets the last delay start just before a minute; that delay is at most 6 s.
      expect(Duration.isLessThanOrEqualTo(elapsed, Duration.seconds(66))).toBe(true)
    })
  )

  it("isRetryable reads the flag errors carry", () => {
    expect(Schedules.isRetryable({ isRetryable: true })).toBe(true)
    expect(Schedules.isRetryable({ isRetryable: false })).toBe(false)
    expect(Schedules.isRetryable(new Error("x"))).toBe(false)
    expect(Schedules.isRetryable(null)).toBe(false)
  })
})

describe("Schedules.redriveVisibilitySeconds", () => {
  it("holds a message the stream refused back 1, 2, 4, 8, 16 s, then the cap, whatever the receive count", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50, 1000].map(Schedules.redriveVisibilitySeconds)).toEqual([
      1, 2, 4, 8, 16, 30, 30, 30, 30
    ])
    expect(Schedules.redriveVisibilityCapSeconds).toBe(30)
    // A count SQS never sends (0, a fraction) still gets a whole, positive visibility.
    expect(Schedules.redriveVisibilitySeconds(0)).toBe(1)
    expect(Schedules.redriveVisibilitySeconds(2.5)).toBe(2)
  })

  it("rides out about 3 minutes of outage within 10 receives, and hours within SQS's largest maxReceiveCount", () => {
    const rideOut = (receives: number) => {
      let seconds = 0
      for (let receive = 1; receive <= receives; receive++)
        seconds += Schedules.redriveVisibilitySeconds(receive)
      return seconds
    }
    expect(rideOut(10)).toBe(1 + 2 + 4 + 8 + 16 + 5 * 30)
    expect(rideOut(1000)).toBeGreaterThan(8 * 3600)
  })
})
