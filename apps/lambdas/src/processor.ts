/** Lambda entry (`index.handler`): the processor, on the stream's event source mapping. */
import { AwsPipeline } from "@spillway/aws"
import type { LambdaEvents } from "@spillway/core"
import * as Processor from "./functions/Processor.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = Processor.make(
  AwsPipeline.processor
)
