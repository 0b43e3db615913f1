/** Lambda entry (`index.handler`): the metrics forwarder, subscribed to the metrics function's log group. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsClickstream from "@spillway/aws/AwsClickstream"
import * as Forwarder from "./functions/Forwarder.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<Forwarder.Response> = Forwarder.make(AwsClickstream.forwarder)
