/**
 * Helpers for driving a `MemoryPipeline` from tests on Effect's `TestClock`: sample records,
 * settling the pipeline, and running effects that sleep (retry backoff, latency) while the clock
 * moves. Shared by this package's tests and the CLI's.
 */
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { Pipeline } from "./MemoryPipeline.js"

/** The key `MemoryPipeline.defaultApiKeys` accepts. */
export const apiKey = "demo-key"

/** A valid client record. */
export const record = (id: string, payload: Record<string, unknown> = { value: 1 }) => ({
  id,
  type: "cpu",
  timestamp: "2026-11-24T10:00:00.000Z",
  payload
})

export const records = (n: number, prefix = "r") =>
  Array.from({ length: n }, (_, i) => record(`${prefix}-${i}`))

/**
 * Moves the test clock in `step`s until the pipeline is idle twice in a row (nothing in flight,
 * every shard read to its tip, the fallback queue empty). Fails if that takes longer than `max`
 * of simulated time. Returns the simulated time it took.
 */
export const settle = (
  pipeline: Pipeline,
  options: { readonly step?: Duration.Input; readonly max?: Duration.Input } = {}
): Effect.Effect<Duration.Duration, string> =>
  Effect.gen(function* () {
    const step = Duration.fromInputUnsafe(options.step ?? "250 millis")
    const max = Duration.toMillis(options.max ?? "30 minutes")
    let elapsed = 0
    let idleInARow = 0
    while (idleInARow < 2) {
      if (elapsed > max)
        return yield* Effect.fail(`pipeline did not settle within ${max} ms of simulated time`)
      yield* TestClock.adjust(step)
      elapsed += Duration.toMillis(step)
      idleInARow = (yield* pipeline.isIdle) ? idleInARow + 1 : 0
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
