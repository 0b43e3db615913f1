/**
 * The record stream (Kinesis Data Streams in production): an ordered, sharded log.
 *
 * `putRecords` mirrors PutRecords: the call either fails as a whole (typed `RecordStreamError`) or
 * answers once per entry, in request order, with the shard and sequence number or a per-entry
 * error code. The stages split batches with `chunkEntries`. Handed a call over the limits anyway,
 * the AWS layer splits it, while the memory layer refuses it whole as the raw API does, so a
 * caller that forgets to split is caught by the tests.
 */
import { Context, type Effect, Schema } from "effect"
import { chunkBySize } from "./Batching.js"

export interface PutEntry {
  readonly partitionKey: string
  readonly data: Uint8Array
}

/** The two per-entry error codes PutRecords documents; both are worth retrying. */
export type EntryErrorCode = "ProvisionedThroughputExceededException" | "InternalFailure"

export type PutOutcome =
  | { readonly _tag: "Stored"; readonly shardId: string; readonly sequenceNumber: string }
  | { readonly _tag: "Failed"; readonly errorCode: EntryErrorCode; readonly message: string }

/** One record as read back from a shard. Sequence numbers are decimal strings; compare them as BigInt. */
export interface StreamRecord {
  readonly shardId: string
  readonly sequenceNumber: string
  readonly partitionKey: string
  readonly data: Uint8Array
  /** Epoch milliseconds at which the stream accepted the record. */
  readonly approximateArrivalTimestamp: number
}

export const ErrorReason = Schema.Literals([
  /** Shard or account throughput exceeded for the whole call. */
  "Throttled",
  /** 5xx, network failure, timeout: the service did not answer. */
  "Unavailable",
  /** The request broke an API limit or was malformed; the same request will fail again. */
  "InvalidRequest",
  /** The stream (or shard) does not exist or is not active. */
  "NotFound",
  /** Credentials or KMS permissions refused. */
  "AccessDenied",
  /** A range read asked for records the stream has already trimmed (retention). */
  "TrimmedByRetention"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

export class RecordStreamError extends Schema.TaggedError<RecordStreamError>()("RecordStreamError", {
  reason: ErrorReason,
  message: Schema.String,
  /** What the backend threw or answered, when there was something (an SDK error, say). */
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface ShardRange {
  readonly shardId: string
  /** Inclusive. */
  readonly startSequenceNumber: string
  /** Inclusive. */
  readonly endSequenceNumber: string
}

export interface Service {
  /** The stream's ARN, as Lambda names it in events and on-failure records. */
  readonly streamArn: string
  readonly putRecords: (
    entries: ReadonlyArray<PutEntry>
  ) => Effect.Effect<ReadonlyArray<PutOutcome>, RecordStreamError>
  /**
   * Reads the records of one shard from `startSequenceNumber` to `endSequenceNumber`, both
   * inclusive. Fails with `TrimmedByRetention` when the start of the range is no longer held,
   * rather than silently returning less.
   */
  readonly readRange: (range: ShardRange) => Effect.Effect<ReadonlyArray<StreamRecord>, RecordStreamError>
}

export class RecordStream extends Context.Service<RecordStream, Service>()("spillway/RecordStream") {}

/** PutRecords limits. Defaults are the documented ones for a stream with default record size. */
export interface Limits {
  /** Entries per PutRecords call. */
  readonly maxEntriesPerCall: number
  /** Sum of data + partition key bytes per call. */
  readonly maxBytesPerCall: number
  /** Data + partition key bytes per record. */
  readonly maxBytesPerRecord: number
}

export const defaultLimits: Limits = {
  maxEntriesPerCall: 500,
  // 10 MiB per call since the 2025 large-record launch; 5 MiB on older docs. The smaller value is
  // safe everywhere.
  maxBytesPerCall: 5 * 1024 * 1024,
  maxBytesPerRecord: 1024 * 1024
}

/** Bytes that count against the PutRecords limits: data plus the partition key as UTF-8. */
export const entrySize = (entry: PutEntry): number =>
  entry.data.byteLength + Buffer.byteLength(entry.partitionKey, "utf8")

/**
 * Splits entries into calls that respect `limits`, keeping their order. An entry that is over the
 * per-record limit on its own is the caller's to refuse before this point; here it gets a call of
 * its own so that the backend reports it instead of it vanishing.
 */
export const chunkEntries = <A extends PutEntry>(
  entries: ReadonlyArray<A>,
  limits: Limits = defaultLimits
): Array<Array<A>> =>
  chunkBySize(entries, entrySize, { maxCount: limits.maxEntriesPerCall, maxBytes: limits.maxBytesPerCall })

/** Orders two sequence numbers (decimal strings of up to 129 digits) without losing precision. */
export const compareSequenceNumbers = (a: string, b: string): -1 | 0 | 1 => {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}
