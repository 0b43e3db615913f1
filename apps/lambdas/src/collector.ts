/** Lambda entry (`index.handler`): the collector behind API Gateway's HTTP API or a function URL. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as ApiKeyStore from "@spillway/aws/ApiKeyStore"
import * as AwsPipeline from "@spillway/aws/AwsPipeline"
import type { LambdaEvents } from "@spillway/core"
import * as Collector from "./functions/Collector.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.HttpResponse> = Collector.make(
  AwsPipeline.collector(ApiKeyStore.layerConfig())
)
