/**
 * Helpers for tests that drive a pipeline: sample records, settling until the pipeline is idle,
 * and running effects that sleep (retry backoff, latency) while `TestClock` moves. Anything with
 * an `isIdle` effect can be settled — a memory pipeline, an emulator pipeline, a user's.
 */
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { SuiteClock } from "./conformance/Suite.js"

/** The demo key a memory pipeline accepts by default (`MemoryPipeline.defaultApiKeys`). */
export const apiKey = "demo-key"

/** A valid client record. */
export const record = (id: string, payload: Record<string, unknown> = { value: 1 }) => ({
  id,
  type: "cpu",
  timestamp: "2026-11-24T10:00:00.000Z",
  payload
})

/** `n` valid client records, with ids `<prefix>-0` … `<prefix>-<n-1>`. */
export const records = (n: number, prefix = "r") =>
  Array.from({ length: n }, (_, i) => record(`${prefix}-${i}`))

/** What `settle` waits on: nothing in flight, every shard read to its tip, no message queued. */
export interface Settleable {
  readonly isIdle: Effect.Effect<boolean>
}

export interface SettleOptions {
  /** How time moves between looks. @default "test" (`TestClock.adjust`); `"live"` sleeps. */
  readonly clock?: SuiteClock
  /** @default 250 millis */
  readonly step?: Duration.Input
  /** @default 30 minutes */
  readonly max?: Duration.Input
}

/**
 * Moves time in `step`s until `subject` is idle twice in a row — once could be the instant
 * between a read and the write it causes. Fails if that takes longer than `max` (of simulated
 * time on `"test"`, of steps slept on `"live"`). Returns the time it took.
 */
export const settle = (
  subject: Settleable,
  options: SettleOptions = {}
): Effect.Effect<Duration.Duration, string> =>
  Effect.gen(function* () {
    const step = Duration.fromInputUnsafe(options.step ?? "250 millis")
    const max = Duration.toMillis(options.max ?? "30 minutes")
    const pass = options.clock === "live" ? Effect.sleep(step) : TestClock.adjust(step)
    let elapsed = 0
    let idleInARow = 0
    while (idleInARow < 2) {
      if (elapsed > max) {
        const time = options.clock === "live" ? "" : " of simulated time"
        return yield* Effect.fail(`pipeline did not settle within ${max} ms${time}`)
      }
      yield* pass
      elapsed += Duration.toMillis(step)
      idleInARow = (yield* subject.isIdle) ? idleInARow + 1 : 0
    }
    return Duration.millis(elapsed)
  })

/** Runs `effect` in a fiber while moving the test clock in `step`s, for effects that sleep. */
export const whileClockRuns = <A, E>(effect: Effect.Effect<A, E>, step: Duration.Input = "100 millis") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust(step)
    return yield* Fiber.join(fiber)
  })
