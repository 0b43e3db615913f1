/**
 * The backup replayer: puts what the backup archive holds for a time window back into the stream,
 * so the processor writes it again through the live path (a sink rebuilt from nothing, a processor
 * fix to apply to past records). To rewrite documents a lost index no longer has, use `restore`,
 * which writes past the dedup cache; this stage goes through the processor and its cache.
 *
 * - Which records: every record of the objects the archive files under the window's hours
 *   (`Archive.list`: Firehose files an object under the hour its oldest record arrived in the
 *   stream). Each object is in exactly one hour, so consecutive windows replay every record once
 *   and none twice.
 * - Order and checkpoint: objects in key order, records in object order. The position of the next
 *   record to put, `{ key, index }`, is the checkpoint. A run that `continueWhile` stops (the
 *   Lambda's deadline) or that the stream keeps refusing returns it, `onProgress` sees it after
 *   every call the stream took, and a run given one starts there (an object listed later under a
 *   key before it, a late Firehose delivery, is not gone back to).
 * - Rate: one PutRecords call at a time, cut by `RecordStream.chunkEntries`; entries a shard
 *   refused, and calls refused whole, are sent again on `Schedules.replayPut`, which backs off, so
 *   the replay runs at the rate the shards take next to the live traffic. Still refused after
 *   that, the run stops with its checkpoint at the first record not stored.
 * - Idempotent: each record is put as the collector wrote it (the same bytes, the record id as
 *   partition key), so a record put twice — a run resumed from an older checkpoint, Firehose's
 *   at-least-once copies, a window replayed again — is skipped by the processor's dedup cache or
 *   overwrites its document with the same content.
 *
 * Records that are not envelopes are reported with their object and skipped (the processor would
 * refuse them too); objects that cannot be read after `Schedules.archiveRead` are reported by key
 * and skipped, as `restore` does. Only a listing that fails fails the run.
 */
import { Effect, Metric, Result } from "effect"
import * as Archive from "../Archive.js"
import * as Metrics from "../Metrics.js"
import * as PartialRetry from "../PartialRetry.js"
import * as RecordStream from "../RecordStream.js"
import * as Schedules from "../Schedules.js"
import * as Telemetry from "../Telemetry.js"

/** The position of the next record to put: an object's key and a record index within it. */
export interface Checkpoint {
  readonly key: string
  readonly index: number
}

export interface Progress {
  /** Where a run started now would go on. */
  readonly checkpoint: Checkpoint
  /** Objects listed in the window. */
  readonly objects: number
  /** Records read (from the checkpoint on) and put so far in this run. */
  readonly read: number
  readonly put: number
}

export type StopReason = "Deadline" | "StreamRefused"

export interface BackupReplayResult {
  /** Objects listed in the window (all of them, before and after the checkpoint). */
  readonly objects: number
  /** Records read in this run, from the checkpoint on. */
  readonly read: number
  /** Records the stream stored in this run. */
  readonly put: number
  readonly undecodable: ReadonlyArray<{
    readonly key: string
    readonly index: number
    readonly reason: string
  }>
  readonly unreadable: ReadonlyArray<{
    readonly key: string
    readonly reason: string
    readonly retryable: boolean
  }>
  /** Where the next run starts; absent when the window is replayed to its end. */
  readonly checkpoint?: Checkpoint
  /** Why the run ended before the end of the window. */
  readonly stopped?: { readonly reason: StopReason; readonly message: string }
}

export interface BackupReplayOptions {
  /** Start here instead of at the window's first record. */
  readonly checkpoint?: Checkpoint
  /** Checked before each object is read and each PutRecords call: `false` stops the run. @default always */
  readonly continueWhile?: Effect.Effect<boolean>
  /** Called after each call the stream took and each object finished. */
  readonly onProgress?: (progress: Progress) => Effect.Effect<void>
  readonly streamLimits?: RecordStream.Limits
}

interface Entry extends RecordStream.PutEntry {
  readonly index: number
}

type PutOutcome = { readonly _tag: "Stored" } | { readonly _tag: "Refused"; readonly message: string }

const stored: PutOutcome = { _tag: "Stored" }

export const replayArchive = Effect.fn("replayArchive")(function* (
  range: Archive.Range,
  options: BackupReplayOptions = {}
): Effect.fn.Return<BackupReplayResult, Archive.ArchiveError, Archive.Archive | RecordStream.RecordStream> {
  const archive = yield* Archive.Archive
  const stream = yield* RecordStream.RecordStream
  const continueWhile = options.continueWhile ?? Effect.succeed(true)
  const onProgress = options.onProgress ?? (() => Effect.void)
  const start = options.checkpoint
  const retried = <A>(call: Effect.Effect<A, Archive.ArchiveError>) =>
    call.pipe(Effect.retry({ schedule: Schedules.archiveRead, while: (error) => error.isRetryable }))

  const keys = yield* retried(archive.list(range))
  let read = 0
  let put = 0
  const undecodable: Array<{ key: string; index: number; reason: string }> = []
  const unreadable: Array<{ key: string; reason: string; retryable: boolean }> = []
  const result = (stop?: {
    readonly checkpoint: Checkpoint
    readonly reason: StopReason
    readonly message: string
  }): BackupReplayResult => ({
    objects: keys.length,
    read,
    put,
    undecodable,
    unreadable,
    ...(stop === undefined
      ? {}
      : { checkpoint: stop.checkpoint, stopped: { reason: stop.reason, message: stop.message } })
  })
  const deadline = (checkpoint: Checkpoint) =>
    result({
      checkpoint,
      reason: "Deadline",
      message: "stopped before the deadline; resume at the checkpoint"
    })

  /** One call's entries, sent again while the stream refuses some; one outcome per entry. */
  const putAll = (entries: ReadonlyArray<Entry>) =>
    PartialRetry.retryPending({
      items: entries,
      send: (pending) =>
        Effect.map(stream.putRecords(pending), (outcomes) =>
          outcomes.map(
            (outcome): PutOutcome =>
              outcome._tag === "Stored"
                ? stored
                : { _tag: "Refused", message: `${outcome.errorCode}: ${outcome.message}` }
          )
        ),
      isSettled: (outcome) => outcome._tag === "Stored",
      whenCallFails: (error): PutOutcome => ({ _tag: "Refused", message: error.message }),
      whenUnanswered: { _tag: "Refused", message: "not answered" },
      schedule: Schedules.replayPut
    })

  for (const key of keys) {
    if (start !== undefined && key < start.key) continue
    const first = start !== undefined && key === start.key ? start.index : 0
    if (!(yield* continueWhile)) return deadline({ key, index: first })
    const records = yield* Effect.result(retried(archive.read(key)))
    if (Result.isFailure(records)) {
      unreadable.push({ key, reason: records.failure.message, retryable: records.failure.isRetryable })
      continue
    }
    const entries: Array<Entry> = []
    records.success.forEach((data, index) => {
      if (index < first) return
      read++
      const decoded = Telemetry.decodeEnvelope(data)
      if (Result.isFailure(decoded)) undecodable.push({ key, index, reason: decoded.failure.reason })
      else entries.push({ index, partitionKey: decoded.success.record.id, data })
    })
    for (const chunk of RecordStream.chunkEntries(entries, options.streamLimits)) {
      if (!(yield* continueWhile)) return deadline({ key, index: chunk[0]!.index })
      const outcomes = yield* putAll(chunk)
      const storedNow = outcomes.filter((outcome) => outcome._tag === "Stored").length
      put += storedNow
      yield* Metric.update(Metrics.recordsReplayed, storedNow)
      const refused = outcomes.findIndex((outcome) => outcome._tag !== "Stored")
      if (refused !== -1) {
        const outcome = outcomes[refused] as Extract<PutOutcome, { _tag: "Refused" }>
        return result({
          checkpoint: { key, index: chunk[refused]!.index },
          reason: "StreamRefused",
          message: `the stream still refused ${outcomes.length - storedNow} of ${chunk.length} records after retrying: ${outcome.message}`
        })
      }
      yield* onProgress({
        checkpoint: { key, index: chunk.at(-1)!.index + 1 },
        objects: keys.length,
        read,
        put
      })
    }
    yield* onProgress({ checkpoint: { key, index: records.success.length }, objects: keys.length, read, put })
  }
  return result()
})
