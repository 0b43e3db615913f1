/**
 * The clickstream metrics path (README "Clickstream metrics"): the raw stream producers put
 * clickstream events into, the cleaner on its event source mapping writing clean events into the
 * clean stream (partitioned by session), the metrics function on the clean stream's mapping
 * writing metric lines into its own log group, and the `MetricsForwarder` subscribed to that log
 * group, which ships them to Datadog and never drops one.
 *
 * Guarantees:
 * - both streams are encrypted (aws/kinesis, as the telemetry stream), on-demand or provisioned;
 * - both mappings are safe by construction (`internal/streamMappings.ts`): bisect on error,
 *   finite retries (3) and record age (1 hour, shorter than the stream's retention), partial batch
 *   responses read (`REPORT_BATCH_ITEM_FAILURES` follows the setting), and an on-failure SQS queue
 *   each (14 days, its own DLQ) naming the range a person can read back from the stream;
 * - the cleaner's timeout lets it spend its put budget (`Schedules.cleanPut`) and a last request
 *   after the deadline margin; the metrics function makes no network call at all;
 * - the cleaner's settings are checked at synth as the function checks them at start (event
 *   types, the bot expression, PII fields, ages), so a stage that would not start does not deploy;
 * - the cleaner's role may put records into the clean stream and nothing else beyond its mapping;
 *   the metrics function's role holds only its mapping's reads and its on-failure queue.
 */
import { Clickstream as ClickstreamEvents, type MetricLine, Schedules } from "@spillway/core"
import { Duration as CdkDuration, type RemovalPolicy } from "aws-cdk-lib"
import * as kinesis from "aws-cdk-lib/aws-kinesis"
import { KinesisEventSource } from "aws-cdk-lib/aws-lambda-event-sources"
import type * as logs from "aws-cdk-lib/aws-logs"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import { Duration, Result } from "effect"
import type { StreamCapacity } from "./Ingestion.js"
import { durationIn, ensure, InvalidProps, integerIn } from "./internal/checks.js"
import { output } from "./internal/outputs.js"
import { queueWithDlq } from "./internal/queues.js"
import { type StreamMappingSettings, streamMapping } from "./internal/streamMappings.js"
import { MetricsForwarder, type MetricsForwarderSettings } from "./MetricsForwarder.js"
import { deadlineMarginShare } from "./Processing.js"
import { type FunctionDefaults, SpillwayFunction } from "./SpillwayFunction.js"

export interface ClickstreamStreamSettings {
  /** @default { mode: "on-demand" } */
  readonly capacity?: StreamCapacity
  /** How long the stream keeps records, 24 hours to 365 days (longer than the mapping's maxRecordAge). @default Duration.hours(24) */
  readonly retention?: CdkDuration
}

export interface CleanerSettings extends StreamMappingSettings {
  /** `CLEAN_EVENT_TYPES`: event types kept (normalized as the cleaner does), or `"*"` for all. @default the function's list (page_view … purchase) */
  readonly eventTypes?: ReadonlyArray<string> | "*"
  /** `CLEAN_BOT_USER_AGENTS`: a regular expression (case-insensitive) of user agents dropped as bots. @default the function's list */
  readonly botUserAgents?: string
  /** `CLEAN_MAX_EVENT_AGE_SECONDS`: older events are dropped, whole seconds, 1 s–1 hour. @default the function's 30 minutes */
  readonly maxEventAge?: CdkDuration
  /** `CLEAN_MAX_CLOCK_SKEW_SECONDS`: events further ahead are invalid, whole seconds, 1 s–10 minutes. @default the function's 5 minutes */
  readonly maxClockSkew?: CdkDuration
  /**
   * `CLEAN_PII_FIELDS`: fields removed from every clean event (dotted paths, at least one; a
   * field the metrics are keyed on is refused).
   * @default the function's `client.ip`, `attributes.email`, `attributes.phone`
   */
  readonly piiFields?: ReadonlyArray<string>
  /** From the put budget up to 15 minutes. @default `cleanerTimeout` (57 s) */
  readonly timeout?: CdkDuration
}

export interface MetricsFunctionSettings extends StreamMappingSettings {
  /** `METRIC_PREFIX`: the first part of every metric name. @default the function's "clickstream" */
  readonly prefix?: string
  /** `METRIC_TAGS`: `key:value` tags on every metric. @default none */
  readonly tags?: ReadonlyArray<string>
  /**
   * `CLICKSTREAM_EMF_NAMESPACE`, and the forwarder's `FORWARD_EMF_NAMESPACES`: the EMF namespace
   * of the metrics (not the functions' `METRICS_NAMESPACE`, whose operational metrics stay in CloudWatch).
   * @default "Clickstream"
   */
  readonly emfNamespace?: string
  /** How long the metrics function's log group (its metric lines) is kept. @default the stage's function log retention */
  readonly logRetention?: logs.RetentionDays
  /** 1 second to 15 minutes. @default Duration.seconds(30) */
  readonly timeout?: CdkDuration
}

export interface ClickstreamSettings {
  /** `METRIC_FORMAT`: EMF (CloudWatch builds the metrics too) or the Datadog Lambda line. */
  readonly metricFormat: MetricLine.Format
  /** The stream producers put clickstream events into. @default the defaults of `ClickstreamStreamSettings` */
  readonly rawStream?: ClickstreamStreamSettings
  /** The stream the cleaner writes clean events into. @default the defaults of `ClickstreamStreamSettings` */
  readonly cleanStream?: ClickstreamStreamSettings
  /** The cleaner and its mapping on the raw stream. @default the defaults of `CleanerSettings` */
  readonly cleaner?: CleanerSettings
  /** The metrics function and its mapping on the clean stream. @default the defaults of `MetricsFunctionSettings` */
  readonly metrics?: MetricsFunctionSettings
  /** @default the defaults of `MetricsForwarderSettings` */
  readonly forwarder?: MetricsForwarderSettings
}

export interface ClickstreamProps extends ClickstreamSettings {
  /** The functions' defaults; `metricsNamespace` is the functions' `METRICS_NAMESPACE`. */
  readonly functions: FunctionDefaults & { readonly metricsNamespace: string }
  readonly removalPolicy: RemovalPolicy
}

/**
 * `Schedules.cleanPut` has `Schedules.sinkWrite`'s shape (100 ms doubling to a 5 s cap, jittered,
 * for up to 20 s), so its budget is `Schedules.sinkWriteBudget`: the longest the cleaner spends
 * retrying puts that store nothing.
 */
export const cleanPutBudget: CdkDuration = CdkDuration.millis(Duration.toMillis(Schedules.sinkWriteBudget))

/** The longest one `PutRecords` may take: the AWS clients' request timeout (`ClientConfig`, 25 s). */
export const kinesisRequestTimeout: CdkDuration = CdkDuration.seconds(25)

/** `(put budget + a last request) / (1 − deadline margin)`, rounded up to the second: 57 s. */
export const cleanerTimeout = (budget: CdkDuration = cleanPutBudget): CdkDuration =>
  CdkDuration.seconds(
    Math.ceil(
      (budget.toMilliseconds() + kinesisRequestTimeout.toMilliseconds()) / (1 - deadlineMarginShare) / 1000
    )
  )

/** `ClickstreamMetrics`' check of each `METRIC_TAGS` tag. */
const tagPattern = /^[A-Za-z][A-Za-z0-9_.\-/]*:[^,\s]+$/

export class Clickstream extends Construct {
  readonly rawStream: kinesis.Stream
  readonly cleanStream: kinesis.Stream
  readonly cleaner: SpillwayFunction
  readonly metrics: SpillwayFunction
  readonly cleanerOnFailureQueue: sqs.Queue
  readonly cleanerOnFailureDeadLetterQueue: sqs.Queue
  readonly metricsOnFailureQueue: sqs.Queue
  readonly metricsOnFailureDeadLetterQueue: sqs.Queue
  readonly forwarder: MetricsForwarder
  /** The EMF namespace of the clickstream metrics (`CLICKSTREAM_EMF_NAMESPACE`). */
  readonly emfNamespace: string

  constructor(scope: Construct, id: string, props: ClickstreamProps) {
    super(scope, id)
    const raw = this.checkedStream("rawStream", props.rawStream ?? {})
    const clean = this.checkedStream("cleanStream", props.cleanStream ?? {})
    const cleanerSettings = props.cleaner ?? {}
    const metricsSettings = props.metrics ?? {}
    const cleanerEnvironment = this.cleanerEnvironment(cleanerSettings)
    const cleanerTimeoutValue = cleanerSettings.timeout ?? cleanerTimeout()
    if (
      !cleanerTimeoutValue.isUnresolved() &&
      cleanerTimeoutValue.toMilliseconds() < cleanPutBudget.toMilliseconds()
    ) {
      throw new InvalidProps(
        this,
        "cleaner.timeout",
        `(${cleanerTimeoutValue.toHumanString()}) is shorter than the cleaner's put budget (${cleanPutBudget.toHumanString()}): records being retried would be cut off before their retries are spent. Use at least the budget; cleanerTimeout() = ${cleanerTimeout().toHumanString()} also leaves room for the last request and the deadline margin`
      )
    }
    durationIn(
      this,
      "cleaner.timeout",
      cleanerTimeoutValue,
      CdkDuration.seconds(1),
      CdkDuration.minutes(15),
      "Lambda's limit"
    )
    const metricsTimeout = durationIn(
      this,
      "metrics.timeout",
      metricsSettings.timeout ?? CdkDuration.seconds(30),
      CdkDuration.seconds(1),
      CdkDuration.minutes(15),
      "Lambda's limit"
    )
    const emfNamespace = metricsSettings.emfNamespace ?? "Clickstream"
    ensure(
      this,
      "metrics.emfNamespace",
      /^[^,\s:][^,]{0,254}$/.test(emfNamespace) && !emfNamespace.startsWith("AWS/"),
      `must be a CloudWatch namespace (1–255 characters, no ',', not AWS/…), got ${JSON.stringify(emfNamespace)}`
    )
    ensure(
      this,
      "metrics.emfNamespace",
      emfNamespace !== props.functions.metricsNamespace,
      `(${emfNamespace}) must differ from the functions' METRICS_NAMESPACE: the forwarder would ship their operational metrics to Datadog`
    )
    this.emfNamespace = emfNamespace
    if (metricsSettings.prefix !== undefined) {
      ensure(
        this,
        "metrics.prefix",
        /^[A-Za-z][A-Za-z0-9_.]{0,149}$/.test(metricsSettings.prefix),
        `must start with a letter and hold only letters, digits, '_' and '.' (at most 150: Datadog's metric names are at most 200 characters), got ${JSON.stringify(metricsSettings.prefix)}`
      )
    }
    for (const tag of metricsSettings.tags ?? []) {
      ensure(
        this,
        "metrics.tags",
        tagPattern.test(tag),
        `must be key:value tags (a key starting with a letter, a value without ',' or spaces), got ${JSON.stringify(tag)}`
      )
    }

    this.rawStream = this.stream("RawStream", raw, props.removalPolicy)
    this.cleanStream = this.stream("CleanStream", clean, props.removalPolicy)

    const cleanerOnFailure = queueWithDlq(this, "CleanerOnFailureQueue", {
      maxReceiveCount: integerIn(
        this,
        "cleaner.onFailureMaxReceiveCount",
        cleanerSettings.onFailureMaxReceiveCount ?? 10,
        1,
        1000
      ),
      removalPolicy: props.removalPolicy
    })
    this.cleanerOnFailureQueue = cleanerOnFailure.queue
    this.cleanerOnFailureDeadLetterQueue = cleanerOnFailure.deadLetterQueue
    const metricsOnFailure = queueWithDlq(this, "MetricsOnFailureQueue", {
      maxReceiveCount: integerIn(
        this,
        "metrics.onFailureMaxReceiveCount",
        metricsSettings.onFailureMaxReceiveCount ?? 10,
        1,
        1000
      ),
      removalPolicy: props.removalPolicy
    })
    this.metricsOnFailureQueue = metricsOnFailure.queue
    this.metricsOnFailureDeadLetterQueue = metricsOnFailure.deadLetterQueue

    const cleanerMapping = streamMapping(
      this,
      "cleaner",
      cleanerSettings,
      raw.retention,
      this.cleanerOnFailureQueue
    )
    const metricsMapping = streamMapping(
      this,
      "metrics",
      metricsSettings,
      clean.retention,
      this.metricsOnFailureQueue
    )

    this.cleaner = new SpillwayFunction(this, "Cleaner", {
      ...props.functions,
      bundle: "cleaner",
      description:
        "Spillway clickstream cleaner: normalizes and filters the raw stream's events, removes PII, puts them into the clean stream by session",
      timeout: cleanerTimeoutValue,
      environment: {
        STREAM_ARN: this.cleanStream.streamArn,
        REPORT_BATCH_ITEM_FAILURES: String(cleanerMapping.reportBatchItemFailures),
        ...cleanerEnvironment
      }
    })
    this.cleaner.allow(["kinesis:PutRecords"], [this.cleanStream.streamArn])
    this.cleaner.function.addEventSource(new KinesisEventSource(this.rawStream, cleanerMapping.props))

    this.metrics = new SpillwayFunction(this, "Metrics", {
      ...props.functions,
      ...(metricsSettings.logRetention === undefined ? {} : { logRetention: metricsSettings.logRetention }),
      bundle: "metrics",
      description:
        "Spillway clickstream metrics: turns clean events into per-minute metric lines in its own log group (no network call)",
      timeout: metricsTimeout,
      environment: {
        METRIC_FORMAT: props.metricFormat,
        CLICKSTREAM_EMF_NAMESPACE: emfNamespace,
        REPORT_BATCH_ITEM_FAILURES: String(metricsMapping.reportBatchItemFailures),
        ...(metricsSettings.prefix === undefined ? {} : { METRIC_PREFIX: metricsSettings.prefix }),
        ...(metricsSettings.tags === undefined || metricsSettings.tags.length === 0
          ? {}
          : { METRIC_TAGS: metricsSettings.tags.join(",") })
      }
    })
    this.metrics.function.addEventSource(new KinesisEventSource(this.cleanStream, metricsMapping.props))

    this.forwarder = new MetricsForwarder(this, "Forwarder", {
      ...props.forwarder,
      logGroup: this.metrics.logGroup,
      emfNamespaces: [emfNamespace],
      functions: props.functions,
      removalPolicy: props.removalPolicy
    })

    output(
      this,
      "ClickstreamRawStreamName",
      this.rawStream.streamName,
      "Where producers put clickstream events"
    )
    output(this, "ClickstreamRawStreamArn", this.rawStream.streamArn)
    output(this, "ClickstreamCleanStreamArn", this.cleanStream.streamArn)
    output(this, "CleanerOnFailureQueueUrl", this.cleanerOnFailureQueue.queueUrl)
    output(this, "MetricsOnFailureQueueUrl", this.metricsOnFailureQueue.queueUrl)
  }

  private checkedStream(setting: string, settings: ClickstreamStreamSettings) {
    const capacity = settings.capacity ?? { mode: "on-demand" }
    if (capacity.mode === "provisioned") {
      integerIn(
        this,
        `${setting}.capacity.shards`,
        capacity.shards,
        1,
        10_000,
        "a provisioned stream has 1 or more shards"
      )
    }
    const retention = durationIn(
      this,
      `${setting}.retention`,
      settings.retention ?? CdkDuration.hours(24),
      CdkDuration.hours(24),
      CdkDuration.days(365),
      "Kinesis retention limits"
    )
    return { capacity, retention }
  }

  private stream(
    id: string,
    settings: { readonly capacity: StreamCapacity; readonly retention: CdkDuration },
    removalPolicy: RemovalPolicy
  ): kinesis.Stream {
    return new kinesis.Stream(this, id, {
      ...(settings.capacity.mode === "on-demand"
        ? { streamMode: kinesis.StreamMode.ON_DEMAND }
        : { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: settings.capacity.shards }),
      retentionPeriod: settings.retention,
      // The AWS-managed key, as the telemetry stream: no KMS grants for producers and consumers.
      encryption: kinesis.StreamEncryption.MANAGED,
      removalPolicy
    })
  }

  /** The cleaner's optional variables, each checked as the cleaner checks it at start. */
  private cleanerEnvironment(settings: CleanerSettings): Record<string, string> {
    const environment: Record<string, string> = {}
    if (settings.eventTypes !== undefined) {
      if (settings.eventTypes === "*") environment.CLEAN_EVENT_TYPES = "*"
      else {
        const types = settings.eventTypes.map(ClickstreamEvents.normalizeEventType)
        ensure(
          this,
          "cleaner.eventTypes",
          types.length > 0 && types.every((t) => /^[a-z0-9_]+$/.test(t)),
          `must be "*" or one or more event types (letters, digits, '_', '-', spaces), got ${JSON.stringify(settings.eventTypes)}`
        )
        environment.CLEAN_EVENT_TYPES = types.join(",")
      }
    }
    if (settings.botUserAgents !== undefined) {
      let problem: string | undefined
      try {
        new RegExp(settings.botUserAgents, "i")
      } catch (error) {
        problem = String(error)
      }
      ensure(
        this,
        "cleaner.botUserAgents",
        problem === undefined && settings.botUserAgents.length > 0,
        `must be a regular expression, got ${JSON.stringify(settings.botUserAgents)}${problem === undefined ? "" : `: ${problem}`}`
      )
      environment.CLEAN_BOT_USER_AGENTS = settings.botUserAgents
    }
    const wholeSeconds = (setting: string, value: CdkDuration, max: CdkDuration, why: string): string => {
      durationIn(this, setting, value, CdkDuration.seconds(1), max, why)
      ensure(
        this,
        setting,
        value.toMilliseconds() % 1000 === 0,
        `must be whole seconds, got ${value.toHumanString()}`
      )
      return String(value.toSeconds())
    }
    if (settings.maxEventAge !== undefined) {
      environment.CLEAN_MAX_EVENT_AGE_SECONDS = wholeSeconds(
        "cleaner.maxEventAge",
        settings.maxEventAge,
        CdkDuration.hours(1),
        "Datadog takes points up to an hour old; older ones would only be parked"
      )
    }
    if (settings.maxClockSkew !== undefined) {
      environment.CLEAN_MAX_CLOCK_SKEW_SECONDS = wholeSeconds(
        "cleaner.maxClockSkew",
        settings.maxClockSkew,
        CdkDuration.minutes(10),
        "Datadog drops points more than 10 minutes ahead; the forwarder would only park them"
      )
    }
    if (settings.piiFields !== undefined) {
      const text = settings.piiFields.join(",")
      // An empty CLEAN_PII_FIELDS reads as unset (Effect's environment provider), so the cleaner
      // would remove its default fields instead of none.
      ensure(
        this,
        "cleaner.piiFields",
        settings.piiFields.length > 0,
        "must name at least one field: an empty CLEAN_PII_FIELDS reads as unset, and the cleaner would remove its default fields"
      )
      const parsed = ClickstreamEvents.parseFieldPaths(text)
      if (Result.isFailure(parsed)) throw new InvalidProps(this, "cleaner.piiFields", parsed.failure)
      environment.CLEAN_PII_FIELDS = text
    }
    return environment
  }
}
