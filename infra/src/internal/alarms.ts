/**
 * How every Spillway alarm is made, so the telemetry pipeline's (`Observability`) and the
 * clickstream path's (`ClickstreamObservability`) read alike: named `spillway-<stage>-<key in
 * kebab case>`, raised at the threshold or above, to the stage's one alarm topic on alarm and
 * back to OK, and with no data read as no traffic (or no failure), not as a problem.
 */
import { Duration } from "aws-cdk-lib"
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch"
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions"
import type * as sns from "aws-cdk-lib/aws-sns"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import type { Construct, IConstruct } from "constructs"
import type { SpillwayFunction } from "../SpillwayFunction.js"
import { durationIn } from "./checks.js"

export interface AlarmOptions {
  /** Periods looked at. @default 1 */
  readonly evaluationPeriods?: number
  /** Periods of those that must breach. @default evaluationPeriods */
  readonly datapointsToAlarm?: number
}

/** Makes one alarm under `key` (its construct id, and its name once in kebab case). */
export type AddAlarm = (
  key: string,
  description: string,
  metric: cloudwatch.IMetric,
  threshold: number,
  options?: AlarmOptions
) => cloudwatch.Alarm

/** An `AddAlarm` that puts alarms under `scope`, notifying `topic`, and records each in `made`. */
export const alarmsTo = (
  scope: Construct,
  stageName: string,
  topic: sns.ITopic,
  made: Record<string, cloudwatch.Alarm>
): AddAlarm => {
  const notify = new actions.SnsAction(topic)
  return (key, description, metric, threshold, options = {}) => {
    const created = new cloudwatch.Alarm(scope, key, {
      alarmName: `spillway-${stageName}-${kebab(key)}`,
      alarmDescription: description,
      metric,
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      datapointsToAlarm: options.datapointsToAlarm ?? options.evaluationPeriods ?? 1,
      // No data means no traffic (or no failure), not a problem.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    })
    created.addAlarmAction(notify)
    created.addOkAction(notify)
    made[key] = created
    return created
  }
}

/** A threshold setting: its default, and the range it must lie in. */
export interface ThresholdSetting {
  readonly default: Duration
  readonly min: Duration
  readonly max: Duration
  /** Why the range is what it is, for the message when a value lies outside it. */
  readonly why?: string
}

/** A stream reader's iterator age threshold, as every construct with such an alarm takes it. */
export const iteratorAgeSetting: ThresholdSetting = {
  default: Duration.minutes(1),
  min: Duration.seconds(1),
  max: Duration.days(7)
}

/** Each setting's threshold, as `props` gives it or its default, checked against its range in turn. */
export const thresholds = <K extends string>(
  scope: IConstruct,
  props: { readonly [P in NoInfer<K>]?: Duration | undefined },
  settings: Readonly<Record<K, ThresholdSetting>>
): Record<K, Duration> => {
  const made = {} as Record<K, Duration>
  for (const key of Object.keys(settings) as Array<K>) {
    const setting = settings[key]
    made[key] = durationIn(scope, key, props[key] ?? setting.default, setting.min, setting.max, setting.why)
  }
  return made
}

const minute = Duration.minutes(1)
const fiveMinutes = Duration.minutes(5)

/** A metric a function writes in its EMF lines: under `namespace`, dimension `function`. */
export const emfMetric = (
  namespace: string,
  metricName: string,
  functionName: string,
  statistic: string,
  period: Duration = minute
): cloudwatch.Metric =>
  new cloudwatch.Metric({
    namespace,
    metricName,
    dimensionsMap: { function: functionName },
    statistic,
    period
  })

/** How far behind a function reads its stream: maximum IteratorAge per minute. */
export const iteratorAgeOf = (fn: SpillwayFunction, label?: string): cloudwatch.Metric =>
  fn.function.metric("IteratorAge", {
    statistic: "Maximum",
    period: minute,
    ...(label === undefined ? {} : { label })
  })

/** The messages a queue holds: maximum ApproximateNumberOfMessagesVisible per minute. */
export const queueDepth = (queue: sqs.IQueue, label?: string): cloudwatch.Metric =>
  queue.metric("ApproximateNumberOfMessagesVisible", {
    statistic: "Maximum",
    period: minute,
    ...(label === undefined ? {} : { label })
  })

/** The alarm on a function's iterator age: `threshold` or more, 3 of 5 minutes. */
export const iteratorAgeAlarm = (
  alarm: AddAlarm,
  key: string,
  description: string,
  fn: SpillwayFunction,
  threshold: Duration
): cloudwatch.Alarm =>
  alarm(key, description, iteratorAgeOf(fn), threshold.toMilliseconds(), {
    evaluationPeriods: 5,
    datapointsToAlarm: 3
  })

/** The alarm `<prefix><Function>Errors`: any failed invocation in 5 minutes. */
export const errorsAlarm = (
  alarm: AddAlarm,
  prefix: string,
  fn: SpillwayFunction,
  description = `The ${fn.bundle} function failed invocations (a crash, a timeout, or a configuration it refused at start: see its log group).`
): cloudwatch.Alarm =>
  alarm(
    `${prefix}${pascal(fn.bundle)}Errors`,
    description,
    fn.function.metricErrors({ statistic: "Sum", period: fiveMinutes }),
    1
  )

/** The alarm `<prefix><Function>Throttles`: any throttled invocation in 5 minutes. */
export const throttlesAlarm = (alarm: AddAlarm, prefix: string, fn: SpillwayFunction): cloudwatch.Alarm =>
  alarm(
    `${prefix}${pascal(fn.bundle)}Throttles`,
    `Invocations of the ${fn.bundle} function were throttled (account or reserved concurrency exhausted).`,
    fn.function.metricThrottles({ statistic: "Sum", period: fiveMinutes }),
    1
  )

/** `failure-reprocessor` → `FailureReprocessor`. */
export const pascal = (kebabName: string): string =>
  kebabName
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("")

/** `FailureReprocessorErrors` → `failure-reprocessor-errors`. */
export const kebab = (pascalName: string): string =>
  pascalName.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase()
