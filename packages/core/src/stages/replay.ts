/**
 * The replay tool's program: for each batch the event source mapping gave up on (an on-failure
 * record), read the records back from the stream by shard and sequence number and run them
 * through `process` again. Records already written are skipped by the cache or overwritten with
 * the same document, so replaying twice is harmless.
 *
 * Records the stream no longer holds (past retention) cannot be replayed; they are reported as
 * `lostToRetention` with their range — the one place the pipeline can lose data, and it says so.
 */
import { Effect } from "effect"
import type { DedupCache } from "../DedupCache.js"
import type * as DocumentSink from "../DocumentSink.js"
import type { OnFailureRecord } from "../OnFailure.js"
import * as RecordStream from "../RecordStream.js"
import * as Schedules from "../Schedules.js"
import { type ProcessFailure, process } from "./process.js"

export interface ReplayResult {
  readonly read: number
  readonly written: number
  readonly skipped: number
  /** Records that failed again; their reasons say why (e.g. the document is rejected by the sink). */
  readonly failed: ReadonlyArray<ProcessFailure & { readonly shardId: string }>
  /** Ranges that could not be read back, with the stream's reason. */
  readonly unreadable: ReadonlyArray<
    RecordStream.ShardRange & { readonly reason: string; readonly lostToRetention: boolean }
  >
}

export const replay = Effect.fn("replay")(function* (
  failures: ReadonlyArray<OnFailureRecord>
): Effect.fn.Return<ReplayResult, never, RecordStream.RecordStream | DedupCache | DocumentSink.DocumentSink> {
  const stream = yield* RecordStream.RecordStream
  let read = 0
  let written = 0
  let skipped = 0
  const failed: Array<ProcessFailure & { readonly shardId: string }> = []
  const unreadable: Array<
    RecordStream.ShardRange & { readonly reason: string; readonly lostToRetention: boolean }
  > = []
  for (const failure of failures) {
    const range: RecordStream.ShardRange = {
      shardId: failure.KinesisBatchInfo.shardId,
      startSequenceNumber: failure.KinesisBatchInfo.startSequenceNumber,
      endSequenceNumber: failure.KinesisBatchInfo.endSequenceNumber
    }
    const records = yield* stream.readRange(range).pipe(
      Effect.retry({ schedule: Schedules.streamRead, while: (e) => e.isRetryable }),
      Effect.tapError((error) =>
        Effect.sync(() =>
          unreadable.push({
            ...range,
            reason: error.message,
            lostToRetention: error.reason === "TrimmedByRetention"
          })
        )
      ),
      Effect.orElseSucceed(() => [])
    )
    if (records.length === 0) continue
    const result = yield* process(records)
    read += records.length
    written += result.written
    skipped += result.skipped
    for (const f of result.failed) failed.push({ ...f, shardId: range.shardId })
  }
  return { read, written, skipped, failed, unreadable }
})
