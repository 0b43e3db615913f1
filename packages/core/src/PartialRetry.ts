/**
 * Partial failures, one mechanism: send a batch, keep the answer of every item that settled, and
 * send again only the items still pending, on a named schedule, until they all settle or the
 * schedule gives up. Every batch API Spillway calls answers per item — PutRecords, SendMessageBatch,
 * `_bulk`, PutRecordBatch, the Datadog intake — so the stages that call them share this loop
 * instead of each writing its own (as Vector's sinks share `RetryPartial`).
 *
 * Guarantees:
 * - an item is sent again only while its last outcome is not settled, so a settled item (written,
 *   or refused for its own content) is never sent twice by this loop;
 * - a call that fails as a whole gives every item it carried the outcome `whenCallFails` makes of
 *   the error; it is retried when the error is retryable, and ends the loop when it is not;
 * - the result has one outcome per item, in order: the last one it got. The loop never fails.
 */
import { Effect, type Schedule } from "effect"
import type { Retryable } from "./Schedules.js"

export interface Options<Item, Outcome, E extends Retryable, R> {
  readonly items: ReadonlyArray<Item>
  /** One call for the pending items; answers one outcome per item sent, in order. */
  readonly send: (pending: ReadonlyArray<Item>) => Effect.Effect<ReadonlyArray<Outcome>, E, R>
  /** Whether an outcome is final: no retry can change it. */
  readonly isSettled: (outcome: Outcome) => boolean
  /** The outcome of each item a call carried when the call failed as a whole. */
  readonly whenCallFails: (error: E) => Outcome
  /** The outcome of an item a call did not answer (an answer shorter than the request). */
  readonly whenUnanswered: Outcome
  /** The policy between attempts, from `Schedules`. */
  readonly schedule: Schedule.Schedule<unknown, unknown>
  /** Sees each attempt's answers as soon as they come (e.g. to mark written items at once). */
  readonly onAnswered?: (
    answered: ReadonlyArray<{ readonly item: Item; readonly outcome: Outcome }>
  ) => Effect.Effect<void, never, R>
  /** Runs before each retry, with the number of items still pending. */
  readonly onRetry?: (pending: number) => Effect.Effect<void, never, R>
}

class StillPending {
  readonly _tag = "StillPending"
  constructor(readonly isRetryable: boolean) {}
}

/** Sends `items` until each has settled or `schedule` gives up; see the module header. */
export const retryPending = <Item, Outcome, E extends Retryable, R>(
  options: Options<Item, Outcome, E, R>
): Effect.Effect<ReadonlyArray<Outcome>, never, R> => {
  const { items, send, isSettled, whenCallFails, whenUnanswered } = options
  const outcomes: Array<Outcome | undefined> = items.map(() => undefined)
  const retryIf = (left: number): Effect.Effect<never, StillPending, R> =>
    (options.onRetry === undefined ? Effect.void : options.onRetry(left)).pipe(
      Effect.andThen(Effect.fail(new StillPending(true)))
    )
  const attempt = Effect.suspend(() => {
    // Plain loops: this runs once per item of every batch the processor writes.
    const pending: Array<number> = []
    for (let i = 0; i < items.length; i++) {
      const outcome = outcomes[i]
      if (outcome === undefined || !isSettled(outcome)) pending.push(i)
    }
    if (pending.length === 0) return Effect.void
    const batch: Array<Item> = new Array(pending.length)
    for (let j = 0; j < pending.length; j++) batch[j] = items[pending[j]!]!
    return send(batch).pipe(
      Effect.catch((error) => {
        const outcome = whenCallFails(error)
        for (const i of pending) outcomes[i] = outcome
        return error.isRetryable ? retryIf(pending.length) : Effect.fail(new StillPending(false))
      }),
      Effect.flatMap((answers) => {
        const answered: Array<{ readonly item: Item; readonly outcome: Outcome }> = new Array(pending.length)
        let left = 0
        for (let j = 0; j < pending.length; j++) {
          const outcome = answers[j] ?? whenUnanswered
          outcomes[pending[j]!] = outcome
          answered[j] = { item: batch[j]!, outcome }
          if (!isSettled(outcome)) left++
        }
        const seen = options.onAnswered === undefined ? Effect.void : options.onAnswered(answered)
        return left === 0 ? seen : Effect.andThen(seen, retryIf(left))
      })
    )
  })
  return attempt.pipe(
    Effect.retry({ schedule: options.schedule, while: (e) => e.isRetryable }),
    Effect.ignore,
    // Every item was in the first attempt, so each has an outcome.
    Effect.map(() => {
      for (let i = 0; i < outcomes.length; i++) outcomes[i] ??= whenUnanswered
      return outcomes as ReadonlyArray<Outcome>
    })
  )
}
