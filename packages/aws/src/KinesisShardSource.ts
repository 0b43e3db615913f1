/**
 * The core `ShardReader` port over the real Kinesis API: the read side of a stream as the event
 * source mapping and Firehose emulations of `@spillway/memory` poll it, so `spillway dev --backend emulators`
 * runs the same mapping (bisect, partial batch response, retry limit, on-failure destination)
 * against kinesalite as memory mode runs against `MemoryStream`.
 *
 * Guarantees:
 * - the shards are listed once, at `make` (ListShards, following `NextToken`): a local run does not
 *   reshard, and the mapping polls a fixed set of shards;
 * - `getRecords(shardId, { after, limit })` returns the records of the shard after `after` (from the
 *   trim horizon when `after` is undefined), in sequence order, at most `limit`. The iterator of the
 *   previous read is kept and reused when the next read continues where it ended (the common case:
 *   the checkpoint moved to the last record returned); any other position gets a fresh
 *   `GetShardIterator` (`AFTER_SEQUENCE_NUMBER` or `TRIM_HORIZON`), so a partial batch response that
 *   moves the checkpoint back never skips or repeats a record. An expired iterator (they live five
 *   minutes) is renewed from the same position once per call. Kinesis may answer an empty page while
 *   records remain (`MillisBehindLatest > 0`): a few more pages are read before answering "nothing";
 * - `shardTips` is each shard's newest sequence number present when it is called, found by reading
 *   ahead: a second iterator per shard follows the shard from the last tip it saw to the end
 *   (`MillisBehindLatest` 0 on an empty page). Tracking only what `getRecords` returned would report
 *   a shard whose unread records nobody polled yet as caught up, and the mapping's idle check (every
 *   checkpoint at its tip) would end a drain with records still unprocessed;
 * - SDK failures become `RecordStreamError` with `KinesisRecordStream.reasonOf`'s reasons. A failed
 *   read-ahead (`shardTips` cannot fail in its contract) is logged and keeps the shard's last known
 *   tip; the next call reads on from there. A caller that must not act on a stale tip (a drain)
 *   should see idleness twice in a row, as `spillway dev` does.
 */
import { ListShardsCommand, type ListShardsCommandOutput } from "@aws-sdk/client-kinesis"
import type { RecordStream, ShardReader } from "@spillway/core"
import { Effect, Result, Semaphore } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import * as KinesisReads from "./internal/kinesisReads.js"
import { KinesisClient } from "./KinesisClient.js"

export interface Options {
  readonly streamName: string
  /** The stream's ARN; its region and account are what the mapping writes into events. */
  readonly streamArn: string
  /** The stream's retention, which bounds the age of a record the mapping still retries. @default 24 */
  readonly retentionHours?: number
  /** Empty pages read in a row, while Kinesis says records remain, before `getRecords` answers none. @default 5 */
  readonly maxEmptyPages?: number
}

const { streamError, fromSdk } = KinesisReads

/** An iterator and the position it continues from (`undefined`: the trim horizon). */
interface Cursor {
  readonly after: string | undefined
  readonly iterator: string
}

export const make = (
  options: Options
): Effect.Effect<ShardReader.Service, RecordStream.RecordStreamError, KinesisClient> =>
  Effect.gen(function* () {
    const client = yield* KinesisClient
    const { streamName, streamArn } = options
    const maxEmptyPages = options.maxEmptyPages ?? 5
    const arn = ClientConfig.parseArn("kinesis", streamArn)
    if (Result.isFailure(arn)) {
      return yield* streamError("InvalidRequest", `not a Kinesis stream ARN: ${streamArn}`)
    }

    const shardIds: Array<string> = []
    let nextToken: string | undefined
    do {
      const token = nextToken
      const output: ListShardsCommandOutput = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new ListShardsCommand(token === undefined ? { StreamName: streamName } : { NextToken: token }),
            { abortSignal: signal }
          ),
        catch: fromSdk("ListShards")
      })
      for (const shard of output.Shards ?? []) if (shard.ShardId !== undefined) shardIds.push(shard.ShardId)
      nextToken = output.NextToken
    } while (nextToken !== undefined)

    const iteratorAfter = (shardId: string, after: string | undefined) =>
      KinesisReads.shardIterator(
        client,
        streamName,
        shardId,
        after === undefined
          ? { type: "TRIM_HORIZON" }
          : { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: after }
      )

    const page = (iterator: string, limit: number) => KinesisReads.getRecordsPage(client, iterator, limit)

    /**
     * Reads from `cursor` (or a fresh iterator after `after`) until a page holds records, Kinesis
     * says the tip is reached, or `maxEmptyPages` empty pages came back; returns the cursor that
     * continues after what was read (`undefined` when the shard is closed and read to its end).
     */
    const readFrom = (
      shardId: string,
      after: string | undefined,
      kept: Cursor | undefined,
      limit: number
    ): Effect.Effect<
      { readonly result: ShardReader.ReadResult; readonly next: Cursor | undefined },
      RecordStream.RecordStreamError
    > =>
      Effect.gen(function* () {
        let iterator = kept !== undefined && kept.after === after ? kept.iterator : undefined
        let renewed = false
        let empty = 0
        while (true) {
          if (iterator === undefined) iterator = yield* iteratorAfter(shardId, after)
          const answer = yield* page(iterator, limit)
          if (answer._tag === "Expired") {
            if (renewed)
              return yield* streamError("Unavailable", `shard iterator of ${shardId} kept expiring`)
            renewed = true
            iterator = undefined
            continue
          }
          const { output } = answer
          const records = (output.Records ?? []).map(
            (record): RecordStream.StreamRecord => ({
              shardId,
              sequenceNumber: record.SequenceNumber ?? "",
              partitionKey: record.PartitionKey ?? "",
              data: record.Data ?? new Uint8Array(0),
              approximateArrivalTimestamp: record.ApproximateArrivalTimestamp?.getTime() ?? 0
            })
          )
          const millisBehindLatest = output.MillisBehindLatest ?? 0
          const position = records.at(-1)?.sequenceNumber ?? after
          const next =
            output.NextShardIterator === undefined
              ? undefined
              : { after: position, iterator: output.NextShardIterator }
          if (
            records.length > 0 ||
            millisBehindLatest === 0 ||
            next === undefined ||
            ++empty >= maxEmptyPages
          ) {
            return { result: { records, millisBehindLatest }, next }
          }
          iterator = next.iterator
        }
      })

    // Per shard: the read cursor of `getRecords`, and the read-ahead cursor and tip of `shardTips`.
    const readCursors = new Map<string, Cursor | undefined>()
    const tipCursors = new Map<string, Cursor | undefined>()
    const tips = new Map<string, string | undefined>()
    const tipLock = yield* Semaphore.make(1)

    const getRecords = Effect.fn("KinesisShardSource.getRecords")(function* (
      shardId: string,
      readOptions: { readonly after?: string | undefined; readonly limit: number }
    ) {
      if (!Number.isInteger(readOptions.limit) || readOptions.limit < 1 || readOptions.limit > 10_000) {
        return yield* streamError("InvalidRequest", `limit must be 1–10000, got ${readOptions.limit}`)
      }
      if (!shardIds.includes(shardId)) {
        return yield* streamError("NotFound", `no shard ${shardId} in stream ${streamName}`)
      }
      const { result, next } = yield* readFrom(
        shardId,
        readOptions.after,
        readCursors.get(shardId),
        readOptions.limit
      ).pipe(Effect.tapError(() => Effect.sync(() => readCursors.delete(shardId))))
      readCursors.set(shardId, next)
      return result
    })

    /** Follows the shard from its last known tip to the end; the newest sequence number seen. */
    const advanceTip = (shardId: string) =>
      Effect.gen(function* () {
        while (true) {
          const tip = tips.get(shardId)
          const { result, next } = yield* readFrom(shardId, tip, tipCursors.get(shardId), 10_000)
          tipCursors.set(shardId, next)
          const newest = result.records.at(-1)?.sequenceNumber
          if (newest !== undefined) tips.set(shardId, newest)
          if (result.records.length === 0 || result.millisBehindLatest === 0 || next === undefined) return
        }
      }).pipe(
        Effect.catch((error) =>
          Effect.logDebug(`KinesisShardSource: reading ahead on ${shardId} failed: ${error.message}`).pipe(
            Effect.andThen(Effect.sync(() => tipCursors.delete(shardId)))
          )
        )
      )

    const shardTips = Effect.forEach(shardIds, advanceTip, { discard: true }).pipe(
      Effect.map(() => Object.fromEntries(shardIds.map((shardId) => [shardId, tips.get(shardId)]))),
      Semaphore.withPermit(tipLock),
      Effect.withSpan("KinesisShardSource.shardTips")
    )

    return {
      streamArn,
      region: arn.success.region,
      accountId: arn.success.account,
      retentionHours: options.retentionHours ?? 24,
      shardIds,
      getRecords,
      shardTips
    } satisfies ShardReader.Service
  })
