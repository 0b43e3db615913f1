/**
 * The `spillway dev` command line: options, their checks, and the exit code (non-zero when an
 * accepted record did not reach the index or the backup archive).
 */
import { Command, Options } from "@effect/cli"
import { Duration, Effect, Option, Schema } from "effect"
import * as CollectorHttp from "../collector/http.js"
import * as LocalPipeline from "./LocalPipeline.js"

/** Options that are valid one by one but not together. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String
}) {}

const between = (min: number, max: number) => (n: number) =>
  n >= min && n <= max ? Option.some(n) : Option.none()

const port = Options.integer("port").pipe(
  Options.filterMap(between(0, 65_535), "--port must be 0–65535"),
  Options.withDefault(3000),
  Options.withDescription("Collector port on 127.0.0.1; 0 picks a free one (the URL is printed)")
)

const apiKey = Options.text("api-key").pipe(
  Options.optional,
  Options.withDescription('Also accept this API key (tenant "local"), besides the printed demo key')
)

const noDemo = Options.boolean("no-demo").pipe(
  Options.withDescription("No demo traffic: the pipeline only gets what you post")
)

const rate = Options.integer("rate").pipe(
  Options.filterMap(between(1, 1_000_000), "--rate must be a positive number of records per second"),
  Options.optional,
  Options.withDescription(
    `Demo records per second (default ${LocalPipeline.defaultRate}; with --records, as fast as the collector accepts)`
  )
)

const records = Options.integer("records").pipe(
  Options.filterMap(between(1, Number.MAX_SAFE_INTEGER), "--records must be positive"),
  Options.optional,
  Options.withDescription(
    "Send this many demo records, wait until they are indexed, print a summary and exit (1 if any was lost or is missing from the backup)"
  )
)

const maxBodyBytes = Options.integer("max-body-bytes").pipe(
  Options.filterMap(between(1, 64 * 1024 * 1024), "--max-body-bytes must be 1 B–64 MiB"),
  Options.withDefault(CollectorHttp.defaultMaxBodyBytes),
  Options.withDescription("Largest request body, raw and decompressed; larger ones get 413")
)

const drainTimeout = Options.integer("drain-timeout").pipe(
  Options.filterMap(between(0, 3600), "--drain-timeout must be 0–3600 seconds"),
  Options.withDefault(30),
  Options.withDescription("Seconds to wait, when stopping, for records in flight to be indexed")
)

const backend = Options.choice("backend", ["memory", "emulators"]).pipe(
  Options.withDefault("memory" as const),
  Options.withDescription(
    "memory: every AWS service in memory; emulators: the AWS layers against kinesalite and fauxqs, started in-process"
  )
)

export const devCommand = Command.make(
  "dev",
  { port, apiKey, noDemo, rate, records, maxBodyBytes, drainTimeout, backend },
  (options) =>
    Effect.gen(function* () {
      if (options.noDemo && Option.isSome(options.records)) {
        return yield* new UsageError({
          message: "--records counts demo records: it cannot go with --no-demo"
        })
      }
      yield* LocalPipeline.run({
        backend: options.backend,
        port: options.port,
        apiKey: Option.getOrUndefined(options.apiKey),
        demo: !options.noDemo,
        rate: Option.getOrUndefined(options.rate),
        records: Option.getOrUndefined(options.records),
        maxBodyBytes: options.maxBodyBytes,
        drainTimeout: Duration.seconds(options.drainTimeout),
        tty: process.stdout.isTTY === true,
        // Set here rather than returned: an interrupted run (Ctrl-C, SIGTERM) returns nothing.
        onSummary: (summary) =>
          Effect.sync(() => {
            process.exitCode = summary.lost > 0 || summary.missingFromBackup !== 0 ? 1 : 0
          })
      })
    })
).pipe(
  Command.withDescription(
    "Run the whole pipeline locally in memory, with the collector on HTTP and demo traffic, and a live view"
  )
)
