/**
 * The summary `spillway dev` prints when it stops: what was sent, what the collector accepted and
 * rejected, what reached the index, what the backup archived, and the end-to-end delay.
 *
 * "Lost" is strict: a record the collector accepted (answered 202 for) whose id is not in the index.
 * Records the processor gave up on sit in the on-failure destination and can be replayed, but they
 * are not indexed, so they count as lost here too — a local run should index everything. Every
 * accepted id is looked up in the index (`IndexReader.holding`: the memory index, or searches by
 * id on OpenSearch), so "0 lost" is a check of ids, not of a count; an index that cannot be read
 * counts every id as lost, with the reason.
 *
 * The backup is checked the same way, by reading the archive back: every accepted id must be in
 * one of its objects (after the drain flushed Firehose's buffer). An id missing there is counted
 * in `missingFromBackup`, apart from `lost`, since the index still has it.
 */
import { Archive, Metrics } from "@spillway/core"
import { Effect, Metric, Result } from "effect"
import * as Text from "../Text.js"
import type * as DemoTraffic from "./DemoTraffic.js"
import type { IndexReader } from "./IndexReader.js"
import type { Ledger } from "./Ledger.js"

export interface Summary {
  /** Distinct records the demo generator sent. */
  readonly sent: number
  /** Demo records sent a second time on purpose. */
  readonly resent: number
  readonly accepted: number
  readonly distinctAccepted: number
  readonly rejected: number
  /** Requests refused whole (bad key, size, type, JSON). */
  readonly refusedRequests: number
  /** Accepted ids found in the index. */
  readonly indexed: number
  readonly duplicatesSkipped: number
  readonly onFailure: number
  /** Accepted ids not in the index (all of them when it could not be read). */
  readonly lost: number
  /** Why the index could not be read back, when it could not. */
  readonly indexError: string | undefined
  /** Accepted ids found in the backup archive. */
  readonly archived: number
  /** Objects in the backup archive, and the archive's location. */
  readonly archiveObjects: number
  readonly archiveBucket: string
  /** Accepted ids not in the backup archive (or `undefined` when it could not be read). */
  readonly missingFromBackup: number | undefined
  /** Why the archive could not be read back, when it could not. */
  readonly archiveError: string | undefined
  readonly delay: Metrics.DelayFigures
  /** Whether the pipeline had nothing left in flight when the summary was taken. */
  readonly drained: boolean
}

/** What the summary and the live view read from a pipeline, whichever its backend. */
export interface Observed {
  /** What the index holds, read back from it. */
  readonly indexed: IndexReader
  readonly processor: { readonly counters: Effect.Effect<{ readonly recordsDiscarded: number }> }
  readonly queue: { readonly stats: Effect.Effect<{ readonly total: number }> }
  /** The Firehose backup of the stream, and the archive it fills. */
  readonly backup: {
    readonly counters: Effect.Effect<{
      readonly recordsDelivered: number
      readonly objectsDelivered: number
      readonly buffered: number
      readonly lastError?: string
    }>
    readonly flush: Effect.Effect<void, Archive.ArchiveError>
  }
  readonly archive: Archive.Service
}

export const compute = (
  pipeline: Observed,
  ledger: Ledger,
  demo: DemoTraffic.Stats | undefined,
  drained: boolean,
  /** The archive hours to read back: from the start of the run to now. */
  archiveRange: Archive.Range
): Effect.Effect<Summary> =>
  Effect.gen(function* () {
    const figures = yield* ledger.figures
    const ids = yield* ledger.acceptedIds
    const found = yield* Effect.result(pipeline.indexed.holding(ids))
    const indexed = Result.isSuccess(found) ? found.success.size : 0
    const backup = yield* Effect.result(
      Archive.readEnvelopes(archiveRange).pipe(Effect.provideService(Archive.Archive, pipeline.archive))
    )
    let archived = 0
    if (Result.isSuccess(backup)) {
      const backedUp = new Set<string>(backup.success.envelopes.map((e) => e.record.id))
      for (const id of ids) if (backedUp.has(id)) archived++
    }
    return {
      sent: demo?.sent ?? 0,
      resent: demo?.resent ?? 0,
      accepted: figures.accepted,
      distinctAccepted: figures.distinctAccepted,
      rejected: figures.rejected,
      refusedRequests: figures.refusedRequests,
      indexed,
      duplicatesSkipped: (yield* Metric.value(Metrics.duplicatesSkipped)).count,
      onFailure: (yield* pipeline.processor.counters).recordsDiscarded,
      lost: ids.size - indexed,
      indexError: Result.isFailure(found) ? found.failure.message : undefined,
      archived,
      archiveObjects: Result.isSuccess(backup) ? backup.success.objects : 0,
      archiveBucket: pipeline.archive.bucket,
      missingFromBackup: Result.isSuccess(backup) ? ids.size - archived : undefined,
      archiveError: Result.isFailure(backup) ? backup.failure.message : undefined,
      delay: yield* Metrics.readDelay,
      drained
    }
  })

export const format = (s: Summary): string => {
  const row = (label: string, value: number | string, note = "") =>
    `  ${label.padEnd(20)}${(typeof value === "number" ? Text.number(value) : value).padStart(8)}${note === "" ? "" : `   ${note}`}`
  const ms = (v: number) => Text.number(Math.round(v))
  return [
    "summary",
    row(
      "sent",
      s.sent,
      s.resent > 0
        ? `demo ${Text.noun(s.sent, "record")} (+${Text.number(s.resent)} sent twice on purpose)`
        : `demo ${Text.noun(s.sent, "record")}`
    ),
    row("accepted", s.accepted, `${Text.count(s.distinctAccepted, "distinct id")}`),
    row(
      "rejected",
      s.rejected,
      s.refusedRequests > 0
        ? `${Text.noun(s.rejected, "record")}; ${Text.count(s.refusedRequests, "request")} refused`
        : ""
    ),
    row("indexed", s.indexed),
    row("duplicates skipped", s.duplicatesSkipped),
    row("on-failure", s.onFailure),
    row(
      "lost",
      s.lost,
      [
        ...(s.indexError === undefined ? [] : [`the index could not be read: ${s.indexError}`]),
        ...(s.drained ? [] : ["pipeline not drained in time"])
      ].join("; ")
    ),
    row(
      "backed up",
      s.archived,
      `in ${Text.count(s.archiveObjects, "object")} in ${s.archiveBucket}; ${
        s.missingFromBackup === undefined
          ? `the archive could not be read: ${s.archiveError ?? "no reason given"}`
          : `${Text.number(s.missingFromBackup)} missing`
      }`
    ),
    `  ${"delay (ms)".padEnd(20)}avg ${ms(s.delay.avg)}  p50 ${ms(s.delay.p50)}  p99 ${ms(s.delay.p99)}  max ${ms(s.delay.max)}`
  ].join("\n")
}
