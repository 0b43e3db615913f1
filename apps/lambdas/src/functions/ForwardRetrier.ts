/**
 * The forward retrier function, invoked by an EventBridge schedule (`rate(1 minute)`,
 * `Schedules.spoolRetryInterval`): sends what the spool holds, oldest first, through the
 * forwarder's own mechanism (`RetrySpool.retrySpool`) while the deadline allows, until it lands.
 * It reports the age of the oldest points still waiting (`spillway_metric_spool_oldest_age_seconds`,
 * the alarm's metric) and the entries it cannot read. It fails only when the spool itself cannot
 * be read or written; nothing is lost then, and the next run tries again.
 *
 * Variables: the Datadog sink's and the spool's (as the forwarder), `RETRY_MAX_ENTRIES`
 * (entries per run, default 100).
 */
import { type MetricSpool, type MetricsSink, RetrySpool } from "@spillway/core"
import { Config, Context, Effect, Layer, Schema } from "effect"
import type * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = MetricsSink.MetricsSink | MetricSpool.MetricSpool

/** The event an EventBridge schedule sends. */
export const ScheduledEvent = Schema.Struct({
  "detail-type": Schema.String,
  source: Schema.String,
  time: Schema.String
})
export type ScheduledEvent = typeof ScheduledEvent.Type

export class RetrySettings extends Context.Service<RetrySettings, { readonly maxEntries: number }>()(
  "spillway/lambdas/RetrySettings"
) {}

export const settingsLayer: Layer.Layer<RetrySettings, Config.ConfigError> = Layer.effect(
  RetrySettings,
  Config.all({
    maxEntries: Config.schema(
      Schema.Int.check(
        Schema.isBetween({ minimum: 1, maximum: 1000 }, { message: "must be a whole number, 1–1000" })
      ),
      "RETRY_MAX_ENTRIES"
    ).pipe(Config.withDefault(100))
  })
)

export const handle = Effect.fn("ForwardRetrier.handle")(function* (deadline: Deadline.Deadline) {
  const { maxEntries } = yield* RetrySettings
  const result = yield* RetrySpool.retrySpool({ maxEntries, continueWhile: deadline.hasTimeToStart })
  for (const bad of result.unreadable) {
    yield* Effect.logError(`spool entry not readable, left in place: ${bad.reason}`).pipe(
      Effect.annotateLogs({ key: bad.key })
    )
  }
  const summary = `retried ${result.listed} spooled entries: ${result.delivered} delivered (${result.deliveredPoints} points), ${result.requeued} in part, ${result.parkedPoints} points parked${result.stopped === undefined ? "" : `; stopped: ${result.stopped}`}`
  yield* (
    result.stopped === undefined || result.stopped === "deadline"
      ? Effect.logInfo(summary)
      : Effect.logWarning(summary)
  ).pipe(Effect.annotateLogs({ oldestPendingAgeSeconds: result.oldestPendingAgeSeconds ?? 0 }))
  return result
})

/** The retrier's handler over `layer` (`AwsClickstream.forwardRetrier` deployed). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<RetrySpool.RetryResult> =>
  LambdaHandler.make(
    Layer.merge(layer, settingsLayer),
    {
      name: "forward-retrier",
      event: ScheduledEvent,
      eventDescription: "an EventBridge scheduled event",
      handle: (_event, { deadline }) => handle(deadline)
    },
    options
  )
