/** Lambda entry (`index.handler`): the processor, writing to OpenSearch and to S3 as JSON lines. */
import type { LambdaEvents } from "@spillway/core"
import { type LambdaHandler, Processor } from "@spillway/lambdas"
import * as Pipeline from "./Pipeline.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = Processor.make(Pipeline.processor, {
  name: "custom-sink-processor"
})
