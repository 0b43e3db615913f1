/**
 * cdk-nag acknowledgements, in CDK's own form for a validation plugin's rule
 * (`<plugin>::<rule>[<finding>]`): cdk-nag still reports the finding, and CDK moves it to the
 * validation report's `suppressedViolations` with the reason and where it was acknowledged, so the
 * report is the audit trail and an acknowledgement that no longer matches anything shows up
 * unused (infra/test/checks.test.ts).
 */
import { Validations } from "aws-cdk-lib"
import type { IConstruct } from "constructs"

/** Acknowledges one AWS Solutions finding on `scope` and everything under it, with why it stands. */
export const acknowledge = (scope: IConstruct, rule: string, reason: string): void => {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason })
}
