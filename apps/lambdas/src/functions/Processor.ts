/**
 * The processor function: the stream's Kinesis events through `Process` (dedup, transform, bulk
 * write) into the sink, answered with the records that could not be saved.
 *
 * The event's records are processed in order, a slice of `sliceSize` at a time (one dedup lookup
 * and one bulk write each), and only while the deadline allows; the records of slices not
 * finished are reported with the failed ones. The response lists sequence numbers lowest first:
 * Lambda checkpoints before the lowest and sends everything from there again, and the dedup cache
 * skips what was written since. A poison record (one that is not an envelope, or that the sink
 * refuses) is reported alone, so with bisection and a retry limit the mapping isolates it and
 * sends it to the on-failure destination while the shard moves on.
 *
 * With `REPORT_BATCH_ITEM_FAILURES=false` (a mapping without partial batch responses) it is
 * `Process.kinesisHandler` without them: the first slice with a record that could not be saved
 * fails the invocation, as does running out of time.
 */
import { type DedupCache, type DocumentSink, LambdaEvents, Process } from "@spillway/core"
import { Array as Arr, Effect, Layer } from "effect"
import * as BatchResponse from "../runtime/BatchResponse.js"
import * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

/** Records per slice: the deadline is looked at between slices. */
export const sliceSize = 100

export type Services = DedupCache.DedupCache | DocumentSink.DocumentSink

export const handle = Effect.fn("Processor.handle")(function* (
  event: LambdaEvents.KinesisEvent,
  deadline: Deadline.Deadline
) {
  const { reportBatchItemFailures } = yield* BatchResponse.BatchSettings
  const processSlice = Process.kinesisHandler({ reportBatchItemFailures })
  const { finished, unfinished } = yield* Deadline.forEachUnit(
    deadline,
    Arr.chunksOf(event.Records, sliceSize),
    (Records) => processSlice({ Records })
  ).pipe(
    Effect.catchTag("BatchFailed", (e) =>
      Effect.fail(
        new BatchResponse.BatchNotSaved({
          message: `${e.failed} records could not be saved (the first: ${e.firstReason}); failing the invocation so that Lambda sends the batch again (REPORT_BATCH_ITEM_FAILURES=false)`
        })
      )
    )
  )
  const results = finished.map(({ result }) => ("batchItemFailures" in result ? result.result : result))
  const failed = results.flatMap((result) => result.failed)
  const unfinishedRecords = unfinished.flat()
  yield* BatchResponse.noteUnfinished("records", unfinishedRecords.length, deadline)
  for (const failure of failed.slice(0, 10)) {
    yield* Effect.logWarning(`record not saved: ${failure.reason}`).pipe(
      Effect.annotateLogs({
        sequenceNumber: failure.sequenceNumber,
        ...(failure.recordId === undefined ? {} : { recordId: failure.recordId }),
        retryable: failure.retryable
      })
    )
  }
  const written = results.reduce((n, result) => n + result.written, 0)
  const skipped = results.reduce((n, result) => n + result.skipped, 0)
  yield* Effect.logInfo(
    `processed ${event.Records.length} records: ${written} written, ${skipped} duplicates skipped, ${failed.length} failed, ${unfinishedRecords.length} unfinished`
  ).pipe(
    Effect.annotateLogs({
      records: event.Records.length,
      written,
      skipped,
      failed: failed.length,
      unfinished: unfinishedRecords.length
    })
  )
  return yield* BatchResponse.respond({
    failed: failed.map((failure) => failure.sequenceNumber),
    unfinished: unfinishedRecords.map((record) => record.kinesis.sequenceNumber),
    order: "sequence"
  })
})

/** The processor's handler over `layer` (`AwsPipeline.processor` deployed, a memory pipeline's in tests). */
export interface Options extends LambdaHandler.Options {
  /** The function's name in logs, errors and the EMF `function` dimension. @default "processor" */
  readonly name?: string
}

export const make = <E>(
  layer: Layer.Layer<Services, E>,
  { name = "processor", ...options }: Options = {}
): LambdaHandler.Handler<LambdaEvents.BatchResponse> =>
  LambdaHandler.make(
    Layer.merge(layer, BatchResponse.layerConfig),
    {
      name,
      event: LambdaEvents.KinesisEvent,
      eventDescription: "a Kinesis event (Records of a stream's event source mapping)",
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
