/** Lambda entry (`index.handler`): the redriver, on the fallback queue's event source mapping. */
import { AwsPipeline } from "@spillway/aws"
import type { LambdaEvents } from "@spillway/core"
import * as Redriver from "./functions/Redriver.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = Redriver.make(AwsPipeline.redriver)
