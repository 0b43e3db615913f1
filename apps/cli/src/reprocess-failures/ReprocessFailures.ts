/**
 * `spillway reprocess-failures`: drains the on-failure queue by hand — what the failure-reprocessor
 * function does on the queue's event source mapping, run by an operator after a fix, with its
 * progress and a summary. The same stage: each message is an on-failure record (the range of a
 * batch the processor's mapping gave up on), read back from the stream by sequence number and
 * processed again (`Replay.replay`).
 *
 * Guarantees:
 * - A message is deleted only after its whole range was read back and every record of it saved.
 *   Anything else keeps it: a range past the stream's retention (listed with its shard, sequence
 *   range and arrival times: those records cannot come back), records that fail again (with the
 *   sink's reason), a range of another stream, a body that is not an on-failure record.
 * - Every message is handled at most once per run: messages are received with a visibility
 *   timeout longer than the run needs, and the ones kept are made visible again when the run ends,
 *   so the queue holds them as before (their receive count grew by one: the queue's redrive policy
 *   counts CLI receives too). A message that shows up twice (the run outlived the timeout) ends
 *   the drain.
 * - Reprocessing twice is harmless: the records are written by id (a document already there is
 *   overwritten with the same content).
 * - `dryRun` reads every range back (nothing is written or deleted) and counts what would be
 *   reprocessed, and what is past retention.
 */
import {
  type DedupCache,
  type DocumentSink,
  type FallbackQueue,
  OnFailure,
  RecordStream,
  Replay,
  Schedules,
  Telemetry
} from "@spillway/core"
import { Effect, Result, SchemaParser } from "effect"
import type { Progress } from "../backends/Progress.js"
import * as Text from "../Text.js"

export interface Options {
  readonly dryRun: boolean
  /** Stop after this many messages. @default all */
  readonly maxMessages?: number | undefined
  /** How long a received message stays invisible to others while this run holds it. */
  readonly visibilityTimeoutSeconds: number
}

/** The queue, with what the summary says about it. */
export interface Queue extends FallbackQueue.Service {
  /** `https://sqs…/spillway-on-failure`, or the rehearsal's name. */
  readonly name: string
  /** Messages on the queue now (visible and in flight), when the queue tells. */
  readonly depth: Effect.Effect<number | undefined>
}

export interface Range {
  readonly messageId: string
  readonly shardId: string
  readonly startSequenceNumber: string
  readonly endSequenceNumber: string
  readonly batchSize: number
  readonly firstArrival: string
  readonly lastArrival: string
  /** The on-failure record's request id (Lambda's), for the logs. */
  readonly requestId: string
}

export interface Reprocessed extends Range {
  readonly read: number
  readonly written: number
  readonly skipped: number
}

export interface Kept {
  readonly messageId: string
  /** Why the message stays on the queue. */
  readonly reason: string
  /** Its range, when the body is an on-failure record. */
  readonly range?: Range
  readonly lostToRetention: boolean
  /** Records of the range that failed again (the first ten). */
  readonly failedRecords?: ReadonlyArray<{
    readonly recordId?: string
    readonly sequenceNumber: string
    readonly reason: string
  }>
}

export interface Outcome {
  readonly dryRun: boolean
  readonly queue: string
  readonly received: number
  /** Done (deleted), or in a dry run: would be. */
  readonly reprocessed: ReadonlyArray<Reprocessed>
  readonly kept: ReadonlyArray<Kept>
  readonly records: {
    readonly read: number
    readonly written: number
    readonly skipped: number
    readonly failed: number
  }
  /** Why the drain ended before the queue was empty, when it did. */
  readonly stopped?: string
  /** Messages on the queue when the run ended, when the queue tells. */
  readonly left: number | undefined
}

const decode = SchemaParser.decodeUnknownResult(OnFailure.OnFailureRecordJson, { errors: "all" })

const rangeOf = (messageId: string, failure: OnFailure.OnFailureRecord): Range => {
  const info = failure.KinesisBatchInfo
  return {
    messageId,
    shardId: info.shardId,
    startSequenceNumber: info.startSequenceNumber,
    endSequenceNumber: info.endSequenceNumber,
    batchSize: info.batchSize,
    firstArrival: info.approximateArrivalOfFirstRecord,
    lastArrival: info.approximateArrivalOfLastRecord,
    requestId: failure.requestContext.requestId
  }
}

export const describeRange = (r: Range): string =>
  `${r.shardId} ${r.startSequenceNumber}–${r.endSequenceNumber} (${Text.count(r.batchSize, "record")}, arrived ${r.firstArrival}${
    r.lastArrival === r.firstArrival ? "" : ` – ${r.lastArrival}`
  })`

export const run = Effect.fn("ReprocessFailures.run")(function* (
  queue: Queue,
  options: Options,
  progress: Progress
): Effect.fn.Return<
  Outcome,
  never,
  RecordStream.RecordStream | DedupCache.DedupCache | DocumentSink.DocumentSink
> {
  const stream = yield* RecordStream.RecordStream
  const reprocessed: Array<Reprocessed> = []
  const kept: Array<Kept> = []
  // Receipt handles of the messages this run holds (received, not deleted): visible again at the end.
  const inHand = new Set<string>()
  const seen = new Set<string>()
  const totals = { read: 0, written: 0, skipped: 0, failed: 0 }
  let received = 0
  let stopped: string | undefined
  const depthAtStart = yield* queue.depth
  const limit = options.maxMessages ?? Number.POSITIVE_INFINITY
  const of = depthAtStart === undefined ? "" : ` of ~${Text.number(depthAtStart)}`

  const keep = (entry: Kept, receiptHandle: string) =>
    Effect.gen(function* () {
      kept.push(entry)
      inHand.add(receiptHandle)
      yield* progress.note(
        `[${received}${of}] kept ${entry.range === undefined ? `message ${entry.messageId}` : describeRange(entry.range)}: ${entry.reason}`
      )
    })

  const handle = (message: FallbackQueue.QueueMessage) =>
    Effect.gen(function* () {
      const decoded = decode(message.body)
      if (Result.isFailure(decoded)) {
        return yield* keep(
          {
            messageId: message.messageId,
            reason: `not an on-failure record: ${Telemetry.formatIssue(decoded.failure, "body")}`,
            lostToRetention: false
          },
          message.receiptHandle
        )
      }
      const failure = decoded.success
      const range = rangeOf(message.messageId, failure)
      if (failure.KinesisBatchInfo.streamArn !== stream.streamArn) {
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: `its range is in stream ${failure.KinesisBatchInfo.streamArn}, not ${stream.streamArn}: reprocess it with --stream set to that one`,
            lostToRetention: false
          },
          message.receiptHandle
        )
      }
      if (options.dryRun) {
        const read = yield* stream
          .readRange({
            shardId: range.shardId,
            startSequenceNumber: range.startSequenceNumber,
            endSequenceNumber: range.endSequenceNumber
          })
          .pipe(Effect.retry({ schedule: Schedules.streamRead, while: (e) => e.isRetryable }), Effect.result)
        if (Result.isFailure(read)) {
          const lost = read.failure.reason === "TrimmedByRetention"
          kept.push({
            messageId: message.messageId,
            range,
            reason: lost ? `past the stream's retention: ${read.failure.message}` : read.failure.message,
            lostToRetention: lost
          })
          return yield* progress.note(
            `[${received}${of}] ${lost ? "LOST to retention" : "unreadable"}: ${describeRange(range)}`
          )
        }
        totals.read += read.success.length
        reprocessed.push({ ...range, read: read.success.length, written: 0, skipped: 0 })
        return yield* progress.tick(
          `[${received}${of}] would reprocess ${describeRange(range)}: ${Text.count(read.success.length, "record")} read back`
        )
      }

      const result = yield* Replay.replay([failure])
      totals.read += result.read
      totals.written += result.written
      totals.skipped += result.skipped
      totals.failed += result.failed.length
      const lost = result.unreadable.find((u) => u.lostToRetention)
      if (lost !== undefined) {
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: "LOST: past the stream's retention, these records cannot be reprocessed",
            lostToRetention: true
          },
          message.receiptHandle
        )
      }
      const unreadable = result.unreadable[0]
      if (unreadable !== undefined) {
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: `the range could not be read back: ${unreadable.reason}`,
            lostToRetention: false
          },
          message.receiptHandle
        )
      }
      if (result.failed.length > 0) {
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: `${Text.count(result.failed.length, "record")} failed again: ${result.failed[0]!.reason}`,
            lostToRetention: false,
            failedRecords: result.failed.slice(0, 10).map((f) => ({
              ...(f.recordId === undefined ? {} : { recordId: f.recordId }),
              sequenceNumber: f.sequenceNumber,
              reason: f.reason
            }))
          },
          message.receiptHandle
        )
      }
      if (result.read === 0) {
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: "the stream answered no record for the range",
            lostToRetention: false
          },
          message.receiptHandle
        )
      }
      const deleted = yield* Effect.result(queue.delete(message.receiptHandle))
      if (Result.isFailure(deleted)) {
        // The records are saved; the message comes back, and reprocessing it again changes nothing.
        return yield* keep(
          {
            messageId: message.messageId,
            range,
            reason: `reprocessed, but the message could not be deleted: ${deleted.failure.message}`,
            lostToRetention: false
          },
          message.receiptHandle
        )
      }
      inHand.delete(message.receiptHandle)
      reprocessed.push({ ...range, read: result.read, written: result.written, skipped: result.skipped })
      yield* progress.tick(
        `[${received}${of}] reprocessed ${describeRange(range)}: ${Text.number(result.written)} written, ${Text.number(result.skipped)} already there`
      )
    })

  const drain = Effect.gen(function* () {
    receiving: while (received < limit) {
      const batch = yield* queue
        .receive({
          maxMessages: Math.min(10, limit - received),
          visibilityTimeoutSeconds: options.visibilityTimeoutSeconds
        })
        .pipe(Effect.result)
      // Not retried: a queue that does not answer ends the drain (partial); the next run goes on.
      if (Result.isFailure(batch)) {
        stopped = `the queue stopped answering: ${batch.failure.message}`
        yield* progress.note(stopped)
        break
      }
      if (batch.success.length === 0) break
      for (const message of batch.success) inHand.add(message.receiptHandle)
      for (const message of batch.success) {
        if (seen.has(message.messageId)) {
          // Back after its visibility timeout: this run has had it, and everything after it.
          stopped = `message ${message.messageId} came back after ${options.visibilityTimeoutSeconds} s (--visibility-timeout): the run stops so as not to handle it twice`
          yield* progress.note(stopped)
          break receiving
        }
        seen.add(message.messageId)
        received++
        yield* handle(message)
      }
    }
    yield* progress.done
  })
  // What this run holds — kept, only looked at, or not reached when it was interrupted — is visible
  // again at once, as it was before the run.
  yield* drain.pipe(
    Effect.ensuring(
      Effect.suspend(() =>
        Effect.forEach(
          [...inHand],
          (receiptHandle) => Effect.ignore(queue.changeVisibility(receiptHandle, 0)),
          {
            concurrency: 10,
            discard: true
          }
        )
      )
    )
  )

  return {
    dryRun: options.dryRun,
    queue: queue.name,
    received,
    reprocessed,
    kept,
    records: totals,
    ...(stopped === undefined ? {} : { stopped }),
    left: yield* queue.depth
  }
})

/** 0 when every message received was reprocessed (or would be), 1 when any is left. */
export const exitCode = (result: Outcome): 0 | 1 =>
  result.kept.length > 0 || result.stopped !== undefined ? 1 : 0

const indent = (lines: ReadonlyArray<string>) => lines.map((l) => `    ${l}`)

/** The summary on stdout. */
export const format = (result: Outcome, backend: string): string => {
  const lost = result.kept.filter((k) => k.lostToRetention)
  const other = result.kept.filter((k) => !k.lostToRetention)
  const verb = result.dryRun ? "would be reprocessed" : "reprocessed and deleted"
  const lines = [
    `reprocess-failures (${backend}${result.dryRun ? ", dry run: nothing written or deleted" : ""}): ${result.queue}`,
    `  messages   ${Text.count(result.received, "received", "received")}: ${Text.number(result.reprocessed.length)} ${verb}, ${Text.number(result.kept.length)} kept on the queue`,
    result.dryRun
      ? `  records    ${Text.count(result.records.read, "record")} read back from the stream`
      : `  records    ${Text.number(result.records.read)} read back, ${Text.number(result.records.written)} written, ${Text.number(result.records.skipped)} already there, ${Text.number(result.records.failed)} failed again`
  ]
  if (lost.length > 0) {
    const records = lost.reduce((n, k) => n + (k.range?.batchSize ?? 0), 0)
    lines.push(
      `  LOST to retention: ${Text.count(lost.length, "range")}, ${Text.count(records, "record")}; the stream no longer holds them (their messages stay on the queue until its dead-letter queue takes them):`,
      ...indent(
        lost.map(
          (k) => `${k.range === undefined ? k.messageId : describeRange(k.range)}, message ${k.messageId}`
        )
      )
    )
  }
  if (other.length > 0) {
    lines.push(
      `  kept: ${Text.count(other.length, "message")}:`,
      ...indent(
        other.map(
          (k) =>
            `${k.range === undefined ? `message ${k.messageId}` : `${describeRange(k.range)}, message ${k.messageId}`}: ${k.reason}`
        )
      )
    )
  }
  if (result.stopped !== undefined) lines.push(`  stopped: ${result.stopped}`)
  if (result.left !== undefined) lines.push(`  left       ${Text.count(result.left, "message")} on the queue`)
  const code = exitCode(result)
  lines.push(
    code === 0
      ? `done: ${result.received === 0 ? "the queue is empty" : `every message received ${result.dryRun ? "can be reprocessed" : "was reprocessed"}`}`
      : `partial (exit 1): ${Text.count(result.kept.length, "message")} left${lost.length > 0 ? `, ${Text.count(lost.length, "range")} lost to retention` : ""}`
  )
  return lines.join("\n")
}
