/**
 * The metrics function: the clean stream's Kinesis events through `Derive`, which turns clean
 * events into the dashboard's metrics and writes them as lines to the function's own stdout —
 * no network call in this function: the forwarder, subscribed to its log group, ships them.
 * It never reports a record failed (an undecodable record is counted and logged; a line cannot
 * fail to be written), so a shard never waits on this function for anything but its own work.
 *
 * Variables: `METRIC_FORMAT` (required: `emf` — CloudWatch builds the metrics from the lines,
 * and the forwarder reads them — or `datadog`, the Datadog Lambda line, which the Datadog
 * Forwarder reads too), `METRIC_PREFIX` (default `clickstream`), `CLICKSTREAM_EMF_NAMESPACE`
 * (default `Clickstream`; the function's own operational metrics use `METRICS_NAMESPACE`),
 * `METRIC_TAGS` (comma-separated `key:value` tags on every metric, default none).
 */
import * as ClientConfig from "@spillway/aws/ClientConfig"
import { type DedupCache, Derive, LambdaEvents, MetricLine, type MetricLog } from "@spillway/core"
import { Config, Context, Effect, Layer } from "effect"
import * as BatchResponse from "../runtime/BatchResponse.js"
import * as JsonLog from "../runtime/JsonLog.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"
import * as MetricLogStdout from "../runtime/MetricLogStdout.js"

export type Services = DedupCache.DedupCache

/** What `handle` needs: the cache, and the log it writes its lines to. */
export type HandleServices = Services | MetricLog.MetricLog

export class DeriveSettings extends Context.Service<DeriveSettings, Derive.DeriveOptions>()(
  "spillway/lambdas/DeriveSettings"
) {}

const tagPattern = /^[A-Za-z][A-Za-z0-9_.\-/]*:[^,\s]+$/

export const settingsConfig: Config.Config<Derive.DeriveOptions> = Config.all({
  format: Config.Literals(MetricLine.formats, "METRIC_FORMAT"),
  prefix: Config.String("METRIC_PREFIX").pipe(Config.withDefault("clickstream")),
  namespace: Config.String("CLICKSTREAM_EMF_NAMESPACE").pipe(Config.withDefault("Clickstream")),
  tags: Config.String("METRIC_TAGS").pipe(
    Config.withDefault(""),
    Config.mapEffect((text) => {
      const tags = text
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t.length > 0)
      const bad = tags.find((t) => !tagPattern.test(t))
      return bad === undefined
        ? Effect.succeed(tags)
        : Effect.fail(ClientConfig.invalid("METRIC_TAGS", `${JSON.stringify(bad)} is not a key:value tag`))
    })
  )
})

export const settingsLayer: Layer.Layer<DeriveSettings, Config.ConfigError> = Layer.effect(
  DeriveSettings,
  settingsConfig
)

export const handle = Effect.fn("ClickstreamMetrics.handle")(function* (
  event: LambdaEvents.KinesisEvent
): Effect.fn.Return<
  LambdaEvents.BatchResponse,
  BatchResponse.BatchNotSaved,
  HandleServices | DeriveSettings | BatchResponse.BatchSettings
> {
  const options = yield* DeriveSettings
  const { result } = yield* Derive.deriveKinesisEvent(event, options)
  for (const bad of result.undecodable.slice(0, 10)) {
    yield* Effect.logError(`clean record not readable, skipped: ${bad.reason}`).pipe(
      Effect.annotateLogs({ sequenceNumber: bad.sequenceNumber })
    )
  }
  yield* Effect.logInfo(
    `derived ${result.samples.length} metric points from ${result.events} events (${result.duplicates} already counted) into ${result.lines} lines`
  ).pipe(Effect.annotateLogs({ events: result.events, duplicates: result.duplicates, lines: result.lines }))
  return yield* BatchResponse.respond({ failed: [], unfinished: [] })
})

/** The metrics function's handler over `layer` (`AwsClickstream.metrics` deployed); the lines go to `options.output`. */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options: LambdaHandler.Options = {}
): LambdaHandler.Handler<LambdaEvents.BatchResponse> =>
  LambdaHandler.make(
    Layer.mergeAll(
      layer,
      MetricLogStdout.layer(options.output ?? JsonLog.stdout),
      BatchResponse.layerConfig,
      settingsLayer
    ),
    {
      name: "metrics",
      event: LambdaEvents.KinesisEvent,
      eventDescription: "a Kinesis event (Records of the clean clickstream's event source mapping)",
      handle: (event) => handle(event)
    },
    options
  )
