/**
 * How every Spillway alarm is made, so the telemetry pipeline's (`Observability`) and the
 * clickstream path's (`ClickstreamObservability`) read alike: named `spillway-<stage>-<key in
 * kebab case>`, raised at the threshold or above, to the stage's one alarm topic on alarm and
 * back to OK, and with no data read as no traffic (or no failure), not as a problem.
 */
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch"
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions"
import type * as sns from "aws-cdk-lib/aws-sns"
import type { Construct } from "constructs"

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

/** `failure-reprocessor` → `FailureReprocessor`. */
export const pascal = (kebabName: string): string =>
  kebabName
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("")

/** `FailureReprocessorErrors` → `failure-reprocessor-errors`. */
export const kebab = (pascalName: string): string =>
  pascalName.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase()
