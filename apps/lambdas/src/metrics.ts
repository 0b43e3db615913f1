/** Lambda entry (`index.handler`): the clickstream metrics function, on the clean stream's event source mapping. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsClickstream from "@spillway/aws/AwsClickstream"
import type { LambdaEvents } from "@spillway/core"
import * as ClickstreamMetrics from "./functions/ClickstreamMetrics.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<LambdaEvents.BatchResponse> = ClickstreamMetrics.make(
  AwsClickstream.metrics
)
