/** Lambda entry (`index.handler`): the failure reprocessor, on the on-failure queue's event source mapping. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsPipeline from "@spillway/aws/AwsPipeline"
import type { LambdaEvents } from "@spillway/core"
import * as FailureReprocessor from "./functions/FailureReprocessor.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = FailureReprocessor.make(
  AwsPipeline.failureReprocessor
)
