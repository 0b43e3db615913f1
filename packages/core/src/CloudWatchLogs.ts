/**
 * What a CloudWatch Logs subscription filter hands to a Lambda function (docs/aws-behaviour.md
 * §7.1): `{"awslogs":{"data":"<base64>"}}`, the data being base64 of gzip of the JSON
 * `{messageType, owner, logGroup, logStream, subscriptionFilters, logEvents: [{id, timestamp, message}]}`.
 *
 * `decodeData` never throws: data that is not base64, gzip that is truncated, text that is not
 * JSON or not this shape, each fails with its own reason, so the forwarder counts and reports it.
 * `CONTROL_MESSAGE`s (CloudWatch's reachability probe) decode as such and carry no events.
 */
import { gunzipSync, gzipSync } from "node:zlib"
import { Result, Schema, SchemaParser } from "effect"
import { formatIssue } from "./Telemetry.js"

export const LogEvent = Schema.Struct({
  /** A decimal string, unique per event: the dedup key of a redelivery. */
  id: Schema.String,
  /** Epoch milliseconds. */
  timestamp: Schema.Number,
  message: Schema.String
})
export type LogEvent = typeof LogEvent.Type

export const LogsMessage = Schema.Struct({
  messageType: Schema.Literals(["DATA_MESSAGE", "CONTROL_MESSAGE"]),
  owner: Schema.String,
  logGroup: Schema.String,
  logStream: Schema.String,
  subscriptionFilters: Schema.Array(Schema.String),
  logEvents: Schema.Array(LogEvent)
})
export type LogsMessage = typeof LogsMessage.Type

/** The event Lambda receives from a subscription filter. */
export const SubscriptionEvent = Schema.Struct({
  awslogs: Schema.Struct({ data: Schema.String })
})
export type SubscriptionEvent = typeof SubscriptionEvent.Type

export type DecodeFailure = "NotBase64" | "NotGzip" | "NotJson" | "NotASubscriptionMessage"

export interface InvalidData {
  readonly reason: DecodeFailure
  readonly message: string
}

const base64 = /^[A-Za-z0-9+/]*={0,2}$/
const decodeMessage = SchemaParser.decodeUnknownResult(LogsMessage, {
  errors: "first",
  onExcessProperty: "ignore"
})

/** base64 → gunzip → JSON → a subscription message. */
export const decodeData = (data: string): Result.Result<LogsMessage, InvalidData> => {
  const compact = data.replace(/\s+/g, "")
  if (compact.length === 0 || compact.length % 4 === 1 || !base64.test(compact)) {
    return Result.fail({ reason: "NotBase64", message: "awslogs.data is not base64" })
  }
  let text: string
  try {
    text = gunzipSync(Buffer.from(compact, "base64")).toString("utf8")
  } catch (error) {
    return Result.fail({
      reason: "NotGzip",
      message: `awslogs.data does not gunzip (truncated?): ${error instanceof Error ? error.message : String(error)}`
    })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Result.fail({ reason: "NotJson", message: "awslogs.data is not JSON once gunzipped" })
  }
  return Result.mapError(decodeMessage(json), (issue) => ({
    reason: "NotASubscriptionMessage" as const,
    message: formatIssue(issue, "the subscription message")
  }))
}

/** The `awslogs.data` CloudWatch Logs sends for `message`. */
export const encodeData = (message: LogsMessage): string =>
  gzipSync(Buffer.from(JSON.stringify(message), "utf8")).toString("base64")
