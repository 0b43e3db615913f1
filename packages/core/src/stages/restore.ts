/**
 * The disaster-recovery program: after the index was lost and restored from its last snapshot,
 * write again every record the backup archive holds that the collector received from a little
 * before that snapshot on, so the index ends with everything it had and everything since.
 *
 * - `range.from` is the snapshot's time minus the longest processing lag allowed for (a record
 *   indexed just after the snapshot may have been received before it); `range.to` is now.
 *   Ids first received before `range.from` are in the snapshot already and are skipped, later
 *   copies included (counted in `beforeRange`): Firehose files an object under the hour of its
 *   oldest record, so the hour objects listed hold earlier records too.
 * - Of the copies of an id (a client's re-send, Firehose's at-least-once delivery), it writes the
 *   one received first: the one the live pipeline wrote, since its dedup cache skips the later
 *   ones. Archive order cannot be trusted for that (objects are named after their oldest record
 *   with a random suffix), so a first pass reads every object and keeps, per id, where its
 *   earliest copy is; a second pass reads the objects again and writes those copies in bulk
 *   batches. Memory holds one entry per id and one batch, not the range's records.
 * - It writes past the dedup cache: the cache remembers ids the lost index held, which is exactly
 *   what must be written again. Ids it writes are marked in the cache, as the processor would.
 *   Retryable items are retried on `Schedules.sinkWrite`, as the processor does.
 * - Writes are keyed by record id, so a document the index still holds is overwritten with the
 *   same content and running the restore twice is harmless.
 * - No end-to-end delay is recorded: these records were delivered once already; the delay metric
 *   measures the live path.
 *
 * Progress: `onProgress` is told after every object each pass finished (pass 1 reads, pass 2
 * writes), so a tool restoring many hours can show how far it is.
 *
 * What it cannot write is reported per record, with the sink's reason and whether a second run
 * can help; records in the archive that are not envelopes are reported with their object, and
 * objects it cannot read (after retrying S3's refusals on `Schedules.archiveRead`, each call on
 * its own) are reported by key, while the rest is restored. Only a listing that fails fails the run.
 */
import { Effect, Result } from "effect"
import * as Archive from "../Archive.js"
import { DedupCache } from "../DedupCache.js"
import * as DocumentSink from "../DocumentSink.js"
import * as Schedules from "../Schedules.js"
import * as Telemetry from "../Telemetry.js"
import { writeWithRetries } from "./writeDocuments.js"

export interface RestoreOptions {
  /** Documents per bulk write. @default 500 */
  readonly batchSize?: number
  /** Called after each object of each pass. @default nothing */
  readonly onProgress?: (progress: RestoreProgress) => Effect.Effect<void>
}

/** How far a restore is: which pass, and its objects done out of those listed. */
export interface RestoreProgress {
  /** `choosing`: pass 1, reading every object to pick each id's copy; `writing`: pass 2. */
  readonly pass: "choosing" | "writing"
  /** Objects this pass is done with (read, or skipped as unreadable), out of `objects`. */
  readonly objectsDone: number
  readonly objects: number
  /** Records read so far (pass 1, and in pass 2 the same total). */
  readonly read: number
  /** Documents written so far (pass 2). */
  readonly written: number
}

export interface RestoreResult {
  /** Archive objects listed in the range. */
  readonly objects: number
  /** Records read from them, copies and records received before the range included. */
  readonly read: number
  /**
   * Ids first received before `range.from`: in the restored snapshot already, as the live
   * pipeline wrote them, so not written (not even a later copy).
   */
  readonly beforeRange: number
  /** Distinct record ids first received within the range: the ones written. */
  readonly distinct: number
  readonly written: number
  readonly failed: ReadonlyArray<{
    readonly recordId: string
    readonly reason: string
    readonly retryable: boolean
  }>
  readonly undecodable: ReadonlyArray<{
    readonly key: string
    readonly index: number
    readonly reason: string
  }>
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

/** Where the copy of an id that will be written is. */
interface Chosen {
  readonly receivedAt: number
  readonly key: string
  readonly index: number
}

/**
 * Pass 1 of a restore: reads every object and keeps, per id, where its earliest copy is. Ids first
 * received before the range are left out (counted in `beforeRange`): they are in the snapshot, as
 * the live pipeline wrote them, and a later copy (a client's re-send after the snapshot) must not
 * overwrite that.
 */
const chooseCopies = Effect.fnUntraced(function* (
  keys: ReadonlyArray<string>,
  readObject: (key: string) => Effect.Effect<ReadonlyArray<Uint8Array> | undefined, never, never>,
  range: Archive.Range,
  onObject: (objectsDone: number, read: number) => Effect.Effect<void>
) {
  let read = 0
  let beforeRange = 0
  const undecodable: Array<{ key: string; index: number; reason: string }> = []
  const chosen = new Map<string, Chosen>()
  const readable: Array<string> = []
  for (const [done, key] of keys.entries()) {
    const records = yield* readObject(key)
    if (records === undefined) {
      yield* onObject(done + 1, read)
      continue
    }
    readable.push(key)
    for (const [index, data] of records.entries()) {
      read++
      const decoded = Telemetry.decodeEnvelope(data)
      if (Result.isFailure(decoded)) {
        undecodable.push({ key, index, reason: decoded.failure.reason })
        continue
      }
      const { record, receivedAt } = decoded.success
      const previous = chosen.get(record.id)
      if (previous === undefined || receivedAt < previous.receivedAt)
        chosen.set(record.id, { receivedAt, key, index })
    }
    yield* onObject(done + 1, read)
  }
  for (const [id, winner] of chosen) {
    if (winner.receivedAt < range.from) {
      chosen.delete(id)
      beforeRange++
    }
  }
  return { read, beforeRange, undecodable, chosen, readable }
})

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

  const unreadable: Array<{ key: string; reason: string; retryable: boolean }> = []
  /** The records of an object, or `undefined` (reported) when it cannot be read. */
  const readObject = (key: string) =>
    Effect.map(Effect.result(retried(archive.read(key))), (result) => {
      if (Result.isSuccess(result)) return result.success
      if (!unreadable.some((u) => u.key === key)) {
        unreadable.push({ key, reason: result.failure.message, retryable: result.failure.isRetryable })
      }
      return undefined
    })

  // Pass 1: per id, where its earliest copy within the range is.
  const onProgress = options.onProgress ?? (() => Effect.void)
  const { read, beforeRange, undecodable, chosen, readable } = yield* chooseCopies(
    keys,
    readObject,
    range,
    (objectsDone, readSoFar) =>
      onProgress({ pass: "choosing", objectsDone, objects: keys.length, read: readSoFar, written: 0 })
  )

  // Pass 2: those copies, written a batch at a time.
  let written = 0
  const failed: Array<{ recordId: string; reason: string; retryable: boolean }> = []
  let pending: Array<Telemetry.TelemetryEnvelope> = []
  const writePending = Effect.gen(function* () {
    const batch = pending
    pending = []
    const outcomes = yield* writeWithRetries(sink, batch, (landed) =>
      cache.markProcessed(landed.map((e) => e.record.id))
    )
    for (const [i, envelope] of batch.entries()) {
      const outcome = outcomes[i]
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
  const done = new Set<string>()
  // Objects unreadable in pass 1 are not read again: pass 2 counts them done from the start.
  const skipped = keys.length - readable.length
  const writing = (objectsDone: number) =>
    onProgress({ pass: "writing", objectsDone: skipped + objectsDone, objects: keys.length, read, written })
  for (const [objectIndex, key] of readable.entries()) {
    const records = (yield* readObject(key)) ?? []
    for (const [index, data] of records.entries()) {
      const decoded = Telemetry.decodeEnvelope(data)
      if (Result.isFailure(decoded)) continue
      const id = decoded.success.record.id
      const winner = chosen.get(id)
      if (winner === undefined || winner.key !== key || winner.index !== index || done.has(id)) continue
      done.add(id)
      pending.push(decoded.success)
      if (pending.length >= batchSize) yield* writePending
    }
    // The last object's chosen copies may wait in `pending`: its progress is told once they are written.
    if (objectIndex < readable.length - 1) yield* writing(objectIndex + 1)
  }
  if (pending.length > 0) yield* writePending
  if (readable.length > 0) yield* writing(readable.length)
  // An object readable in pass 1 but not in pass 2 leaves its chosen copies unwritten.
  for (const [id, winner] of chosen) {
    if (!done.has(id)) {
      failed.push({
        recordId: id,
        reason: `its object ${winner.key} could not be read again`,
        retryable: true
      })
    }
  }

  return {
    objects: keys.length,
    read,
    beforeRange,
    distinct: chosen.size,
    written,
    failed,
    undecodable,
    unreadable
  } satisfies RestoreResult
})
