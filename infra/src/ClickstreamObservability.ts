/**
 * The clickstream path's alarms, to the stage's alarm topic (as `Observability`'s, through the
 * same `alarmsTo`), and its widgets on the stage's dashboard.
 *
 * Alarms:
 * - iterator age of the cleaner's and the metrics function's mappings (a blocked or slow shard);
 * - each function's errors (a crash, a timeout, a configuration refused; for the forwarder: an
 *   invocation that could neither deliver nor spool, which Lambda delivers again), and the
 *   throttles of the three that must keep up (the retrier's are by design: one run at a time);
 * - the age of the spool's oldest pending points, from the retrier's EMF gauge
 *   `spillway_metric_spool_oldest_age_seconds` (`METRICS_NAMESPACE`, `function` =
 *   `forward-retrier`): Datadog has not taken them back for that long, or the key is missing;
 * - the forwarder's parked points (`spillway_forwarder_points_parked`: never retried, a person
 *   must look), malformed lines (`spillway_forwarder_malformed_lines`) and unreadable payloads
 *   (`spillway_forwarder_invalid_payloads`);
 * - the three on-failure queues holding anything (a mapping gave up on a range, or the forwarder
 *   on a delivery) and their dead-letter queues.
 *
 * The metric names are read from the metrics' own definitions in @spillway/core (`Forward`,
 * `RetrySpool`, `Clean`, `Derive`), so an alarm cannot watch a name no function writes.
 */
import { Clean, Derive, Forward, RetrySpool } from "@spillway/core"
import { Duration } from "aws-cdk-lib"
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch"
import type * as sns from "aws-cdk-lib/aws-sns"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import type { Clickstream } from "./Clickstream.js"
import * as Alarms from "./internal/alarms.js"
import type { SpillwayFunction } from "./SpillwayFunction.js"

export interface ClickstreamObservabilitySettings {
  /** Iterator age of the cleaner's or the metrics function's mapping that raises its alarm (3 of 5 minutes). @default Duration.minutes(1) */
  readonly iteratorAgeThreshold?: Duration
  /** Age of the spool's oldest pending points that raises the alarm, 1 minute (the retrier's interval) to 1 hour. @default Duration.minutes(5) */
  readonly spoolAgeThreshold?: Duration
}

export interface ClickstreamObservabilityProps extends ClickstreamObservabilitySettings {
  readonly stageName: string
  /** The functions' `METRICS_NAMESPACE`. */
  readonly metricsNamespace: string
  readonly clickstream: Clickstream
  readonly topic: sns.ITopic
  readonly dashboard: cloudwatch.Dashboard
}

const minute = Duration.minutes(1)

export class ClickstreamObservability extends Construct {
  readonly alarms: Record<string, cloudwatch.Alarm> = {}

  constructor(scope: Construct, id: string, props: ClickstreamObservabilityProps) {
    super(scope, id)
    const { iteratorAgeThreshold: iteratorAge, spoolAgeThreshold: spoolAge } = Alarms.thresholds(
      this,
      props,
      {
        iteratorAgeThreshold: Alarms.iteratorAgeSetting,
        spoolAgeThreshold: {
          default: Duration.minutes(5),
          min: Duration.minutes(1),
          max: Duration.hours(1),
          why: "the retrier reports every minute, and Datadog takes no point older than an hour"
        }
      }
    )
    const alarm = Alarms.alarmsTo(this, props.stageName, props.topic, this.alarms)
    const { clickstream } = props
    const { cleaner, metrics } = clickstream
    const { forwarder, retrier } = clickstream.forwarder

    const emf = (metricName: string, fn: SpillwayFunction, statistic: string, period?: Duration) =>
      Alarms.emfMetric(props.metricsNamespace, metricName, fn.bundle, statistic, period)

    for (const [fn, stream] of [
      [cleaner, "raw"],
      [metrics, "clean"]
    ] as const) {
      Alarms.iteratorAgeAlarm(
        alarm,
        `Clickstream${Alarms.pascal(fn.bundle)}IteratorAge`,
        `The ${fn.bundle} function reads the ${stream} clickstream ${iteratorAge.toHumanString()} or more behind (maximum IteratorAge, 3 of 5 minutes): a shard is blocked or the function cannot keep up, and the live metrics lag with it.`,
        fn,
        iteratorAge
      )
    }
    for (const fn of [cleaner, metrics, forwarder, retrier]) {
      Alarms.errorsAlarm(
        alarm,
        "Clickstream",
        fn,
        fn === forwarder
          ? "The forwarder failed invocations: it could neither deliver nor spool some points (or the deadline came first). Lambda delivers each again twice, then to the forwarder's on-failure queue; see its log group."
          : undefined
      )
    }
    for (const fn of [cleaner, metrics, forwarder]) Alarms.throttlesAlarm(alarm, "Clickstream", fn)

    const spoolAgeMetric = emf(RetrySpool.spoolOldestAge.id, retrier, "Maximum")
    alarm(
      "ClickstreamSpoolOldestAge",
      `Metric points have waited ${spoolAge.toHumanString()} or more in the spool (the forward retrier's spillway_metric_spool_oldest_age_seconds): Datadog still refuses them, the API key is missing or wrong, or an entry cannot be read. Points older than an hour are parked, not sent.`,
      spoolAgeMetric,
      spoolAge.toSeconds()
    )
    const fiveMinutes = Duration.minutes(5)
    const parked = emf(Forward.pointsParked.id, forwarder, "Sum", fiveMinutes)
    alarm(
      "ClickstreamForwarderPointsParked",
      "The forwarder parked metric points Datadog will never take (refused for their content, or outside its one-hour window): they are kept under the spool's parked/ prefix for 90 days and never retried automatically.",
      parked,
      1
    )
    const malformed = emf(Forward.malformedLines.id, forwarder, "Sum", fiveMinutes)
    alarm(
      "ClickstreamForwarderMalformedLines",
      "The forwarder read metric lines it could not parse (a missing or mistyped field): they are counted and logged with their reason and log-event id in the forwarder's log group, and not sent.",
      malformed,
      1
    )
    const invalid = emf(Forward.invalidPayloads.id, forwarder, "Sum", fiveMinutes)
    alarm(
      "ClickstreamForwarderInvalidPayloads",
      "The forwarder was handed subscription payloads it could not read (not base64, truncated gzip, not a subscription message): see its log group.",
      invalid,
      1
    )

    const queues: ReadonlyArray<readonly [string, sqs.IQueue, string]> = [
      [
        "ClickstreamCleanerOnFailureQueueDepth",
        clickstream.cleanerOnFailureQueue,
        "The cleaner's event source mapping gave up on a range of the raw stream (retries or record age spent) and sent its record to the on-failure queue: those events were not cleaned. The record names the shard and sequence numbers to read back while the stream keeps them."
      ],
      [
        "ClickstreamMetricsOnFailureQueueDepth",
        clickstream.metricsOnFailureQueue,
        "The metrics function's event source mapping gave up on a range of the clean stream and sent its record to the on-failure queue: those events were not counted. The record names the shard and sequence numbers to read back while the stream keeps them."
      ],
      [
        "ClickstreamForwarderOnFailureQueueDepth",
        clickstream.forwarder.onFailureQueue,
        "A log delivery failed the forwarder three times (it could neither deliver nor spool its points) and is in the forwarder's on-failure queue, with its payload: invoke the forwarder with it again once the spool bucket is writable."
      ],
      [
        "ClickstreamCleanerOnFailureDeadLettersDepth",
        clickstream.cleanerOnFailureDeadLetterQueue,
        "The cleaner's on-failure dead-letter queue holds messages: records of unclean ranges received 10 times without being deleted."
      ],
      [
        "ClickstreamMetricsOnFailureDeadLettersDepth",
        clickstream.metricsOnFailureDeadLetterQueue,
        "The metrics function's on-failure dead-letter queue holds messages: records of uncounted ranges received 10 times without being deleted."
      ],
      [
        "ClickstreamForwarderOnFailureDeadLettersDepth",
        clickstream.forwarder.onFailureDeadLetterQueue,
        "The forwarder's on-failure dead-letter queue holds messages: failed log deliveries received 10 times without being deleted."
      ]
    ]
    for (const [key, queue, description] of queues) alarm(key, description, Alarms.queueDepth(queue), 1)

    const labelled = (metric: cloudwatch.Metric, label: string) => metric.with({ label })
    props.dashboard.addWidgets(
      new cloudwatch.TextWidget({ markdown: "## Clickstream metrics", width: 24, height: 1 }),
      new cloudwatch.GraphWidget({
        title: "Clickstream: events cleaned (per minute)",
        left: [
          clickstream.rawStream.metricIncomingRecords({
            statistic: "Sum",
            period: minute,
            label: "records into the raw stream"
          }),
          labelled(emf(Clean.eventsRead.id, cleaner, "Sum"), "read"),
          labelled(emf(Clean.eventsKept.id, cleaner, "Sum"), "kept"),
          labelled(emf(Clean.droppedInvalid.id, cleaner, "Sum"), "dropped: invalid"),
          labelled(emf(Clean.droppedUnwantedType.id, cleaner, "Sum"), "dropped: unwanted type"),
          labelled(emf(Clean.droppedBot.id, cleaner, "Sum"), "dropped: bot"),
          labelled(emf(Clean.droppedTooOld.id, cleaner, "Sum"), "dropped: too old"),
          labelled(emf(Derive.eventsCounted.id, metrics, "Sum"), "counted by the metrics function")
        ],
        width: 12
      }),
      new cloudwatch.GraphWidget({
        title: "Clickstream: metric points (per minute)",
        left: [
          labelled(emf(Forward.pointsDelivered.id, forwarder, "Sum"), "delivered by the forwarder"),
          labelled(emf(Forward.pointsSpooled.id, forwarder, "Sum"), "spooled"),
          labelled(emf(Forward.pointsParked.id, forwarder, "Sum"), "parked"),
          labelled(emf(RetrySpool.spoolDelivered.id, retrier, "Sum"), "delivered from the spool")
        ],
        right: [labelled(emf(Forward.malformedLines.id, forwarder, "Sum"), "malformed lines")],
        width: 12
      })
    )
    props.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "Clickstream: lag",
        left: [
          Alarms.iteratorAgeOf(cleaner, "cleaner iterator age (ms)"),
          Alarms.iteratorAgeOf(metrics, "metrics iterator age (ms)")
        ],
        leftAnnotations: [{ value: iteratorAge.toMilliseconds(), label: "iterator age alarm" }],
        right: [spoolAgeMetric.with({ label: "oldest spooled points (s)" })],
        rightAnnotations: [{ value: spoolAge.toSeconds(), label: "spool age alarm" }],
        width: 12
      }),
      new cloudwatch.GraphWidget({
        title: "Clickstream: on-failure queues (messages)",
        left: queues.map(([key, queue]) => Alarms.queueDepth(queue, key.replace(/^Clickstream|Depth$/g, ""))),
        width: 12
      })
    )
    props.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: "Clickstream alarms",
        alarms: Object.values(this.alarms),
        width: 24
      })
    )
  }
}
