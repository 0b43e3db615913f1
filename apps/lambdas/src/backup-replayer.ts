/** Lambda entry (`index.handler`): the backup replayer, invoked with a `{ from, to, checkpoint? }` window. */
import { AwsPipeline } from "@spillway/aws"
import * as BackupReplayer from "./functions/BackupReplayer.js"
import type * as LambdaHandler from "./runtime/LambdaHandler.js"

export const handler: LambdaHandler.Handler<BackupReplayer.Response> = BackupReplayer.make(
  AwsPipeline.backupReplayer
)
