/** Lambda entry (`index.handler`): the failure reprocessor, on the on-failure queue's event source mapping. */
import { AwsPipeline } from "@spillway/aws"
import type { LambdaEvents } from "@spillway/core"
import * as FailureReprocessor from "./functions/FailureReprocessor.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = FailureReprocessor.make(
  AwsPipeline.failureReprocessor
)
