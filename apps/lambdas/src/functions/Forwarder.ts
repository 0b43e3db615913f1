/**
 * The forwarder function, subscribed to the metrics function's log group: each delivery
 * (`{"awslogs":{"data"}}`) through `Forward` — metric lines read, aggregated, sent to Datadog
 * within the v2 limits on `Schedules.metricsSubmit`, and what Datadog would not take written to
 * the spool — before it answers.
 *
 * It answers (Lambda acknowledges the asynchronous invocation) only once every point is
 * delivered or spooled. It fails — and Lambda delivers the event again, twice, then to the
 * function's on-failure destination — when the spool cannot be written, or when the deadline
 * comes before that: a point is never acknowledged unstored. Payloads and lines it cannot read
 * are counted (`spillway_forwarder_invalid_payloads`, `spillway_forwarder_malformed_lines`)
 * and logged with their reasons, and never stop the rest.
 *
 * Variables: `FORWARD_EMF_NAMESPACES` (comma-separated EMF namespaces to forward, `*` for every
 * one; default `Clickstream`, the metrics function's, so its own operational EMF lines —
 * namespace `Spillway` — stay in CloudWatch and are counted as skipped), the Datadog sink's (`DD_SITE`, `DD_METRICS_URL`, `DD_API_KEY_SECRET_ID`,
 * `DD_TIMEOUT_MS`) and the spool's (`SPOOL_BUCKET`, `SPOOL_PREFIX`).
 */
import { CloudWatchLogs, type DedupCache, Forward, type MetricSpool, type MetricsSink } from "@spillway/core"
import { Config, Context, Data, Effect, Layer, Option } from "effect"
import type * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = MetricsSink.MetricsSink | MetricSpool.MetricSpool | DedupCache.DedupCache

export class ForwardSettings extends Context.Service<ForwardSettings, Forward.ForwardOptions>()(
  "spillway/lambdas/ForwardSettings"
) {}

export const settingsLayer: Layer.Layer<ForwardSettings, Config.ConfigError> = Layer.effect(
  ForwardSettings,
  Config.all({
    namespaces: Config.String("FORWARD_EMF_NAMESPACES").pipe(
      Config.withDefault("Clickstream"),
      Config.map((text) =>
        text.trim() === "*"
          ? undefined
          : new Set(
              text
                .split(",")
                .map((n) => n.trim())
                .filter((n) => n.length > 0)
            )
      )
    )
  })
)

/** The deadline came before every point was delivered or spooled: Lambda delivers the event again. */
export class ForwardCutOff extends Data.TaggedError("ForwardCutOff")<{ readonly message: string }> {}

export type Response = Omit<Forward.ForwardResult, "spoolKeys"> & { readonly spoolKeys: number }

export const handle = Effect.fn("Forwarder.handle")(function* (
  event: CloudWatchLogs.SubscriptionEvent,
  deadline: Deadline.Deadline
) {
  const options = yield* ForwardSettings
  const outcome = yield* deadline.bounded(Forward.forwardSubscriptionEvent(event, options))
  if (Option.isNone(outcome)) {
    return yield* new ForwardCutOff({
      message:
        "the deadline came before every point was delivered or spooled; failing so that Lambda delivers the event again"
    })
  }
  const result = outcome.value
  for (const invalid of result.invalidPayloads)
    yield* Effect.logError(`payload not readable: ${invalid.reason}`)
  for (const bad of result.malformed) {
    yield* Effect.logError(`metric line not readable: ${bad.reason}`).pipe(
      Effect.annotateLogs(bad.logEventId === undefined ? {} : { logEventId: bad.logEventId })
    )
  }
  for (const warning of result.warnings)
    yield* Effect.logWarning(`the intake accepted with a warning: ${warning}`)
  if (result.spooled > 0 || result.parked > 0) {
    yield* Effect.logWarning(
      `${result.spooled} points spooled for the retrier, ${result.parked} parked (never retried): ${result.spoolKeys.join(", ")}`
    )
  }
  const { spoolKeys, ...rest } = result
  yield* Effect.logInfo(
    `forwarded ${result.delivered} of ${result.points} points from ${result.metricLines} metric lines (${result.malformedLines} malformed, ${result.invalidPayloads.length} payloads unreadable)`
  ).pipe(
    Effect.annotateLogs({
      ...rest,
      malformed: result.malformedLines,
      invalidPayloads: result.invalidPayloads.length
    })
  )
  return { ...rest, spoolKeys: spoolKeys.length } satisfies Response
})

/** The forwarder's handler over `layer` (`AwsClickstream.forwarder` deployed). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<Response> =>
  LambdaHandler.make(
    Layer.merge(layer, settingsLayer),
    {
      name: "forwarder",
      event: CloudWatchLogs.SubscriptionEvent,
      eventDescription: 'a CloudWatch Logs subscription event ({"awslogs":{"data":"<base64 of gzip>"}})',
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
