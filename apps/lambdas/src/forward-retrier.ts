/** Lambda entry (`index.handler`): the forward retrier, on an EventBridge schedule. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsClickstream from "@spillway/aws/AwsClickstream"
import type { RetrySpool } from "@spillway/core"
import * as ForwardRetrier from "./functions/ForwardRetrier.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<RetrySpool.RetryResult> = ForwardRetrier.make(
  AwsClickstream.forwardRetrier
)
