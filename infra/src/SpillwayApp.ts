/**
 * The CDK app: one `SpillwayStack` per stage, checked by cdk-nag's AWS Solutions rules as a
 * policy-validation plugin, so a finding nobody acknowledged (with a reason, next to the resource
 * it concerns) fails `cdk synth`, `cdk deploy` and the tests alike.
 */
import { type App, Validations } from "aws-cdk-lib"
import { AwsSolutionsChecks } from "cdk-nag"
import { SpillwayStack } from "./SpillwayStack.js"
import { stages as allStages, type StageConfig } from "./Stages.js"

export interface SpillwayAppOptions {
  /** @default every stage of `Stages.stages` */
  readonly stages?: ReadonlyArray<StageConfig>
  /** Where the function bundles are. @default each stage's `functions.codeDirectory` (`apps/lambdas/dist`) */
  readonly codeDirectory?: string
}

/** The stack name of a stage. */
export const stackName = (stage: StageConfig): string => `Spillway-${stage.name}`

export const addStages = (app: App, options: SpillwayAppOptions = {}): ReadonlyArray<SpillwayStack> => {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
  return (options.stages ?? allStages).map(
    (stage) =>
      new SpillwayStack(app, stackName(stage), {
        stage,
        ...(options.codeDirectory === undefined ? {} : { codeDirectory: options.codeDirectory })
      })
  )
}
