/**
 * The client fleet, the one producer loop of every run: every tick it sends what the collector
 * answered `unavailable` last time, then the tick's new records, in requests of at most
 * `recordsPerRequest`, and sleeps a tick. It stops when no record is left to make and nothing is
 * waiting to be sent again, so a record the collector could not take is never dropped by the
 * client. What a record is, and what the run books per answer, is the caller's: the scenarios
 * draw a mix of valid, invalid, poison and duplicate records, the comparison a uniform stream.
 */
import { Duration, Effect } from "effect"

/** Records per client request: what a batching client sends at once. */
export const recordsPerRequest = 100

export interface Fleet<R, E> {
  readonly tickMillis: number
  /** Whether records are still to be made. */
  readonly more: () => boolean
  /** This tick's new records (possibly none). */
  readonly fresh: Effect.Effect<ReadonlyArray<R>, E>
  /** Sends one request; answers the records to send again on the next tick. */
  readonly send: (request: ReadonlyArray<R>) => Effect.Effect<ReadonlyArray<R>, E>
  /** Told, every tick, how many records it sends again. */
  readonly onResend?: (records: number) => void
}

export const run = <R, E>(fleet: Fleet<R, E>): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    let retry: ReadonlyArray<R> = []
    while (fleet.more() || retry.length > 0) {
      fleet.onResend?.(retry.length)
      const items = [...retry, ...(yield* fleet.fresh)]
      const again: Array<R> = []
      for (let from = 0; from < items.length; from += recordsPerRequest) {
        again.push(...(yield* fleet.send(items.slice(from, from + recordsPerRequest))))
      }
      retry = again
      yield* Effect.sleep(Duration.millis(fleet.tickMillis))
    }
  })
