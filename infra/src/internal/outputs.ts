/**
 * Stack outputs under fixed names (`CollectorUrl`, not `IngestionCollectorUrl1A2B3C4D`), so the
 * runbook's `aws cloudformation describe-stacks … OutputKey=='CollectorUrl'` works on every stage.
 */
import { CfnOutput } from "aws-cdk-lib"
import type { Construct } from "constructs"

export const output = (scope: Construct, name: string, value: string, description?: string): CfnOutput => {
  const created = new CfnOutput(scope, name, { value, ...(description === undefined ? {} : { description }) })
  created.overrideLogicalId(name)
  return created
}
