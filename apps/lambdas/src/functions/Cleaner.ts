/**
 * The cleaner function: the raw clickstream's Kinesis events through `Clean` (normalize, drop the
 * invalid and the unwanted, remove PII) into the clean stream, partitioned by session; the raw
 * records whose events could not be put are reported, lowest first, so the mapping sends them
 * again (the metrics stage skips events it already counted).
 *
 * The batch is cleaned as a whole — a session's events of the batch become one clean record —
 * while the deadline allows: a batch cut off at the deadline is reported unfinished whole.
 *
 * Variables: `STREAM_ARN` or `STREAM_NAME` (the clean stream), `CLEAN_EVENT_TYPES` (comma
 * separated normalized types, `*` for all; default `page_view,product_view,search,add_to_cart,
 * remove_from_cart,checkout,purchase`), `CLEAN_BOT_USER_AGENTS` (a case-insensitive regular
 * expression; default `Clean.defaultBotUserAgents`), `CLEAN_MAX_EVENT_AGE_SECONDS` (1800),
 * `CLEAN_MAX_CLOCK_SKEW_SECONDS` (300), `CLEAN_PII_FIELDS` (default
 * `client.ip,attributes.email,attributes.phone`; empty for none), `REPORT_BATCH_ITEM_FAILURES`.
 */
import * as ClientConfig from "@spillway/aws/ClientConfig"
import { Clean, Clickstream, LambdaEvents, type RecordStream } from "@spillway/core"
import { Config, Context, Effect, Layer, Option, Result, Schema } from "effect"
import * as BatchResponse from "../runtime/BatchResponse.js"
import type * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = RecordStream.RecordStream

export class CleanSettings extends Context.Service<CleanSettings, Clean.CleanConfig>()(
  "spillway/lambdas/CleanSettings"
) {}

const Seconds = Schema.Int.check(
  Schema.isBetween(
    { minimum: 1, maximum: 31_536_000 },
    { message: "must be a whole number of seconds, at least 1" }
  )
)

export const settingsConfig: Config.Config<Clean.CleanConfig> = Config.all({
  eventTypes: Config.String("CLEAN_EVENT_TYPES").pipe(
    Config.withDefault(Clean.defaultEventTypes.join(",")),
    Config.map((text): Clean.CleanConfig["eventTypes"] =>
      text.trim() === "*"
        ? "all"
        : new Set(
            text
              .split(",")
              .map((t) => Clickstream.normalizeEventType(t))
              .filter((t) => t.length > 0)
          )
    )
  ),
  botUserAgents: Config.option(Config.String("CLEAN_BOT_USER_AGENTS")).pipe(
    Config.mapEffect(
      Option.match({
        onNone: () => Effect.succeed(Clean.defaultBotUserAgents),
        onSome: (source) =>
          Effect.try({
            try: () => new RegExp(source, "i"),
            catch: (error) =>
              ClientConfig.invalid("CLEAN_BOT_USER_AGENTS", `is not a regular expression: ${String(error)}`)
          })
      })
    )
  ),
  maxEventAgeMillis: Config.schema(Seconds, "CLEAN_MAX_EVENT_AGE_SECONDS").pipe(
    Config.withDefault(1800),
    Config.map((s) => s * 1000)
  ),
  maxClockSkewMillis: Config.schema(Seconds, "CLEAN_MAX_CLOCK_SKEW_SECONDS").pipe(
    Config.withDefault(300),
    Config.map((s) => s * 1000)
  ),
  piiFields: Config.String("CLEAN_PII_FIELDS").pipe(
    Config.withDefault("client.ip,attributes.email,attributes.phone"),
    Config.mapEffect((text) =>
      Result.match(Clickstream.parseFieldPaths(text), {
        onSuccess: Effect.succeed,
        onFailure: (problem) => Effect.fail(ClientConfig.invalid("CLEAN_PII_FIELDS", problem))
      })
    )
  )
})

export const settingsLayer: Layer.Layer<CleanSettings, Config.ConfigError> = Layer.effect(
  CleanSettings,
  settingsConfig
)

export const handle = Effect.fn("Cleaner.handle")(function* (
  event: LambdaEvents.KinesisEvent,
  deadline: Deadline.Deadline
) {
  const config = yield* CleanSettings
  const outcome = yield* deadline.bounded(Clean.cleanKinesisEvent(event, config))
  if (Option.isNone(outcome)) {
    const unfinished = event.Records.map((r) => r.kinesis.sequenceNumber)
    yield* BatchResponse.noteUnfinished("records", unfinished.length, deadline)
    return yield* BatchResponse.respond({ failed: [], unfinished, order: "sequence" })
  }
  const { result } = outcome.value
  for (const invalid of result.invalid) {
    yield* Effect.logWarning(`event dropped as invalid: ${invalid.reason}`).pipe(
      Effect.annotateLogs({ sequenceNumber: invalid.sequenceNumber })
    )
  }
  for (const failure of result.failed.slice(0, 10)) {
    yield* Effect.logWarning(`record not put into the clean stream: ${failure.reason}`).pipe(
      Effect.annotateLogs({ sequenceNumber: failure.sequenceNumber })
    )
  }
  yield* Effect.logInfo(
    `cleaned ${result.events} events of ${result.records} records: ${result.kept} kept, dropped ${result.dropped.invalid} invalid, ${result.dropped.unwantedType} unwanted, ${result.dropped.bot} bots, ${result.dropped.tooOld} too old; ${result.failed.length} records not put`
  ).pipe(
    Effect.annotateLogs({
      ...result.dropped,
      events: result.events,
      kept: result.kept,
      put: result.put,
      failed: result.failed.length
    })
  )
  return yield* BatchResponse.respond({
    failed: result.failed.map((f) => f.sequenceNumber),
    unfinished: [],
    order: "sequence"
  })
})

/** The cleaner's handler over `layer` (`AwsClickstream.cleaner` deployed, a memory pipeline's in tests). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<LambdaEvents.BatchResponse> =>
  LambdaHandler.make(
    Layer.mergeAll(layer, BatchResponse.layerConfig, settingsLayer),
    {
      name: "cleaner",
      event: LambdaEvents.KinesisEvent,
      eventDescription: "a Kinesis event (Records of the raw clickstream's event source mapping)",
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
