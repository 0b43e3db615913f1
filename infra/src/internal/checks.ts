/**
 * Prop checks that run in construct constructors, before any resource exists, so a bad setting
 * stops `cdk synth` at once with a message naming the construct, the setting, the value given and
 * the limit (CloudFormation would find some of these only at deploy time, and some never: an
 * infinite retry count is valid, just dangerous).
 */
import { type Duration, Token } from "aws-cdk-lib"
import type { IConstruct } from "constructs"

/** A prop that cannot be deployed, or that the pipeline's design forbids. */
export class InvalidProps extends Error {
  constructor(scope: IConstruct, setting: string, problem: string) {
    super(`${scope.node.path}: ${setting} ${problem}`)
    this.name = "InvalidProps"
  }
}

/** `value` must be a whole number in [min, max] (tokens are left to CloudFormation). */
export const integerIn = (
  scope: IConstruct,
  setting: string,
  value: number,
  min: number,
  max: number,
  why = ""
): number => {
  if (Token.isUnresolved(value)) return value
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidProps(
      scope,
      setting,
      `must be a whole number from ${min} to ${max}, got ${value}${why === "" ? "" : `: ${why}`}`
    )
  }
  return value
}

const describe = (duration: Duration): string => duration.toHumanString()

/** `value` must lie in [min, max] (both inclusive), compared in milliseconds. */
export const durationIn = (
  scope: IConstruct,
  setting: string,
  value: Duration,
  min: Duration,
  max: Duration,
  why = ""
): Duration => {
  if (value.isUnresolved()) return value
  const ms = value.toMilliseconds()
  if (ms < min.toMilliseconds() || ms > max.toMilliseconds()) {
    throw new InvalidProps(
      scope,
      setting,
      `must be from ${describe(min)} to ${describe(max)}, got ${describe(value)}${why === "" ? "" : `: ${why}`}`
    )
  }
  return value
}

/** Fails unless `condition` holds. */
export const ensure = (scope: IConstruct, setting: string, condition: boolean, problem: string): void => {
  if (!condition) throw new InvalidProps(scope, setting, problem)
}
