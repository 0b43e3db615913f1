/**
 * Lambda events for tests, as Lambda builds them: a Kinesis event whose `data` is the base64 of
 * what the collector writes (or of any bytes), and an SQS event with its system attributes. Each is
 * decoded with core's `LambdaEvents` schemas before it is returned, so a fixture that drifted from
 * the shape a handler decodes fails here, not in the handler under test.
 */
import { createHash } from "node:crypto"
import { LambdaEvents, type RecordStream, Telemetry } from "@spillway/core"
import { Schema } from "effect"

export interface KinesisOptions {
  /** @default "arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry" */
  readonly streamArn?: string
  /** @default "eu-west-1" */
  readonly region?: string
  /** @default "arn:aws:iam::123456789012:role/spillway-processor" */
  readonly roleArn?: string
  /** @default "shardId-000000000000" */
  readonly shardId?: string
  /** The first record's sequence number (decimal); the next ones follow it. */
  readonly firstSequenceNumber?: bigint
  /** Epoch milliseconds at which the stream accepted the first record; one more per record. */
  readonly arrivedAt?: number
}

/** A record on the stream: its partition key and its bytes (a string is UTF-8). */
export interface KinesisEntry {
  readonly partitionKey: string
  readonly data: Uint8Array | string
}

const encoder = new TextEncoder()
const decodeKinesisEvent = Schema.decodeUnknownSync(LambdaEvents.KinesisEvent)
const decodeSqsEvent = Schema.decodeUnknownSync(LambdaEvents.SqsEvent)

/** A Kinesis event of `entries`, in order, on one shard. */
export const kinesisEvent = (
  entries: ReadonlyArray<KinesisEntry>,
  options: KinesisOptions = {}
): LambdaEvents.KinesisEvent => {
  const first =
    options.firstSequenceNumber ?? 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n
  const arrivedAt = options.arrivedAt ?? Date.parse("2026-11-24T10:00:00.000Z")
  const context = {
    streamArn: options.streamArn ?? "arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry",
    region: options.region ?? "eu-west-1",
    roleArn: options.roleArn ?? "arn:aws:iam::123456789012:role/spillway-processor"
  }
  const Records = entries.map((entry, i) => {
    const record: RecordStream.StreamRecord = {
      shardId: options.shardId ?? "shardId-000000000000",
      sequenceNumber: (first + BigInt(i)).toString(),
      partitionKey: entry.partitionKey,
      data: typeof entry.data === "string" ? encoder.encode(entry.data) : entry.data,
      approximateArrivalTimestamp: arrivedAt + i
    }
    return LambdaEvents.fromStreamRecord(record, context)
  })
  return decodeKinesisEvent({ Records })
}

/**
 * A Kinesis event of client records as the collector writes them: each in an envelope of
 * `tenant`, received at `receivedAt`, keyed by its id. Records that are not valid fail loudly.
 */
export const kinesisEventOfRecords = (
  records: ReadonlyArray<unknown>,
  options: KinesisOptions & { readonly tenant?: string; readonly receivedAt?: number } = {}
): LambdaEvents.KinesisEvent =>
  kinesisEvent(
    records.map((input) => {
      const record = Telemetry.decodeRecord(input)
      if (record._tag === "Failure") throw new Error(`not a valid record: ${record.failure.reason}`)
      const envelope = new Telemetry.TelemetryEnvelope({
        tenant: options.tenant ?? "acme",
        receivedAt: options.receivedAt ?? Date.parse("2026-11-24T10:00:00.000Z"),
        record: record.success
      })
      return { partitionKey: record.success.id, data: Telemetry.encodeEnvelope(envelope) }
    }),
    options
  )

export interface SqsOptions {
  /** @default "arn:aws:sqs:eu-west-1:123456789012:spillway-fallback" */
  readonly queueArn?: string
  /** @default "eu-west-1" */
  readonly region?: string
  /** Epoch milliseconds at which the messages were sent. */
  readonly sentAt?: number
}

/** A message on the queue: its body, and optionally its id and how often it was received. */
export interface SqsMessage {
  readonly body: string
  readonly messageId?: string
  /** @default 1 */
  readonly receiveCount?: number
  readonly messageAttributes?: Readonly<Record<string, unknown>>
}

/** An SQS event of `messages`, in order, with the attributes Lambda sets (all strings). */
export const sqsEvent = (
  messages: ReadonlyArray<SqsMessage>,
  options: SqsOptions = {}
): LambdaEvents.SqsEvent => {
  const sentAt = options.sentAt ?? Date.parse("2026-11-24T10:00:00.000Z")
  const Records = messages.map((message, i) => {
    const messageId = message.messageId ?? `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`
    return {
      messageId,
      receiptHandle: Buffer.from(`${messageId}#${message.receiveCount ?? 1}`).toString("base64"),
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount ?? 1),
        SentTimestamp: String(sentAt + i),
        SenderId: "AROAEXAMPLE:spillway-collector",
        ApproximateFirstReceiveTimestamp: String(sentAt + i + 1)
      },
      messageAttributes: message.messageAttributes ?? {},
      md5OfBody: createHash("md5").update(message.body, "utf8").digest("hex"),
      eventSource: "aws:sqs",
      eventSourceARN: options.queueArn ?? "arn:aws:sqs:eu-west-1:123456789012:spillway-fallback",
      awsRegion: options.region ?? "eu-west-1"
    }
  })
  return decodeSqsEvent({ Records })
}
