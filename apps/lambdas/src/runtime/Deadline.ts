/**
 * An invocation's deadline, from the Lambda context's `getRemainingTimeInMillis()`: batch handlers
 * start a unit of work (a slice of records, a message) only while more than the margin is left,
 * and a unit still running when only the margin is left is cut off, so the handler returns its
 * partial batch response before Lambda times it out — a timeout would fail the whole batch, and
 * the event source mapping would retry records that were done (Powertools Python #1242).
 *
 * The margin is `DEADLINE_MARGIN_MS` when set, else 10% of the time the invocation had when it
 * started, and never less than 1 s (`minimumMarginMillis`): Lambda does not tell a function its
 * timeout, but an invocation starts with about all of it left.
 *
 * What a cut-off unit did is not lost: every stage is at-least-once and idempotent (writes keyed
 * by record id, the dedup cache), so reporting its items as failed only makes Lambda send them
 * again.
 */
import { Duration, Effect, Option } from "effect"

/** The part of the Node.js Lambda context a deadline reads. */
export interface Clocked {
  readonly getRemainingTimeInMillis: () => number
}

export const minimumMarginMillis = 1000

export interface Deadline {
  /** Work starts only while more than this is left. */
  readonly marginMillis: number
  readonly remainingMillis: Effect.Effect<number>
  /** Whether more than the margin is left. */
  readonly hasTimeToStart: Effect.Effect<boolean>
  /** Runs `work`, cut off when only the margin is left: `None` then. */
  readonly bounded: <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E, R>
}

/** The margin for an invocation that started with `remainingAtStart` ms left. */
export const marginFor = (remainingAtStart: number, configured: number | undefined): number =>
  configured ?? Math.max(minimumMarginMillis, Math.round(remainingAtStart / 10))

/** The deadline of an invocation whose context is `context`; it had `remainingAtStart` ms when it began. */
export const make = (
  context: Clocked,
  configuredMarginMillis: number | undefined,
  remainingAtStart: number = context.getRemainingTimeInMillis()
): Deadline => {
  const marginMillis = marginFor(remainingAtStart, configuredMarginMillis)
  const remainingMillis = Effect.sync(() => context.getRemainingTimeInMillis())
  return {
    marginMillis,
    remainingMillis,
    hasTimeToStart: Effect.map(remainingMillis, (left) => left > marginMillis),
    bounded: (work) =>
      Effect.flatMap(remainingMillis, (left) =>
        left <= marginMillis
          ? Effect.succeed(Option.none())
          : Effect.timeoutOption(work, Duration.millis(left - marginMillis))
      )
  }
}

export interface UnitsResult<U, A> {
  readonly finished: ReadonlyArray<{ readonly unit: U; readonly result: A }>
  /** Units not started, or cut off, before the deadline; in order. */
  readonly unfinished: ReadonlyArray<U>
}

/**
 * Runs `units` one after another while the deadline allows (order matters: a shard's records are
 * processed in sequence); the first unit it cannot start or finish, and every unit after it, are
 * unfinished. A unit's failure ends the run with that failure.
 */
export const forEachUnit = <U, A, E, R>(
  deadline: Deadline,
  units: ReadonlyArray<U>,
  run: (unit: U) => Effect.Effect<A, E, R>
): Effect.Effect<UnitsResult<U, A>, E, R> =>
  Effect.gen(function* () {
    const finished: Array<{ unit: U; result: A }> = []
    for (const [i, unit] of units.entries()) {
      if (!(yield* deadline.hasTimeToStart)) return { finished, unfinished: units.slice(i) }
      const outcome = yield* deadline.bounded(run(unit))
      if (Option.isNone(outcome)) return { finished, unfinished: units.slice(i) }
      finished.push({ unit, result: outcome.value })
    }
    return { finished, unfinished: [] }
  })
