/** The clickstream's named retries: each bounded, the forwarder's honouring a 429's reset. */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, type Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as Schedules from "../../src/Schedules.js"

/** An always-failing effect retried on `schedule` (each failure `error`): attempts and the instants of each. */
const exhaust = <Out>(schedule: Schedule.Schedule<Out, unknown>, error: unknown = "boom") =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const at = yield* Ref.make<Array<number>>([])
    const fiber = yield* Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => Ref.update(at, (list) => [...list, now - start])),
      Effect.andThen(Effect.fail(error)),
      Effect.retry(schedule),
      Effect.ignore,
      Effect.forkChild
    )
    for (let i = 0; i < 5000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("100 millis")
    yield* Fiber.join(fiber)
    return yield* Ref.get(at)
  })

describe("clickstream schedules", () => {
  it.effect("metricsSubmit retries for about 20 s, within its budget", () =>
    Effect.gen(function* () {
      const at = yield* exhaust(Schedules.metricsSubmit)
      expect(at.length).toBeGreaterThan(5)
      expect(at.at(-1)!).toBeGreaterThanOrEqual(20_000)
      expect(at.at(-1)!).toBeLessThanOrEqual(Duration.toMillis(Schedules.metricsSubmitBudget))
    })
  )

  it.effect("metricsSubmit waits at least until the reset a 429 named", () =>
    Effect.gen(function* () {
      const at = yield* exhaust(Schedules.metricsSubmit, { retryAfterMillis: 4_000 })
      const gaps = at.slice(1).map((t, i) => t - at[i]!)
      expect(gaps.length).toBeGreaterThan(2)
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(4_000)
      expect(at.at(-1)!).toBeLessThanOrEqual(Duration.toMillis(Schedules.metricsSubmitBudget))
    })
  )

  it.effect("cleanPut and spoolWrite give up in time for the invocation to answer", () =>
    Effect.gen(function* () {
      const clean = yield* exhaust(Schedules.cleanPut)
      expect(clean.at(-1)!).toBeGreaterThanOrEqual(20_000)
      expect(clean.at(-1)!).toBeLessThanOrEqual(26_000)
      const spool = yield* exhaust(Schedules.spoolWrite)
      expect(spool).toHaveLength(6)
      expect(spool.at(-1)!).toBeLessThan(5_000)
    })
  )
})
