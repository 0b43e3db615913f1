/**
 * The processor: turns a batch of stream records into documents in the sink.
 *
 * For each batch it skips ids the dedup cache has seen, transforms the rest, bulk-writes them,
 * retries the items the sink answered as retryable on `Schedules.sinkWrite`, marks what was
 * written in the cache, records end-to-end delay, and returns what could not be saved so the
 * handler can report a partial batch failure. It never fails as a whole: a failure it cannot
 * handle is reported per record, so the event source mapping retries only what is needed.
 */
import { Clock, Effect, Metric, Result, Schema } from "effect"
import { DedupCache } from "../DedupCache.js"
import * as DocumentSink from "../DocumentSink.js"
import type * as LambdaEvents from "../LambdaEvents.js"
import * as Metrics from "../Metrics.js"
import { compareSequenceNumbers, type StreamRecord } from "../RecordStream.js"
import { type EnvelopeFields, readEnvelope } from "../Telemetry.js"
import { writeWithRetries } from "./writeDocuments.js"

export interface ProcessFailure {
  readonly sequenceNumber: string
  /** Absent when the record could not be decoded. */
  readonly recordId?: string
  readonly reason: string
  /** Whether retrying the record can help (false for undecodable or rejected documents). */
  readonly retryable: boolean
}

export interface ProcessResult {
  readonly written: number
  readonly skipped: number
  readonly failed: ReadonlyArray<ProcessFailure>
}

/** What `process` reads of a stream record. */
export type ProcessedRecord = Pick<StreamRecord, "sequenceNumber" | "data">

export const process = Effect.fn("process")(function* (
  records: ReadonlyArray<ProcessedRecord>
): Effect.fn.Return<ProcessResult, never, DedupCache | DocumentSink.DocumentSink> {
  const cache = yield* DedupCache
  const sink = yield* DocumentSink.DocumentSink
  const failed: Array<ProcessFailure> = []

  // Decode; one entry per record id, in first-seen order (a batch can hold the same id twice after
  // a redrive: the later copies' sequence numbers are kept with the first). Plain loops and
  // parallel arrays: this is the processor's per-record path.
  const envelopes: Array<EnvelopeFields> = []
  const ids: Array<string> = []
  const firstSequenceNumbers: Array<string> = []
  const positionOf = new Map<string, number>()
  let copies: Map<number, Array<string>> | undefined
  for (const record of records) {
    const decoded = readEnvelope(record.data)
    if (Result.isFailure(decoded)) {
      failed.push({ sequenceNumber: record.sequenceNumber, reason: decoded.failure.reason, retryable: false })
      continue
    }
    const id = decoded.success.record.id
    const position = positionOf.get(id)
    if (position === undefined) {
      positionOf.set(id, ids.length)
      ids.push(id)
      envelopes.push(decoded.success)
      firstSequenceNumbers.push(record.sequenceNumber)
    } else {
      copies ??= new Map()
      const list = copies.get(position)
      if (list === undefined) copies.set(position, [record.sequenceNumber])
      else list.push(record.sequenceNumber)
    }
  }

  const seen = yield* cache.seen(ids)
  const toWrite: Array<EnvelopeFields> = []
  const writePosition: Array<number> = []
  for (let i = 0; i < ids.length; i++) {
    if (seen[i] !== true) {
      toWrite.push(envelopes[i]!)
      writePosition.push(i)
    }
  }

  const outcomes =
    toWrite.length > 0 ? yield* writeWithRetries(sink, toWrite, (landed) => markWritten(cache, landed)) : []

  let written = 0
  let skipped = 0
  let next = 0
  for (let i = 0; i < ids.length; i++) {
    const extra = copies?.get(i)
    const count = 1 + (extra?.length ?? 0)
    if (seen[i] === true) {
      skipped += count
      continue
    }
    // `writePosition` lists the written positions in order: this one is the next of them.
    const outcome = writePosition[next] === i ? outcomes[next++] : undefined
    if (outcome?._tag === "Written") {
      written += 1
      // Further copies of the id in this batch are duplicates.
      skipped += count - 1
    } else {
      const reason = outcome?.reason ?? "not written"
      const retryable = outcome?._tag !== "Rejected"
      const recordId = ids[i]!
      failed.push({ sequenceNumber: firstSequenceNumbers[i]!, recordId, reason, retryable })
      for (const sequenceNumber of extra ?? []) failed.push({ sequenceNumber, recordId, reason, retryable })
    }
  }

  yield* Metric.update(Metrics.duplicatesSkipped, skipped)
  yield* Metric.update(Metrics.recordsWritten, written)
  yield* Metric.update(Metrics.recordsFailed, failed.length)
  return { written, skipped, failed }
})

/** Marks newly written ids in the cache and records their end-to-end delay. */
const markWritten = (
  cache: DedupCache["Service"],
  landed: ReadonlyArray<EnvelopeFields>
): Effect.Effect<void> =>
  landed.length === 0
    ? Effect.void
    : Effect.gen(function* () {
        yield* cache.markProcessed(landed.map((e) => e.record.id))
        const now = yield* Clock.currentTimeMillis
        yield* Metrics.recordDelays(
          now,
          landed.map((e) => e.receivedAt)
        )
      })

/** The two fields `process` reads, straight from the event's entry (no shard id, no arrival time). */
const fromKinesisEntry = (record: LambdaEvents.KinesisEventRecord): ProcessedRecord => ({
  sequenceNumber: record.kinesis.sequenceNumber,
  data: Buffer.from(record.kinesis.data, "base64")
})

/**
 * The Lambda side of the processor: the event's records through `process`, and the records that
 * failed as a `batchItemFailures` response (Kinesis checkpoints before the lowest of them).
 */
export const processKinesisEvent = (
  event: LambdaEvents.KinesisEvent
): Effect.Effect<
  LambdaEvents.BatchResponse & { readonly result: ProcessResult },
  never,
  DedupCache | DocumentSink.DocumentSink
> =>
  process(event.Records.map(fromKinesisEntry)).pipe(
    Effect.map((result) => ({
      result,
      batchItemFailures: [...result.failed]
        .sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber))
        .map((f) => ({ itemIdentifier: f.sequenceNumber }))
    }))
  )

/** The batch had records that could not be saved (for mappings without partial batch response). */
export class BatchFailed extends Schema.TaggedError<BatchFailed>()("BatchFailed", {
  failed: Schema.Number,
  firstReason: Schema.String
}) {
  get isRetryable(): boolean {
    return true
  }
}

/**
 * For an event source mapping without `ReportBatchItemFailures`: any record that could not be
 * saved fails the whole invocation, since Lambda would read a partial response as success and
 * move past records that were never written.
 */
export const processKinesisEventOrFail = (
  event: LambdaEvents.KinesisEvent
): Effect.Effect<ProcessResult, BatchFailed, DedupCache | DocumentSink.DocumentSink> =>
  process(event.Records.map(fromKinesisEntry)).pipe(
    Effect.filterOrFail(
      (result) => result.failed.length === 0,
      (result) =>
        new BatchFailed({ failed: result.failed.length, firstReason: result.failed[0]?.reason ?? "" })
    )
  )

/**
 * The processor's handler for a mapping, chosen by the mapping's `ReportBatchItemFailures`: with
 * it, the partial batch response (`processKinesisEvent`); without it, any record that could not
 * be saved fails the invocation (`processKinesisEventOrFail`), since Lambda would read a partial
 * response as success.
 */
export const kinesisHandler =
  (mapping: { readonly reportBatchItemFailures?: boolean | undefined }) =>
  (
    event: LambdaEvents.KinesisEvent
  ): Effect.Effect<
    ProcessResult | (LambdaEvents.BatchResponse & { readonly result: ProcessResult }),
    BatchFailed,
    DedupCache | DocumentSink.DocumentSink
  > =>
    mapping.reportBatchItemFailures === true ? processKinesisEvent(event) : processKinesisEventOrFail(event)
