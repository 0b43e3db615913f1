/**
 * The disaster-recovery program: after the index was lost and restored from its last snapshot,
 * write again every record the backup archive holds from the snapshot on, so the index ends with
 * everything it had and everything that arrived since.
 *
 * - It reads the archive's hour objects for `range` (Firehose files an object under the hour of
 *   its oldest record, so start the range a little before the snapshot: records indexed after the
 *   snapshot may have arrived before it), keeps the first copy of each record id (the one the
 *   live pipeline wrote: its cache skips later copies, such as a client's re-send or Firehose's
 *   at-least-once duplicate), and writes them in bulk batches through the sink, retrying retryable items on
 *   `Schedules.sinkWrite`, as the processor does.
 * - It writes past the dedup cache: the cache remembers ids the lost index held, which is exactly
 *   what must be written again. Ids it writes are marked in the cache, as the processor would.
 * - Writes are keyed by record id, so a document the index still holds is overwritten with the
 *   same content and running the restore twice is harmless.
 * - No end-to-end delay is recorded: these records were delivered once already; the delay metric
 *   measures the live path.
 *
 * What it cannot write is reported per record, with the sink's reason and whether a second run
 * can help; records in the archive that are not envelopes are reported with their object, and
 * objects it cannot read (after retrying S3's refusals on `Schedules.archiveRead`, each call on
 * its own) are reported by key, while the rest is restored. Only a listing that fails fails the run.
 */
import { Effect, Either } from "effect"
import * as Archive from "../Archive.js"
import { DedupCache } from "../DedupCache.js"
import * as DocumentSink from "../DocumentSink.js"
import * as Schedules from "../Schedules.js"
import type { TelemetryEnvelope } from "../Telemetry.js"
import * as Telemetry from "../Telemetry.js"
import { writeWithRetries } from "./process.js"

export interface RestoreOptions {
  /** Documents per bulk write. @default 500 */
  readonly batchSize?: number
}

export interface RestoreResult {
  /** Archive objects listed in the range. */
  readonly objects: number
  /** Records read from them, copies included. */
  readonly read: number
  /** Distinct record ids among them. */
  readonly distinct: number
  readonly written: number
  readonly failed: ReadonlyArray<{
    readonly recordId: string
    readonly reason: string
    readonly retryable: boolean
  }>
  readonly undecodable: Archive.ArchiveContents["undecodable"]
  /**
   * Objects that could not be read (gone, corrupt, or still refused after `Schedules.archiveRead`):
   * their records are not restored; a second run retries them.
   */
  readonly unreadable: ReadonlyArray<{
    readonly key: string
    readonly reason: string
    readonly retryable: boolean
  }>
}

export const restore = Effect.fn("restore")(function* (
  range: Archive.Range,
  options: RestoreOptions = {}
): Effect.fn.Return<
  RestoreResult,
  Archive.ArchiveError,
  Archive.Archive | DocumentSink.DocumentSink | DedupCache
> {
  const batchSize = options.batchSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    return yield* new Archive.ArchiveError({
      reason: "InvalidRequest",
      message: `batchSize must be a positive integer, got ${batchSize}`
    })
  }
  const archive = yield* Archive.Archive
  const sink = yield* DocumentSink.DocumentSink
  const cache = yield* DedupCache
  const retried = <A>(call: Effect.Effect<A, Archive.ArchiveError>) =>
    call.pipe(Effect.retry({ schedule: Schedules.archiveRead, while: (error) => error.isRetryable }))

  // Without the listing nothing can be restored: that failure is the run's.
  const keys = yield* retried(archive.list(range))

  let read = 0
  let written = 0
  const failed: Array<{ recordId: string; reason: string; retryable: boolean }> = []
  const undecodable: Array<{ key: string; index: number; reason: string }> = []
  const unreadable: Array<{ key: string; reason: string; retryable: boolean }> = []
  // Ids already taken: only the first copy of each, in archive order, is written. It is the one
  // the live pipeline wrote, since its dedup cache skips later copies (a client's re-send gets a
  // later receivedAt; Firehose may deliver a record twice).
  const taken = new Set<string>()
  let pending: Array<TelemetryEnvelope> = []

  // Written a batch at a time as objects are read, so memory holds a batch and the ids, not the range.
  const writePending = Effect.gen(function* () {
    const batch = pending
    pending = []
    const outcomes = yield* writeWithRetries(sink, batch, (landed) =>
      cache.markProcessed(landed.map((e) => e.record.id))
    )
    for (const envelope of batch) {
      const outcome = outcomes.get(envelope.record.id)
      if (outcome?._tag === "Written") written++
      else {
        failed.push({
          recordId: envelope.record.id,
          reason: outcome?.reason ?? "not written",
          retryable: outcome?._tag !== "Rejected"
        })
      }
    }
  })

  for (const key of keys) {
    const records = yield* Effect.either(retried(archive.read(key)))
    if (Either.isLeft(records)) {
      unreadable.push({ key, reason: records.left.message, retryable: records.left.isRetryable })
      continue
    }
    for (const [index, data] of records.right.entries()) {
      read++
      const decoded = Telemetry.decodeEnvelope(data)
      if (Either.isLeft(decoded)) {
        undecodable.push({ key, index, reason: decoded.left.reason })
        continue
      }
      if (taken.has(decoded.right.record.id)) continue
      taken.add(decoded.right.record.id)
      pending.push(decoded.right)
      if (pending.length >= batchSize) yield* writePending
    }
  }
  if (pending.length > 0) yield* writePending

  return {
    objects: keys.length,
    read,
    distinct: taken.size,
    written,
    failed,
    undecodable,
    unreadable
  } satisfies RestoreResult
})
