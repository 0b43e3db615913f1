/**
 * `VirtualTime.provide` is a fresh `TestClock`: a program wakes its sleeps in the order and at the
 * instants a virtual clock must (checked against a model of the clock, and against the stock
 * `TestClock.layer()`), many sleeps cost no real time each, a woken fiber that runs for long is
 * waited for, and every run starts at 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import { VirtualTime } from "../src/index.js"

const seed = 7
const workers = 20
const rounds = 5
const nextSleep = Random.nextIntBetween(1, 2000, { halfOpen: true })

/**
 * Twenty fibers that sleep seeded random durations, yield, write down when they woke, and sleep
 * again; a driver moves the clock in uneven steps. Any change in wake-up order shows in `log`.
 */
const program = () =>
  Effect.gen(function* () {
    const log: Array<string> = []
    const worker = (n: number) =>
      Effect.gen(function* () {
        for (let round = 0; round < rounds; round++) {
          yield* Effect.sleep(Duration.millis(yield* nextSleep))
          yield* Effect.yieldNow
          log.push(`${n}.${round}@${yield* Clock.currentTimeMillis}`)
        }
      })
    const fibers = yield* Effect.forEach(
      Array.from({ length: workers }, (_, n) => n),
      (n) => Effect.forkChild(worker(n))
    )
    for (let step = 0; step < 40; step++) yield* TestClock.adjust(Duration.millis(137 + step * 11))
    yield* Fiber.joinAll(fibers)
    return log
  }).pipe(Random.withSeed(seed))

/**
 * What a correct virtual clock does with `program`, computed without one: the fibers start in
 * the order they were forked and each draws its first sleep; then the earliest sleep wakes first
 * (equal instants in the order the sleeps began), at exactly its instant, and its fiber runs — it
 * writes down the time and draws its next sleep — before any other sleep wakes. The draws come
 * from the same seeded `Random`, in that order.
 */
const model = () =>
  Effect.gen(function* () {
    const log: Array<string> = []
    const pending: Array<{
      readonly at: number
      readonly order: number
      readonly n: number
      readonly round: number
    }> = []
    let order = 0
    for (let n = 0; n < workers; n++) pending.push({ at: yield* nextSleep, order: order++, n, round: 0 })
    while (pending.length > 0) {
      pending.sort((a, b) => a.at - b.at || a.order - b.order)
      const { at, n, round } = pending.shift()!
      log.push(`${n}.${round}@${at}`)
      if (round + 1 < rounds)
        pending.push({ at: at + (yield* nextSleep), order: order++, n, round: round + 1 })
    }
    return log
  }).pipe(Random.withSeed(seed))

describe("VirtualTime", () => {
  it.effect(
    "wakes sleeps in the order and at the instants a virtual clock must, as the stock TestClock",
    () =>
      Effect.gen(function* () {
        const virtual = yield* VirtualTime.provide(program())
        const stock = yield* program().pipe(Effect.provide(TestClock.layer()))
        expect(virtual).toHaveLength(workers * rounds)
        expect(virtual).toEqual(yield* model())
        expect(virtual).toEqual(stock)
      })
  )

  it.effect("wakes 10,000 sleeps in turn, each at its own instant, in one adjust", () =>
    Effect.gen(function* () {
      // How long this takes in real time is a benchmark's to say (npm run bench:virtual-time).
      const sleeps = 10_000
      const woken: Array<number> = []
      const end = yield* VirtualTime.provide(
        Effect.gen(function* () {
          const sleeper = yield* Effect.forkChild(
            Effect.gen(function* () {
              for (let i = 0; i < sleeps; i++) {
                yield* Effect.sleep(Duration.seconds(1))
                woken.push(yield* Clock.currentTimeMillis)
              }
              return yield* Clock.currentTimeMillis
            })
          )
          yield* TestClock.adjust(Duration.seconds(sleeps))
          return yield* Fiber.join(sleeper)
        })
      )
      expect(end).toBe(sleeps * 1000)
      expect(woken).toEqual(Array.from({ length: sleeps }, (_, i) => (i + 1) * 1000))
    })
  )

  it.effect(
    "waits for a woken fiber that runs longer than a second of real time before moving on",
    () =>
      Effect.gen(function* () {
        // The stock clock gives up after a second: it would move to 5 s, and the second sleep,
        // begun after that, would never wake.
        const woke = yield* VirtualTime.provide(
          Effect.gen(function* () {
            const times: Array<number> = []
            const busy = yield* Effect.forkChild(
              Effect.gen(function* () {
                yield* Effect.sleep(Duration.seconds(1))
                const until = performance.now() + 1200
                while (performance.now() < until) yield* Effect.yieldNow
                times.push(yield* Clock.currentTimeMillis)
                yield* Effect.sleep(Duration.seconds(1))
                times.push(yield* Clock.currentTimeMillis)
              })
            )
            yield* TestClock.adjust(Duration.seconds(5))
            yield* Fiber.join(busy)
            return times
          })
        )
        expect(woke).toEqual([1000, 2000])
      }),
    20_000
  )

  it.effect("starts every run on a fresh clock at 0", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(Duration.seconds(5))
      const inside = yield* VirtualTime.provide(Clock.currentTimeMillis)
      expect(inside).toBe(0)
      expect(yield* Clock.currentTimeMillis).toBe(5000)
    })
  )
})
