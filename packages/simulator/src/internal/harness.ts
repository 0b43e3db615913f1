/**
 * The run harness every simulation goes through, the scenarios and the comparison alike: where its
 * clock starts, how a run is isolated from its caller, and the clock driver that moves virtual
 * time one second at a time until the pipeline has settled.
 *
 * Guarantees: a run needs nothing from its caller's environment and leaks nothing into it (its own
 * `TestClock`, its own seeded `Random`, no log lines on stdout); a run that cannot settle ends
 * with `DidNotSettle` at its deadline instead of ticking forever; and "settled" means one thing
 * everywhere: the run's own fibers are done and the pipeline reported idle on two ticks in a row
 * (`settle`, the simulator's one settle loop), since a single idle look can fall between a poll
 * and the write it starts.
 */
import { VirtualTime } from "@spillway/memory"
import { Clock, Duration, Effect, Fiber, Random, References } from "effect"
import { TestClock } from "effect/testing"
import { SimulationError } from "./error.js"

/** 2026-11-27T08:00:00Z, Black Friday morning: every run's clock starts here. */
export const startTime = Date.UTC(2026, 10, 27, 8, 0, 0)

/** The simulated second an epoch millisecond falls in, counted from `startTime`. */
export const secondOf = (millis: number): number => Math.max(0, Math.floor((millis - startTime) / 1000))

/**
 * Where a run's virtual time comes from: `VirtualTime.provide` (the default), or
 * `Effect.provide(TestClock.layer())` (Effect's stock `TestClock`), to check that both give the
 * same report.
 */
export type TimeProvider = <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

/** Runs `effect` on its own clock with a `Random` seeded with `seed`, and quiet. */
export const isolate = <A, E>(
  seed: number,
  effect: Effect.Effect<A, E>,
  provideTime: TimeProvider = VirtualTime.provide
): Effect.Effect<A, E> =>
  effect.pipe(
    Random.withSeed(seed),
    // TestClock warns through the logger when real time passes between adjustments; that says
    // nothing about the simulated pipeline and must not reach a `--json` stdout.
    Effect.provideService(References.MinimumLogLevel, "Error"),
    provideTime
  )

export interface ClockDriver {
  /** One simulated second, then the run's look at the world (`afterSecond`), then the deadline. */
  readonly tick: Effect.Effect<void, SimulationError>
  /**
   * Runs an operator's step (a replay, the last delivery, a restore) while the clock ticks, since
   * its retries sleep on it; a failure becomes a `PipelineRefused` naming `what`.
   */
  readonly whileTicking: <A, E extends { readonly message: string }>(
    what: string,
    step: Effect.Effect<A, E>
  ) => Effect.Effect<A, SimulationError>
  /** Ticks until `fibers` are done and the pipeline is idle on two ticks in a row, then joins them. */
  readonly settle: (
    fibers: ReadonlyArray<Fiber.Fiber<void, SimulationError>>
  ) => Effect.Effect<void, SimulationError>
}

export const makeClockDriver = (options: {
  /** The run's name, for its errors. */
  readonly scenario: string
  /** Epoch millisecond after which the run is declared stuck. */
  readonly deadline: number
  readonly stuckMessage: (now: number) => string
  readonly isIdle: Effect.Effect<boolean>
  readonly afterSecond?: (now: number) => Effect.Effect<void>
}): ClockDriver => {
  const tick = Effect.gen(function* () {
    yield* TestClock.adjust(Duration.seconds(1))
    const now = yield* Clock.currentTimeMillis
    if (options.afterSecond !== undefined) yield* options.afterSecond(now)
    if (now > options.deadline) {
      return yield* new SimulationError({
        scenario: options.scenario,
        reason: "DidNotSettle",
        message: options.stuckMessage(now)
      })
    }
  })

  const whileTicking = <A, E extends { readonly message: string }>(what: string, step: Effect.Effect<A, E>) =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(step)
      while (fiber.pollUnsafe() === undefined) yield* tick
      return yield* Fiber.join(fiber).pipe(
        Effect.mapError(
          (error) =>
            new SimulationError({
              scenario: options.scenario,
              reason: "PipelineRefused",
              message: `${what}: ${error.message}`
            })
        )
      )
    })

  const settle = (fibers: ReadonlyArray<Fiber.Fiber<void, SimulationError>>) =>
    Effect.gen(function* () {
      let idleInARow = 0
      while (idleInARow < 2) {
        yield* tick
        const done = fibers.every((fiber) => fiber.pollUnsafe() !== undefined)
        idleInARow = done && (yield* options.isIdle) ? idleInARow + 1 : 0
      }
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
    })

  return { tick, whileTicking, settle }
}
