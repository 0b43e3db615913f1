/**
 * Observability: the alarms that say the pipeline is losing time or data, and one dashboard.
 *
 * Alarms (all to one SNS topic, on alarm and back to OK):
 * - processor iterator age: the stream is read behind (a blocked or slow shard);
 * - delay p99: `spillway_end_to_end_delay_ms` from the processor's EMF lines (namespace
 *   `METRICS_NAMESPACE`, dimension `function` = `processor`), record timestamp to written;
 * - on-failure queue depth: the processor's mapping gave up on a batch;
 * - fallback queue age of oldest message: parked records are not getting back into the stream;
 * - every dead-letter queue holding anything: data (or the record of lost data) a person must see;
 * - each function's errors and throttles (the batch functions answer failures as partial batch
 *   responses, so an error is a crash, a timeout, or a configuration the runtime refused);
 * - the backup's data freshness and the domain's failed automated snapshots and red status: what
 *   the disaster-recovery runbook relies on.
 */
import { Duration } from "aws-cdk-lib"
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch"
import type * as kinesis from "aws-cdk-lib/aws-kinesis"
import type * as firehose from "aws-cdk-lib/aws-kinesisfirehose"
import * as sns from "aws-cdk-lib/aws-sns"
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import * as Alarms from "./internal/alarms.js"
import { ensure } from "./internal/checks.js"
import { output } from "./internal/outputs.js"
import type { SearchDomain } from "./SearchDomain.js"
import type { SpillwayFunction } from "./SpillwayFunction.js"

export interface ObservabilitySettings {
  /** Processor iterator age that raises the alarm (3 of 5 minutes). @default Duration.minutes(1) */
  readonly iteratorAgeThreshold?: Duration
  /** End-to-end delay p99 that raises the alarm (3 of 5 minutes). @default Duration.seconds(5) */
  readonly delayP99Threshold?: Duration
  /** Age of the fallback queue's oldest message that raises the alarm. @default Duration.minutes(5) */
  readonly fallbackAgeThreshold?: Duration
  /** How far behind the backup may be (Firehose `DeliveryToS3.DataFreshness`). @default Duration.minutes(15) */
  readonly backupFreshnessThreshold?: Duration
  /** Addresses the alarm topic mails (each confirms its subscription once). @default none */
  readonly alarmEmails?: ReadonlyArray<string>
}

export interface ObservabilityProps extends ObservabilitySettings {
  /** The stage's name, at the start of every alarm's name. */
  readonly stageName: string
  /** The functions' `METRICS_NAMESPACE`. */
  readonly metricsNamespace: string
  readonly stream: kinesis.IStream
  readonly functions: {
    readonly collector: SpillwayFunction
    readonly redriver: SpillwayFunction
    readonly processor: SpillwayFunction
    readonly failureReprocessor: SpillwayFunction
    readonly backupReplayer: SpillwayFunction
  }
  readonly fallbackQueue: sqs.IQueue
  readonly onFailureQueue: sqs.IQueue
  readonly deadLetterQueues: Readonly<Record<string, sqs.IQueue>>
  readonly deliveryStream: firehose.IDeliveryStream
  readonly search: SearchDomain
}

const minute = Duration.minutes(1)

export class Observability extends Construct {
  readonly topic: sns.Topic
  readonly alarms: Record<string, cloudwatch.Alarm> = {}
  readonly dashboard: cloudwatch.Dashboard

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id)
    const {
      iteratorAgeThreshold: iteratorAge,
      delayP99Threshold: delayP99,
      fallbackAgeThreshold: fallbackAge,
      backupFreshnessThreshold: freshness
    } = Alarms.thresholds(this, props, {
      iteratorAgeThreshold: Alarms.iteratorAgeSetting,
      delayP99Threshold: { default: Duration.seconds(5), min: Duration.millis(1), max: Duration.days(1) },
      fallbackAgeThreshold: {
        default: Duration.minutes(5),
        min: Duration.seconds(1),
        max: Duration.days(14)
      },
      backupFreshnessThreshold: {
        default: Duration.minutes(15),
        min: Duration.minutes(1),
        max: Duration.days(1)
      }
    })
    for (const email of props.alarmEmails ?? []) {
      ensure(
        this,
        "alarmEmails",
        /^[^\s@]+@[^\s@]+$/.test(email),
        `must be e-mail addresses, got ${JSON.stringify(email)}`
      )
    }

    // Not encrypted: alarm notifications carry alarm names, thresholds and states, no telemetry,
    // and CloudWatch cannot publish to a topic under the AWS-managed SNS key.
    this.topic = new sns.Topic(this, "AlarmTopic", {
      displayName: `Spillway ${props.stageName} alarms`,
      enforceSSL: true
    })
    for (const email of props.alarmEmails ?? [])
      this.topic.addSubscription(new subscriptions.EmailSubscription(email))
    const alarm = Alarms.alarmsTo(this, props.stageName, this.topic, this.alarms)

    const { processor } = props.functions
    Alarms.iteratorAgeAlarm(
      alarm,
      "ProcessorIteratorAge",
      `The processor reads the stream ${iteratorAge.toHumanString()} or more behind (maximum IteratorAge, 3 of 5 minutes): a shard is blocked or the processor cannot keep up.`,
      processor,
      iteratorAge
    )

    const emf = (metricName: string, functionName: string, statistic: string) =>
      Alarms.emfMetric(props.metricsNamespace, metricName, functionName, statistic)
    const delayP99Metric = emf("spillway_end_to_end_delay_ms", "processor", "p99")
    alarm(
      "DelayP99",
      `End-to-end delay p99 (record timestamp to written, from the processor's EMF metric spillway_end_to_end_delay_ms) is ${delayP99.toHumanString()} or more, 3 of 5 minutes.`,
      delayP99Metric,
      delayP99.toMilliseconds(),
      { evaluationPeriods: 5, datapointsToAlarm: 3 }
    )

    alarm(
      "OnFailureQueueDepth",
      "The processor's event source mapping gave up on a batch and sent its record to the on-failure queue; the failure reprocessor is reading it back from the stream. If this stays, the failure reprocessor cannot write either.",
      Alarms.queueDepth(props.onFailureQueue),
      1
    )
    alarm(
      "FallbackQueueAge",
      `A record parked in the fallback queue has waited ${fallbackAge.toHumanString()} or more: the redriver is not getting it back into the stream.`,
      props.fallbackQueue.metric("ApproximateAgeOfOldestMessage", { statistic: "Maximum", period: minute }),
      fallbackAge.toSeconds()
    )
    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      alarm(
        `${name}Depth`,
        `The ${name} dead-letter queue holds messages: data, or the record of lost data, that needs a person (README: disaster recovery).`,
        Alarms.queueDepth(queue),
        1
      )
    }

    for (const fn of Object.values(props.functions)) {
      Alarms.errorsAlarm(alarm, "", fn)
      Alarms.throttlesAlarm(alarm, "", fn)
    }

    alarm(
      "BackupFreshness",
      `The backup is ${freshness.toHumanString()} or more behind the stream (Firehose DeliveryToS3.DataFreshness): the archive the disaster-recovery runbook replays from is incomplete.`,
      new cloudwatch.Metric({
        namespace: "AWS/Firehose",
        metricName: "DeliveryToS3.DataFreshness",
        dimensionsMap: { DeliveryStreamName: props.deliveryStream.deliveryStreamName },
        statistic: "Maximum",
        period: Duration.minutes(5)
      }),
      freshness.toSeconds()
    )
    const domain = props.search.domain
    alarm(
      "SnapshotFailure",
      "The domain's hourly automated snapshot failed: the snapshots a restore starts from are missing.",
      domain.metricAutomatedSnapshotFailure({ period: Duration.minutes(60) }),
      1
    )
    alarm(
      "ClusterRed",
      "The domain's cluster status is red: a primary shard is unassigned and writes to its index fail.",
      domain.metricClusterStatusRed({ period: minute }),
      1
    )

    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: `Spillway-${props.stageName}`,
      defaultInterval: Duration.hours(3)
    })
    const sum = (metric: cloudwatch.Metric, label: string) => metric.with({ statistic: "Sum", label })
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "End-to-end delay (ms)",
        left: [
          emf("spillway_end_to_end_delay_ms", "processor", "Average").with({ label: "average" }),
          delayP99Metric.with({ label: "p99" })
        ],
        leftAnnotations: [{ value: delayP99.toMilliseconds(), label: "p99 alarm" }],
        width: 12
      }),
      new cloudwatch.GraphWidget({
        title: "Throughput (records per minute)",
        left: [
          sum(emf("spillway_records_collected", "collector", "Sum"), "collected"),
          sum(emf("spillway_records_written", "processor", "Sum"), "written"),
          sum(emf("spillway_duplicates_skipped", "processor", "Sum"), "duplicates skipped"),
          props.stream.metricIncomingRecords({ statistic: "Sum", period: minute, label: "into the stream" })
        ],
        width: 12
      })
    )
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "Queue depths (messages)",
        left: [
          Alarms.queueDepth(props.fallbackQueue, "fallback"),
          Alarms.queueDepth(props.onFailureQueue, "on-failure"),
          ...Object.entries(props.deadLetterQueues).map(([name, queue]) => Alarms.queueDepth(queue, name))
        ],
        width: 12
      }),
      new cloudwatch.GraphWidget({
        title: "Lag",
        left: [Alarms.iteratorAgeOf(processor, "iterator age (ms)")],
        right: [
          props.fallbackQueue.metric("ApproximateAgeOfOldestMessage", {
            statistic: "Maximum",
            period: minute,
            label: "oldest fallback message (s)"
          })
        ],
        width: 12
      })
    )
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: "Alarms",
        alarms: Object.values(this.alarms),
        width: 24
      })
    )

    output(this, "AlarmTopicArn", this.topic.topicArn)
    output(this, "DashboardName", this.dashboard.dashboardName)
  }
}
