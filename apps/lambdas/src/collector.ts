/** Lambda entry (`index.handler`): the collector behind API Gateway's HTTP API or a function URL. */
import { ApiKeyStore, AwsPipeline } from "@spillway/aws"
import type { LambdaEvents } from "@spillway/core"
import * as Collector from "./functions/Collector.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.HttpResponse> = Collector.make(
  AwsPipeline.collector(ApiKeyStore.layerConfig())
)
