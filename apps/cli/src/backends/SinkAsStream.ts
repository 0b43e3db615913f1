/**
 * The sink as the target of a backup replay (`spillway replay --to-sink`): a `RecordStream` whose
 * `putRecords` runs the records through the processor's own stage (`Process.process`: decode,
 * dedup cache, bulk write with retries) instead of a stream. So `BackupReplay.replayArchive` — its
 * checkpoints, its pacing, its progress — replays straight into the index without a second
 * implementation of either.
 *
 * Outcomes: a record written, or skipped as a duplicate, is `Stored`; one the sink answered
 * retryable is `Failed` (the replay backs off and sends it again, then stops at its checkpoint);
 * one the sink refused for good (a document the index rejects) is `Stored` for the replay — sending
 * it again cannot help — and kept in `rejected` for the summary. Reading back is not offered.
 */
import { type DedupCache, type DocumentSink, Process, RecordStream } from "@spillway/core"
import { Clock, Effect } from "effect"

export interface Rejected {
  readonly recordId: string | undefined
  readonly reason: string
}

export interface SinkStream {
  readonly stream: RecordStream.Service
  /** Records the sink refused for good, in the order met. */
  readonly rejected: Effect.Effect<ReadonlyArray<Rejected>>
}

export const make = (
  label: string
): Effect.Effect<SinkStream, never, DedupCache.DedupCache | DocumentSink.DocumentSink> =>
  Effect.gen(function* () {
    const services = yield* Effect.context<DedupCache.DedupCache | DocumentSink.DocumentSink>()
    const rejected: Array<Rejected> = []
    let sequence = 0
    const putRecords = Effect.fn("SinkAsStream.putRecords")(function* (
      entries: ReadonlyArray<RecordStream.PutEntry>
    ) {
      const now = yield* Clock.currentTimeMillis
      const records: Array<RecordStream.StreamRecord> = entries.map((entry) => ({
        shardId: "archive",
        sequenceNumber: String(++sequence),
        partitionKey: entry.partitionKey,
        data: entry.data,
        approximateArrivalTimestamp: now
      }))
      const result = yield* Effect.provide(Process.process(records), services)
      const failed = new Map(result.failed.map((f) => [f.sequenceNumber, f]))
      return records.map((record): RecordStream.PutOutcome => {
        const failure = failed.get(record.sequenceNumber)
        if (failure === undefined || !failure.retryable) {
          if (failure !== undefined) rejected.push({ recordId: failure.recordId, reason: failure.reason })
          return { _tag: "Stored", shardId: record.shardId, sequenceNumber: record.sequenceNumber }
        }
        return { _tag: "Failed", errorCode: "InternalFailure", message: failure.reason }
      })
    })
    return {
      stream: RecordStream.RecordStream.of({
        streamArn: `sink:${label}`,
        putRecords,
        readRange: () =>
          Effect.fail(
            new RecordStream.RecordStreamError({
              reason: "InvalidRequest",
              message: "the sink cannot be read as a stream"
            })
          )
      }),
      rejected: Effect.sync(() => [...rejected])
    }
  })
