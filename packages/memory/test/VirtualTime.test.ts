/**
 * `VirtualTime.provide` is `TestContext` with a faster wait: the same program gives the same
 * result, in the same order, as on the stock `TestClock`, and the fast path is really taken.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Random, TestClock, TestContext } from "effect"
import { VirtualTime } from "../src/index.js"

/**
 * Twenty fibers that sleep seeded random durations, yield, write down when they woke, and sleep
 * again; a driver moves the clock in uneven steps. Any change in wake-up order shows in `log`.
 * A function, so that every run gets a fresh seeded `Random` (a `Random` keeps its state).
 */
const program = () =>
  Effect.gen(function* () {
    const log: Array<string> = []
    const worker = (n: number) =>
      Effect.gen(function* () {
        for (let round = 0; round < 5; round++) {
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(1, 2000)))
          yield* Effect.yieldNow()
          log.push(`${n}.${round}@${yield* Clock.currentTimeMillis}`)
        }
      })
    const fibers = yield* Effect.forEach(
      Array.from({ length: 20 }, (_, n) => n),
      (n) => Effect.fork(worker(n))
    )
    for (let step = 0; step < 40; step++) yield* TestClock.adjust(Duration.millis(137 + step * 11))
    yield* Fiber.joinAll(fibers)
    return log
  }).pipe(Effect.withRandom(Random.make(7)))

describe("VirtualTime", () => {
  it.effect("wakes sleeps in the same order and at the same instants as the stock TestClock", () =>
    Effect.gen(function* () {
      const fast = yield* VirtualTime.provide(program())
      const stock = yield* program().pipe(Effect.provide(TestContext.TestContext))
      expect(fast).toHaveLength(100)
      expect(fast).toEqual(stock)
    })
  )

  it.effect("finds the clock's wait to replace in the installed Effect", () =>
    Effect.gen(function* () {
      // If a later Effect renames it, `provide` still works at stock speed; this says so.
      expect(yield* VirtualTime.isFast).toBe(true)
    })
  )

  it.effect("starts every run on a fresh clock at 0", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(Duration.seconds(5))
      const inside = yield* VirtualTime.provide(Clock.currentTimeMillis)
      expect(inside).toBe(0)
    })
  )
})
