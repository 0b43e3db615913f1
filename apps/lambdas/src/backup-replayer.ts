/** Lambda entry (`index.handler`): the backup replayer, invoked with a `{ from, to, checkpoint? }` window. */
// Modules by path, not the package's index: the index's namespaces would keep every AWS client in every bundle.
import * as AwsPipeline from "@spillway/aws/AwsPipeline"
import * as BackupReplayer from "./functions/BackupReplayer.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<BackupReplayer.Response> = BackupReplayer.make(
  AwsPipeline.backupReplayer
)
