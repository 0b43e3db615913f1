/**
 * Processing: the processor on the stream's event source mapping, the on-failure queue that
 * mapping sends a batch's record of failure to when it gives up, and the failure reprocessor on
 * that queue, which reads the batch back from the stream and writes it again.
 *
 * CDK's own defaults for a Kinesis event source are the dangerous ones — retries and record age
 * unbounded, no bisect, no on-failure destination — so one poison record would block its shard
 * until the stream trims it (README "Deployment"; platform-facts §6, §8). Here:
 * - `bisectBatchOnError` is on, `retryAttempts` and `maxRecordAge` are finite (and must be),
 *   `reportBatchItemFailures` is on and the processor is told so (`REPORT_BATCH_ITEM_FAILURES`
 *   follows the same setting, never the other way round), and the mapping's on-failure
 *   destination is an SQS queue the failure reprocessor consumes;
 * - a record reaches the on-failure queue younger than the stream's retention (`maxRecordAge`
 *   must be shorter), so the reprocessor can still read it back;
 * - the processor's timeout is derived from the sink's retry budget (`Schedules.sinkWriteBudget`
 *   in @spillway/core) and may not be set shorter than that budget: a unit of work that is
 *   retrying the sink must be able to finish its retries inside the invocation;
 * - the mapping reads by shared polling (about once a second per shard, shared with Firehose's
 *   reads) or through an enhanced fan-out consumer (records pushed over HTTP/2, ~70 ms, with
 *   2 MiB/s per shard of its own; billed per consumer-shard-hour and per GB: README "Deployment").
 */
import { Schedules } from "@spillway/core"
import { Duration as CdkDuration, type RemovalPolicy } from "aws-cdk-lib"
import * as kinesis from "aws-cdk-lib/aws-kinesis"
import * as lambda from "aws-cdk-lib/aws-lambda"
import {
  KinesisConsumerEventSource,
  KinesisEventSource,
  SqsDlq,
  SqsEventSource,
  type StreamEventSourceProps
} from "aws-cdk-lib/aws-lambda-event-sources"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import { Duration } from "effect"
import { durationIn, ensure, InvalidProps, integerIn } from "./internal/checks.js"
import { output } from "./internal/outputs.js"
import { queueWithDlq } from "./internal/queues.js"
import type { SearchDomain } from "./SearchDomain.js"
import { type FunctionDefaults, SpillwayFunction } from "./SpillwayFunction.js"

/** How the processor's mapping reads the stream. */
export type StreamReader =
  /** GetRecords polling, about once a second per shard, sharing each shard's 2 MiB/s and 5 reads/s with every other reader (Firehose). */
  | "shared"
  /** An enhanced fan-out consumer: records pushed over HTTP/2 (~70 ms), 2 MiB/s per shard of its own; extra cost. */
  | "enhanced-fan-out"

export interface ProcessingSettings {
  /** Records per invocation at most, 1–10,000. @default 500 */
  readonly batchSize?: number
  /** How long the mapping may wait to fill a batch, 0–5 minutes (0: invoke as soon as records are read). @default Duration.seconds(0) */
  readonly maxBatchingWindow?: CdkDuration
  /** Split a failing batch in two and retry the halves (splitting does not use up retries). @default true */
  readonly bisectBatchOnError?: boolean
  /** Retries of a failing batch before its record goes to the on-failure queue, 0–10,000 (never infinite). @default 5 */
  readonly retryAttempts?: number
  /** Records older than this go to the on-failure queue instead of being retried: 1 minute to 7 days, and shorter than the stream's retention. @default Duration.hours(6) */
  readonly maxRecordAge?: CdkDuration
  /** The processor answers which records failed, and only those are retried (`REPORT_BATCH_ITEM_FAILURES` follows). @default true */
  readonly reportBatchItemFailures?: boolean
  /** Batches per shard processed at once, 1–10 (order is kept per partition key). @default 1 */
  readonly parallelizationFactor?: number
  /** @default "shared" */
  readonly reader?: StreamReader
  /**
   * The longest a unit of work may spend retrying sink writes: the processor's timeout must not
   * be shorter.
   * @default Schedules.sinkWriteBudget (26 s)
   */
  readonly retryBudget?: CdkDuration
  /**
   * The processor's and failure reprocessor's timeout, from the retry budget up to 15 minutes.
   * @default `processorTimeout(retryBudget)` (63 s with the default budget)
   */
  readonly timeout?: CdkDuration
  /** Receives of an on-failure message before it goes to the on-failure dead-letter queue. @default 10 */
  readonly onFailureMaxReceiveCount?: number
  /**
   * Failure reprocessors running at once at most (2–1000): each re-reads a whole failed batch and
   * writes it, so a burst of on-failure records during a sink outage must not become a thousand
   * concurrent writers.
   * @default 2
   */
  readonly failureReprocessorMaxConcurrency?: number
}

export interface ProcessingProps extends ProcessingSettings {
  readonly stream: kinesis.IStream
  /** How long the stream keeps records (`maxRecordAge` must be shorter). */
  readonly streamRetention: CdkDuration
  readonly search: SearchDomain
  readonly functions: FunctionDefaults
  readonly removalPolicy: RemovalPolicy
}

/** The sink's retry budget (`Schedules.sinkWriteBudget`), as a CDK duration. */
export const sinkRetryBudget: CdkDuration = CdkDuration.millis(Duration.toMillis(Schedules.sinkWriteBudget))

/**
 * The longest one OpenSearch request may take (`OpenSearchClient`'s request timeout): the last
 * attempt of a retrying write starts inside the budget and may take this long.
 */
export const sinkRequestTimeout: CdkDuration = CdkDuration.seconds(30)

/**
 * The share of an invocation the processor leaves unused at its end (`DEADLINE_MARGIN_MS`
 * default: 10%): no unit of work starts, and none keeps running, inside it.
 */
export const deadlineMarginShare = 0.1

/**
 * The timeout that lets one unit of work use its whole retry budget and a last request, after the
 * deadline margin: `(budget + request timeout) / (1 − margin)`, rounded up to the second.
 */
export const processorTimeout = (retryBudget: CdkDuration = sinkRetryBudget): CdkDuration =>
  CdkDuration.seconds(
    Math.ceil(
      (retryBudget.toMilliseconds() + sinkRequestTimeout.toMilliseconds()) / (1 - deadlineMarginShare) / 1000
    )
  )

export class Processing extends Construct {
  readonly processor: SpillwayFunction
  readonly failureReprocessor: SpillwayFunction
  readonly onFailureQueue: sqs.Queue
  readonly onFailureDeadLetterQueue: sqs.Queue
  /** The enhanced fan-out consumer, when the reader is `enhanced-fan-out`. */
  readonly consumer: kinesis.StreamConsumer | undefined
  readonly timeout: CdkDuration

  constructor(scope: Construct, id: string, props: ProcessingProps) {
    super(scope, id)
    // Checked before anything is made, each against the limit Lambda (or the design) sets.
    const batchSize = integerIn(
      this,
      "batchSize",
      props.batchSize ?? 500,
      1,
      10_000,
      "Lambda's limit for Kinesis"
    )
    const maxBatchingWindow = durationIn(
      this,
      "maxBatchingWindow",
      props.maxBatchingWindow ?? CdkDuration.seconds(0),
      CdkDuration.seconds(0),
      CdkDuration.minutes(5),
      "Lambda's limit"
    )
    const retryAttempts = integerIn(
      this,
      "retryAttempts",
      props.retryAttempts ?? 5,
      0,
      10_000,
      "a finite count (-1, retrying until the record expires, lets one poison record block its shard for the stream's whole retention)"
    )
    const maxRecordAge = durationIn(
      this,
      "maxRecordAge",
      props.maxRecordAge ?? CdkDuration.hours(6),
      CdkDuration.minutes(1),
      CdkDuration.days(7),
      "Lambda's limits (never unbounded)"
    )
    if (!props.streamRetention.isUnresolved()) {
      ensure(
        this,
        "maxRecordAge",
        maxRecordAge.toMilliseconds() < props.streamRetention.toMilliseconds(),
        `(${maxRecordAge.toHumanString()}) must be shorter than the stream's retention (${props.streamRetention.toHumanString()}): the failure reprocessor reads a failed batch back from the stream`
      )
    }
    const parallelizationFactor = integerIn(
      this,
      "parallelizationFactor",
      props.parallelizationFactor ?? 1,
      1,
      10,
      "Lambda's limit"
    )
    const retryBudget = props.retryBudget ?? sinkRetryBudget
    const timeout = props.timeout ?? processorTimeout(retryBudget)
    if (!timeout.isUnresolved() && timeout.toMilliseconds() < retryBudget.toMilliseconds()) {
      throw new InvalidProps(
        this,
        "timeout",
        `(${timeout.toHumanString()}) is shorter than the sink's retry budget (${retryBudget.toHumanString()}): a write that is retrying would be cut off before its retries are spent. Use at least the budget; processorTimeout(budget) = ${processorTimeout(retryBudget).toHumanString()} also leaves room for the last request and the deadline margin`
      )
    }
    durationIn(this, "timeout", timeout, CdkDuration.seconds(1), CdkDuration.minutes(15), "Lambda's limit")
    this.timeout = timeout
    const failureReprocessorMaxConcurrency = integerIn(
      this,
      "failureReprocessorMaxConcurrency",
      props.failureReprocessorMaxConcurrency ?? 2,
      2,
      1000,
      "the SQS event source's maximum concurrency"
    )
    const reportBatchItemFailures = props.reportBatchItemFailures ?? true
    const reader = props.reader ?? "shared"

    const onFailure = queueWithDlq(this, "OnFailureQueue", {
      consumerTimeout: timeout,
      maxReceiveCount: props.onFailureMaxReceiveCount ?? 10,
      removalPolicy: props.removalPolicy
    })
    this.onFailureQueue = onFailure.queue
    this.onFailureDeadLetterQueue = onFailure.deadLetterQueue

    this.processor = new SpillwayFunction(this, "Processor", {
      ...props.functions,
      bundle: "processor",
      description: "Spillway processor: writes the stream's records to OpenSearch, skipping duplicates",
      timeout,
      environment: {
        ...props.search.sinkEnvironment,
        REPORT_BATCH_ITEM_FAILURES: String(reportBatchItemFailures)
      }
    })
    props.search.grantSinkWrite(this.processor)

    const mappingOptions: StreamEventSourceProps = {
      // From the oldest record kept: nothing written between the stream's creation and the
      // mapping's is skipped (the writes are idempotent, so reading something twice is harmless).
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize,
      maxBatchingWindow,
      bisectBatchOnError: props.bisectBatchOnError ?? true,
      retryAttempts,
      maxRecordAge,
      reportBatchItemFailures,
      parallelizationFactor,
      onFailure: new SqsDlq(this.onFailureQueue)
    }
    if (reader === "enhanced-fan-out") {
      this.consumer = new kinesis.StreamConsumer(this, "Consumer", {
        stream: props.stream,
        streamConsumerName: "spillway-processor"
      })
      this.processor.function.addEventSource(new KinesisConsumerEventSource(this.consumer, mappingOptions))
    } else {
      this.consumer = undefined
      this.processor.function.addEventSource(new KinesisEventSource(props.stream, mappingOptions))
    }

    this.failureReprocessor = new SpillwayFunction(this, "FailureReprocessor", {
      ...props.functions,
      bundle: "failure-reprocessor",
      description:
        "Spillway failure reprocessor: reads each batch the processor gave up on back from the stream and writes it again",
      timeout,
      environment: {
        ...props.search.sinkEnvironment,
        STREAM_ARN: props.stream.streamArn,
        REPORT_BATCH_ITEM_FAILURES: "true"
      }
    })
    // `readRange`: GetShardIterator at the range's first sequence number, then GetRecords.
    this.failureReprocessor.allow(
      ["kinesis:GetShardIterator", "kinesis:GetRecords"],
      [props.stream.streamArn]
    )
    props.search.grantSinkWrite(this.failureReprocessor)
    // One on-failure record per invocation: each is a whole batch to read back and write, and a
    // record left unfinished at the deadline would use up one of its receives without being tried.
    this.failureReprocessor.function.addEventSource(
      new SqsEventSource(this.onFailureQueue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: failureReprocessorMaxConcurrency
      })
    )

    output(this, "OnFailureQueueUrl", this.onFailureQueue.queueUrl)
    output(this, "OnFailureQueueArn", this.onFailureQueue.queueArn)
    output(this, "OnFailureDeadLetterQueueUrl", this.onFailureDeadLetterQueue.queueUrl)
  }
}
