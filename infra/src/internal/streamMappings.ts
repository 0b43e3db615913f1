/**
 * The settings of a Kinesis event source mapping that is safe by construction, checked against
 * Lambda's limits before anything is made: bisect on error, a finite retry count, a finite record
 * age shorter than the stream's retention, partial batch responses, and an on-failure
 * destination. CDK's own defaults are the dangerous ones (retries and record age unbounded, no
 * bisect): one poison record would block its shard until the stream trims it (platform-facts §6,
 * §8). `Processing` applies the same rules to the telemetry processor's mapping.
 */
import { Duration } from "aws-cdk-lib"
import * as lambda from "aws-cdk-lib/aws-lambda"
import { SqsDlq, type StreamEventSourceProps } from "aws-cdk-lib/aws-lambda-event-sources"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import type { IConstruct } from "constructs"
import { durationIn, ensure, integerIn } from "./checks.js"

export interface StreamMappingSettings {
  /** Records per invocation at most, 1–10,000. @default 200 */
  readonly batchSize?: number
  /** How long the mapping may wait to fill a batch, 0–5 minutes. @default Duration.seconds(0) */
  readonly maxBatchingWindow?: Duration
  /** Split a failing batch in two and retry the halves (splitting does not use up retries). @default true */
  readonly bisectBatchOnError?: boolean
  /** Retries of a failing batch before its record goes to the on-failure queue, 0–10,000 (never infinite). @default 3 */
  readonly retryAttempts?: number
  /** Records older than this go to the on-failure queue instead of being retried: 1 minute to 7 days, shorter than the stream's retention. @default Duration.hours(1) */
  readonly maxRecordAge?: Duration
  /** The function answers which records failed, and only those are retried (`REPORT_BATCH_ITEM_FAILURES` follows). @default true */
  readonly reportBatchItemFailures?: boolean
  /** Batches per shard processed at once, 1–10 (order is kept per partition key). @default 1 */
  readonly parallelizationFactor?: number
  /** Receives of an on-failure message before it goes to the on-failure dead-letter queue. @default 10 */
  readonly onFailureMaxReceiveCount?: number
}

export interface CheckedMapping {
  readonly props: StreamEventSourceProps
  readonly reportBatchItemFailures: boolean
}

/**
 * The mapping's props for `settings` (each checked, named `<setting>.<field>` in a failure), reading a
 * stream that keeps records `streamRetention`, its on-failure records going to `onFailure`.
 */
export const streamMapping = (
  scope: IConstruct,
  setting: string,
  settings: StreamMappingSettings,
  streamRetention: Duration,
  onFailure: sqs.IQueue
): CheckedMapping => {
  const batchSize = integerIn(
    scope,
    `${setting}.batchSize`,
    settings.batchSize ?? 200,
    1,
    10_000,
    "Lambda's limit for Kinesis"
  )
  const maxBatchingWindow = durationIn(
    scope,
    `${setting}.maxBatchingWindow`,
    settings.maxBatchingWindow ?? Duration.seconds(0),
    Duration.seconds(0),
    Duration.minutes(5),
    "Lambda's limit"
  )
  const retryAttempts = integerIn(
    scope,
    `${setting}.retryAttempts`,
    settings.retryAttempts ?? 3,
    0,
    10_000,
    "a finite count (-1, retrying until the record expires, lets one poison record block its shard for the stream's whole retention)"
  )
  const maxRecordAge = durationIn(
    scope,
    `${setting}.maxRecordAge`,
    settings.maxRecordAge ?? Duration.hours(1),
    Duration.minutes(1),
    Duration.days(7),
    "Lambda's limits (never unbounded)"
  )
  if (!streamRetention.isUnresolved() && !maxRecordAge.isUnresolved()) {
    ensure(
      scope,
      `${setting}.maxRecordAge`,
      maxRecordAge.toMilliseconds() < streamRetention.toMilliseconds(),
      `(${maxRecordAge.toHumanString()}) must be shorter than the stream's retention (${streamRetention.toHumanString()}): the range an on-failure record names must still be in the stream when someone reads it back`
    )
  }
  const parallelizationFactor = integerIn(
    scope,
    `${setting}.parallelizationFactor`,
    settings.parallelizationFactor ?? 1,
    1,
    10,
    "Lambda's limit"
  )
  const reportBatchItemFailures = settings.reportBatchItemFailures ?? true
  return {
    reportBatchItemFailures,
    props: {
      // From the oldest record kept: nothing written between the stream's creation and the
      // mapping's is skipped.
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize,
      maxBatchingWindow,
      bisectBatchOnError: settings.bisectBatchOnError ?? true,
      retryAttempts,
      maxRecordAge,
      reportBatchItemFailures,
      parallelizationFactor,
      onFailure: new SqsDlq(onFailure)
    }
  }
}
