/**
 * The event shapes Lambda hands to Spillway's functions and the responses it reads back, as
 * schemas, so a handler decodes its event once at the edge and the stages see domain types.
 */
import { Schema } from "effect"
import type { StreamRecord } from "./RecordStream.js"

export const KinesisEventRecord = Schema.Struct({
  kinesis: Schema.Struct({
    kinesisSchemaVersion: Schema.String,
    partitionKey: Schema.String,
    sequenceNumber: Schema.String,
    /** Base64 of the record bytes. */
    data: Schema.String,
    /** Epoch seconds with a millisecond fraction. */
    approximateArrivalTimestamp: Schema.Number
  }),
  eventSource: Schema.Literal("aws:kinesis"),
  eventVersion: Schema.String,
  /** `<shardId>:<sequenceNumber>`: the only place the shard id appears. */
  eventID: Schema.String,
  eventName: Schema.String,
  invokeIdentityArn: Schema.String,
  awsRegion: Schema.String,
  eventSourceARN: Schema.String
})
export type KinesisEventRecord = typeof KinesisEventRecord.Type

export const KinesisEvent = Schema.Struct({ Records: Schema.Array(KinesisEventRecord) })
export type KinesisEvent = typeof KinesisEvent.Type

/** Partial batch response (`ReportBatchItemFailures`); for Kinesis the identifier is the sequence number. */
export interface BatchResponse {
  readonly batchItemFailures: ReadonlyArray<{ readonly itemIdentifier: string }>
}

export const shardIdOf = (record: KinesisEventRecord): string => {
  const colon = record.eventID.lastIndexOf(":")
  return colon > 0 ? record.eventID.slice(0, colon) : record.eventID
}

/** The stream record a Kinesis event entry stands for. */
export const toStreamRecord = (record: KinesisEventRecord): StreamRecord => ({
  shardId: shardIdOf(record),
  sequenceNumber: record.kinesis.sequenceNumber,
  partitionKey: record.kinesis.partitionKey,
  data: Buffer.from(record.kinesis.data, "base64"),
  approximateArrivalTimestamp: Math.round(record.kinesis.approximateArrivalTimestamp * 1000)
})

/** The Kinesis event entry Lambda builds for a stream record. */
export const fromStreamRecord = (
  record: StreamRecord,
  context: { readonly streamArn: string; readonly region: string; readonly roleArn: string }
): KinesisEventRecord => ({
  kinesis: {
    kinesisSchemaVersion: "1.0",
    partitionKey: record.partitionKey,
    sequenceNumber: record.sequenceNumber,
    data: Buffer.from(record.data).toString("base64"),
    approximateArrivalTimestamp: record.approximateArrivalTimestamp / 1000
  },
  eventSource: "aws:kinesis",
  eventVersion: "1.0",
  eventID: `${record.shardId}:${record.sequenceNumber}`,
  eventName: "aws:kinesis:record",
  invokeIdentityArn: context.roleArn,
  awsRegion: context.region,
  eventSourceARN: context.streamArn
})

export const SqsEventRecord = Schema.Struct({
  messageId: Schema.String,
  receiptHandle: Schema.String,
  body: Schema.String,
  /** SQS system attributes; every value is a string, counts and epoch-ms times included. */
  attributes: Schema.Struct({
    ApproximateReceiveCount: Schema.String,
    SentTimestamp: Schema.String,
    SenderId: Schema.String,
    ApproximateFirstReceiveTimestamp: Schema.String
  }),
  messageAttributes: Schema.Record(Schema.String, Schema.Unknown),
  md5OfBody: Schema.String,
  eventSource: Schema.Literal("aws:sqs"),
  eventSourceARN: Schema.String,
  awsRegion: Schema.String
})
export type SqsEventRecord = typeof SqsEventRecord.Type

export const SqsEvent = Schema.Struct({ Records: Schema.Array(SqsEventRecord) })
export type SqsEvent = typeof SqsEvent.Type

/**
 * An HTTP request as API Gateway's HTTP API hands it to Lambda (payload format 2.0,
 * docs/aws-behaviour.md §9.1); a Lambda function URL sends the same shape (`routeKey` and `stage`
 * `$default`, no `pathParameters` or `stageVariables`). Header names arrive lower-cased, a
 * repeated header comma-joined, `Cookie` moved to `cookies`; a binary body (gzip) arrives base64
 * with `isBase64Encoded: true`, and `body` is absent when nothing was sent. Only what a handler
 * reads is required; the rest of the request context is kept when present.
 */
export const HttpApiEvent = Schema.Struct({
  version: Schema.Literal("2.0"),
  routeKey: Schema.String,
  /** The path as received (for a named stage, with the stage's prefix). */
  rawPath: Schema.String,
  rawQueryString: Schema.String,
  cookies: Schema.optional(Schema.Array(Schema.String)),
  headers: Schema.Record(Schema.String, Schema.String),
  queryStringParameters: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  requestContext: Schema.Struct({
    accountId: Schema.String,
    apiId: Schema.String,
    domainName: Schema.String,
    domainPrefix: Schema.String,
    http: Schema.Struct({
      method: Schema.String,
      path: Schema.String,
      protocol: Schema.String,
      sourceIp: Schema.String,
      userAgent: Schema.optional(Schema.String)
    }),
    requestId: Schema.String,
    routeKey: Schema.String,
    stage: Schema.String,
    time: Schema.String,
    /** Epoch milliseconds. */
    timeEpoch: Schema.Number
  }),
  body: Schema.optional(Schema.String),
  isBase64Encoded: Schema.Boolean
})
export type HttpApiEvent = typeof HttpApiEvent.Type

/** A Lambda function URL's event: API Gateway's payload format 2.0 (§9.1, "Function URL specifics"). */
export const FunctionUrlEvent = HttpApiEvent
export type FunctionUrlEvent = HttpApiEvent

/**
 * What an HTTP API / function URL handler answers (§9.2). With `statusCode` present the gateway
 * sends it as given; `body` is a string (base64 when `isBase64Encoded`).
 */
export interface HttpResponse {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string
  readonly isBase64Encoded: boolean
}
