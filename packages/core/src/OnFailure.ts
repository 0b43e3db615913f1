/**
 * The record Lambda's Kinesis event source mapping writes to an on-failure destination when it
 * discards a batch (field names exactly as AWS writes them, including `KinesisBatchInfo`'s
 * capitals). It carries metadata only; the records are re-read from the stream by sequence number.
 */
import { Schema } from "effect"

const IsoTimestamp = Schema.String.check(
  Schema.makeFilter((s) => !Number.isNaN(Date.parse(s)) || "is not an ISO-8601 time")
)
const SequenceNumber = Schema.String.check(
  Schema.isPattern(/^(0|[1-9]\d{0,128})$/, { message: "is not a sequence number" })
)

export class KinesisBatchInfo extends Schema.Class<KinesisBatchInfo>("KinesisBatchInfo")({
  shardId: Schema.String,
  startSequenceNumber: SequenceNumber,
  endSequenceNumber: SequenceNumber,
  approximateArrivalOfFirstRecord: IsoTimestamp,
  approximateArrivalOfLastRecord: IsoTimestamp,
  batchSize: Schema.Int.check(Schema.isGreaterThan(0)),
  streamArn: Schema.String
}) {}

/**
 * Why the batch was discarded. AWS documents `RetryAttemptsExhausted`; the record-age value is
 * undocumented and emulators disagree, so both names seen in the wild are accepted.
 */
export const Condition = Schema.Literals([
  "RetryAttemptsExhausted",
  "RecordAgeExceeded",
  "MaximumRecordAgeExceeded"
])

export class OnFailureRecord extends Schema.Class<OnFailureRecord>("OnFailureRecord")({
  requestContext: Schema.Struct({
    requestId: Schema.String,
    functionArn: Schema.String,
    condition: Condition,
    approximateInvokeCount: Schema.Number
  }),
  responseContext: Schema.Struct({
    statusCode: Schema.Number,
    executedVersion: Schema.String,
    functionError: Schema.optional(Schema.String)
  }),
  version: Schema.String,
  timestamp: IsoTimestamp,
  KinesisBatchInfo: KinesisBatchInfo
}) {}

export const OnFailureRecordJson = Schema.fromJsonString(OnFailureRecord)
