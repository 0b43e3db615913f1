/**
 * What the local collector answered, kept so that `spillway dev` can prove at the end that every
 * record it accepted — from the demo generator or from anyone posting to it — reached the index.
 *
 * Ids are kept, not just counts: a client may send an id twice, and the index holds one document
 * per id, so only the set of accepted ids can be compared with what the index holds.
 */
import type { CollectorHttp } from "@spillway/core"
import { Effect } from "effect"

export interface Figures {
  /** Records accepted (in the stream or parked in the fallback queue), repeats included. */
  readonly accepted: number
  /** Records refused as invalid. */
  readonly rejected: number
  /** Records nothing would take at the time; the client was told to send them again. */
  readonly unavailable: number
  /** Requests answered with an error before any record was looked at (401, 413, 415, bad JSON…). */
  readonly refusedRequests: number
  readonly distinctAccepted: number
}

export interface Ledger {
  /** The contract's `onCollected` hook: what the collect stage was given and answered. */
  readonly collected: (collected: CollectorHttp.Collected) => Effect.Effect<void>
  /** The server's `onResponse` hook: counts the requests refused before the stage. */
  readonly record: (response: CollectorHttp.Response) => Effect.Effect<void>
  readonly figures: Effect.Effect<Figures>
  readonly acceptedIds: Effect.Effect<ReadonlySet<string>>
}

export const make = (): Ledger => {
  const ids = new Set<string>()
  let accepted = 0
  let rejected = 0
  let unavailable = 0
  let refusedRequests = 0
  return {
    record: (response) =>
      Effect.sync(() => {
        // The contract's error bodies carry `accepted` exactly when the records reached the stage.
        if (response.status >= 400 && response.body !== undefined && !("accepted" in response.body))
          refusedRequests++
      }),
    collected: ({ records, result }) =>
      Effect.sync(() => {
        accepted += result.accepted
        rejected += result.rejected.length
        unavailable += result.unavailable.length
        const notTaken = new Set([...result.rejected, ...result.unavailable].map((r) => r.index))
        records.forEach((record, index) => {
          // Accepted records passed validation, so their id is a string.
          if (!notTaken.has(index) && typeof record === "object" && record !== null && "id" in record) {
            if (typeof record.id === "string") ids.add(record.id)
          }
        })
      }),
    figures: Effect.sync(() => ({
      accepted,
      rejected,
      unavailable,
      refusedRequests,
      distinctAccepted: ids.size
    })),
    acceptedIds: Effect.sync(() => ids)
  }
}
