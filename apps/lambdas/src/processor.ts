/** Lambda entry (`index.handler`): the processor, on the stream's event source mapping. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsPipeline from "@spillway/aws/AwsPipeline"
import type { LambdaEvents } from "@spillway/core"
import * as Processor from "./functions/Processor.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = Processor.make(
  AwsPipeline.processor
)
