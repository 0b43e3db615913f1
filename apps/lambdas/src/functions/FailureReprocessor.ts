/**
 * The failure reprocessor function: the on-failure queue's SQS events, each message an on-failure
 * record (`OnFailure.OnFailureRecord`) the processor's event source mapping wrote when it gave up
 * on a batch. It carries no records, only the shard and sequence range, so each message's range is
 * read back from the stream by sequence number and processed again (`Replay`: the dedup cache
 * skips what was written meanwhile).
 *
 * A message is deleted (not reported) only when its whole range was read back and every record of
 * it saved; otherwise it is reported failed, so SQS keeps it, sends it again after the visibility
 * timeout, and the queue's redrive policy moves it to its dead-letter queue when it keeps failing —
 * the record of the loss stays somewhere a person looks. A range the stream has already trimmed
 * (retention) cannot come back: that is logged as an `ERROR` naming the on-failure record, the
 * shard and the sequence range (`lostToRetention: true`) and counted in
 * `spillway_records_lost_to_retention`, every time the message is received. A body that is not an
 * on-failure record is reported failed the same way, with the reason.
 *
 * Messages are handled one at a time while the deadline allows; those not started, or cut off,
 * are reported failed.
 */
import {
  type DedupCache,
  type DocumentSink,
  LambdaEvents,
  OnFailure,
  type RecordStream,
  Replay,
  Telemetry
} from "@spillway/core"
import { Effect, Layer, Metric, Result, SchemaParser } from "effect"
import * as BatchResponse from "../runtime/BatchResponse.js"
import * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = RecordStream.RecordStream | DedupCache.DedupCache | DocumentSink.DocumentSink

export const rangesLostToRetention = Metric.counter("spillway_ranges_lost_to_retention", {
  incremental: true
})
export const recordsLostToRetention = Metric.counter("spillway_records_lost_to_retention", {
  incremental: true
})

const decodeOnFailureRecord = SchemaParser.decodeUnknownResult(OnFailure.OnFailureRecordJson, {
  errors: "all"
})

/** Replays one message's range; whether the message is done (may be deleted). */
export const reprocess = Effect.fn("FailureReprocessor.reprocess")(function* (
  message: LambdaEvents.SqsEventRecord
) {
  const decoded = decodeOnFailureRecord(message.body)
  if (Result.isFailure(decoded)) {
    yield* Effect.logError(
      `message is not an on-failure record, kept on the queue: ${Telemetry.formatIssue(decoded.failure, "body")}`
    ).pipe(Effect.annotateLogs({ messageId: message.messageId }))
    return false
  }
  const failure = decoded.success
  const info = failure.KinesisBatchInfo
  const range = {
    messageId: message.messageId,
    onFailureRequestId: failure.requestContext.requestId,
    condition: failure.requestContext.condition,
    streamArn: info.streamArn,
    shardId: info.shardId,
    startSequenceNumber: info.startSequenceNumber,
    endSequenceNumber: info.endSequenceNumber,
    batchSize: info.batchSize,
    approximateArrivalOfFirstRecord: info.approximateArrivalOfFirstRecord
  }
  const result = yield* Replay.replay([failure])
  for (const unreadable of result.unreadable) {
    if (unreadable.lostToRetention) {
      yield* Metric.update(rangesLostToRetention, 1)
      yield* Metric.update(recordsLostToRetention, info.batchSize)
      yield* Effect.logError(
        `LOST: ${info.batchSize} records of ${info.shardId} from ${info.startSequenceNumber} to ${info.endSequenceNumber} are past the stream's retention and cannot be reprocessed: ${unreadable.reason}`
      ).pipe(Effect.annotateLogs({ ...range, lostToRetention: true }))
    } else {
      yield* Effect.logWarning(`range not read back, kept on the queue: ${unreadable.reason}`).pipe(
        Effect.annotateLogs({ ...range, lostToRetention: false })
      )
    }
  }
  for (const failed of result.failed.slice(0, 10)) {
    yield* Effect.logWarning(`record failed again: ${failed.reason}`).pipe(
      Effect.annotateLogs({
        ...range,
        sequenceNumber: failed.sequenceNumber,
        ...(failed.recordId === undefined ? {} : { recordId: failed.recordId }),
        retryable: failed.retryable
      })
    )
  }
  const emptyRead = result.unreadable.length === 0 && result.read === 0
  if (emptyRead) {
    yield* Effect.logWarning("the stream answered no record for the range, kept on the queue").pipe(
      Effect.annotateLogs(range)
    )
  }
  const done = result.unreadable.length === 0 && result.failed.length === 0 && !emptyRead
  yield* Effect.logInfo(
    `${done ? "reprocessed" : "could not reprocess"} ${info.shardId} ${info.startSequenceNumber}–${info.endSequenceNumber}: ${result.read} read, ${result.written} written, ${result.skipped} skipped, ${result.failed.length} failed`
  ).pipe(
    Effect.annotateLogs({
      ...range,
      read: result.read,
      written: result.written,
      skipped: result.skipped,
      failed: result.failed.length
    })
  )
  return done
})

export const handle = Effect.fn("FailureReprocessor.handle")(function* (
  event: LambdaEvents.SqsEvent,
  deadline: Deadline.Deadline
) {
  const { finished, unfinished } = yield* Deadline.forEachUnit(deadline, event.Records, reprocess)
  yield* BatchResponse.noteUnfinished("messages", unfinished.length, deadline)
  return yield* BatchResponse.respond({
    failed: finished.filter(({ result }) => !result).map(({ unit }) => unit.messageId),
    unfinished: unfinished.map((message) => message.messageId)
  })
})

/** The failure reprocessor's handler over `layer` (`AwsPipeline.failureReprocessor` deployed). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<LambdaEvents.BatchResponse> =>
  LambdaHandler.make(
    Layer.merge(layer, BatchResponse.layerConfig),
    {
      name: "failure-reprocessor",
      event: LambdaEvents.SqsEvent,
      eventDescription: "an SQS event (Records of the on-failure queue's event source mapping)",
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
