/**
 * `MetricLog` on a Lambda function's stdout: each metric line written as one line, through the
 * same output as the function's JSON logs, so CloudWatch Logs stores it in the function's log
 * group — where EMF lines become CloudWatch metrics and the subscription filter hands every line
 * to the forwarder. Writing to stdout makes no network call and cannot fail.
 */
import { MetricLog } from "@spillway/core"
import { Effect, Layer } from "effect"
import * as JsonLog from "./JsonLog.js"

export const layer = (output: JsonLog.Output = JsonLog.stdout): Layer.Layer<MetricLog.MetricLog> =>
  Layer.succeed(MetricLog.MetricLog, {
    write: (lines) =>
      Effect.sync(() => {
        for (const line of lines) output(line)
      })
  })
