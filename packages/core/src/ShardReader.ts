/**
 * The stream's read side, as its consumers see it: the shards, a shard's records from a
 * checkpoint (GetRecords), each shard's tip, and the stream's identity for events and on-failure
 * records. Producers see `RecordStream`; consumers — Lambda's event source mapping and Firehose
 * with a Kinesis source, both emulated in `@spillway/memory` — read through this port, so the
 * same emulation polls a `MemoryStream` or the real Kinesis API (`@spillway/aws`'
 * `KinesisShardSource`).
 *
 * Guarantees every implementation keeps: `getRecords` answers a shard's retained records in
 * sequence order, starting after `after` (or at the trim horizon when it is undefined), at most
 * `limit` of them; an empty answer with `millisBehindLatest` 0 means the reader is at the tip.
 *
 * A stream that pushes records to a registered consumer (enhanced fan-out, `SubscribeToShard`)
 * also offers `fanOut`: a consumer waits on it instead of polling, and reads what was pushed with
 * `getRecords`. A backend that cannot push leaves it out, and an enhanced fan-out consumer refuses
 * such a stream.
 */
import type { Effect } from "effect"
import type { RecordStreamError, StreamRecord } from "./RecordStream.js"

/** What a read answers: the records and how far behind the shard's tip the read ended. */
export interface ReadResult {
  readonly records: ReadonlyArray<StreamRecord>
  /** 0 when the read reached the tip of the shard; otherwise how old the first unread record is. */
  readonly millisBehindLatest: number
}

/**
 * Enhanced fan-out: the stream pushes every record to each registered consumer over a long-lived
 * HTTP/2 connection (`SubscribeToShard`) about `propagationMillis` after it was written — "typically
 * an average of 70 ms" in the Kinesis Data Streams Developer Guide ("Read data from Amazon Kinesis
 * Data Streams"), against about 200 ms for one polling consumer plus its poll interval.
 */
export interface FanOut {
  /** How long after it was written (its `approximateArrivalTimestamp`) a record is pushed. */
  readonly propagationMillis: number
  /**
   * Completes once a record of `shardId` after `after` (any record when `after` is undefined) has
   * been pushed, at once if one already has. An observation: injected faults do not apply to it.
   */
  readonly awaitPushed: (shardId: string, after: string | undefined) => Effect.Effect<void>
}

export interface Service {
  /** The stream's ARN, as Lambda names it in events and on-failure records. */
  readonly streamArn: string
  readonly region: string
  readonly accountId: string
  /** How long the stream keeps records; a consumer's record-age limit cannot usefully exceed it. */
  readonly retentionHours: number
  readonly shardIds: ReadonlyArray<string>
  /** Up to `limit` (1–10,000, as GetRecords) records of a shard after `after`, in sequence order. */
  readonly getRecords: (
    shardId: string,
    options: { readonly after?: string | undefined; readonly limit: number }
  ) => Effect.Effect<ReadResult, RecordStreamError>
  /** The newest retained sequence number of each shard (`undefined` for a shard holding nothing). */
  readonly shardTips: Effect.Effect<Readonly<Record<string, string | undefined>>>
  /** Push delivery to a registered consumer, when the backend has it (see `FanOut`). */
  readonly fanOut?: FanOut
}
