/**
 * The `spillway dev` command line: options, their checks, and the exit code (non-zero when an
 * accepted record did not reach the index or the backup archive).
 */
import { IndexLayout } from "@spillway/aws"
import { Duration, Effect, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as CollectorHttp from "../collector/http.js"
import * as EmulatorPipeline from "./EmulatorPipeline.js"
import * as LocalPipeline from "./LocalPipeline.js"

/** Options that are valid one by one but not together. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String
}) {}

const between = (min: number, max: number) => (n: number) => n >= min && n <= max

// The help shows no defaults by itself: each description ends with its default, `(default: …)`.

const port = Flag.Int("port").pipe(
  Flag.filter(between(0, 65_535), () => "--port must be 0–65535"),
  Flag.withDefault(3000),
  Flag.withDescription("Collector port on 127.0.0.1; 0 picks a free one (the URL is printed) (default: 3000)")
)

const apiKey = Flag.String("api-key").pipe(
  Flag.optional,
  Flag.withDescription(
    'Also accept this API key (tenant "local"), besides the printed demo key (default: none)'
  )
)

// A flag of its own, `--no-demo`, as before: not the negation of a `--demo` flag.
const noDemo = Flag.Boolean("no-demo").pipe(
  Flag.withoutNegation,
  Flag.withDefault(false),
  Flag.withDescription(
    "No demo traffic: the pipeline only gets what you post (default: off, demo traffic on)"
  )
)

const rate = Flag.Int("rate").pipe(
  Flag.filter(between(1, 1_000_000), () => "--rate must be a positive number of records per second"),
  Flag.optional,
  Flag.withDescription(
    `Demo records per second (default: ${LocalPipeline.defaultRate}; with --records, as fast as the collector accepts)`
  )
)

const records = Flag.Int("records").pipe(
  Flag.filter(between(1, Number.MAX_SAFE_INTEGER), () => "--records must be positive"),
  Flag.optional,
  Flag.withDescription(
    "Send this many demo records, wait until they are indexed, print a summary and exit (1 if any was lost or is missing from the backup) (default: none, run until Ctrl-C)"
  )
)

const shards = Flag.Int("shards").pipe(
  Flag.filter(between(1, 1024), () => "--shards must be 1–1,024"),
  Flag.optional,
  Flag.withDescription(
    "Shards of the stream, each taking 1,000 records/s (default: 4 in memory, 2 on the emulators)"
  )
)

const maxBodyBytes = Flag.Int("max-body-bytes").pipe(
  Flag.filter(between(1, 64 * 1024 * 1024), () => "--max-body-bytes must be 1 B–64 MiB"),
  Flag.withDefault(CollectorHttp.defaultMaxBodyBytes),
  Flag.withDescription(
    `Largest request body, raw and decompressed; larger ones get 413 (default: ${CollectorHttp.defaultMaxBodyBytes.toLocaleString("en-US")}, 1 MiB)`
  )
)

const drainTimeout = Flag.Int("drain-timeout").pipe(
  Flag.filter(between(0, 3600), () => "--drain-timeout must be 0–3600 seconds"),
  Flag.withDefault(30),
  Flag.withDescription(
    "Seconds Ctrl-C / SIGTERM waits for records in flight to be indexed; at the end of a --records run, seconds without a record indexed before it gives up (default: 30)"
  )
)

// An origin is scheme://host[:port], or scheme://host:* for any port, or * for every origin.
const originPattern = /^(\*|https?:\/\/[^/\s:]+(:(\d{1,5}|\*))?)$/
const allowOrigin = Flag.String("allow-origin").pipe(
  Flag.filter(
    (origin) => originPattern.test(origin),
    (origin) =>
      `--allow-origin must be an origin such as https://app.example.com, http://host:* or *, got ${origin}`
  ),
  Flag.atLeast(0),
  Flag.withDescription(
    "Also answer browsers from this origin (CORS; repeat for more; http://host:* for any port, * for all); localhost and 127.0.0.1 always are (default: none)"
  )
)

const backend = Flag.Literals("backend", ["memory", "emulators"]).pipe(
  Flag.withDefault("memory" as const),
  Flag.withDescription(
    "memory: every AWS service in memory, with a local read API under /local on the collector's port; emulators: the AWS layers against kinesalite and fauxqs, started in-process, indexing into a real OpenSearch node (started for the run unless --opensearch-url is given) (default: memory)"
  )
)

/**
 * The node's root URL, as `http://host:port`: dev sends plain, unsigned requests without
 * credentials, which a node with the security plugin (HTTPS, users) would refuse.
 */
export const parseOpenSearchUrl = (input: string): string => {
  // Thrown messages complete the command line's "Expected: …".
  const example = "such as http://127.0.0.1:9200"
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new Error(`an http:// URL ${example}`)
  }
  if (url.protocol !== "http:") {
    throw new Error(
      `a plain http:// URL ${example}: dev sends unsigned requests without credentials, which a node with the security plugin (https) refuses`
    )
  }
  if (
    url.username !== "" ||
    url.password !== "" ||
    url.search !== "" ||
    url.hash !== "" ||
    url.pathname !== "/"
  ) {
    throw new Error(`the node's root URL ${example}, without credentials, path or query`)
  }
  return url.origin
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error))

const opensearchUrl = Flag.String("opensearch-url").pipe(
  Flag.mapTryCatch(parseOpenSearchUrl, errorMessage),
  Flag.optional,
  Flag.withDescription(
    "With --backend emulators: index into this existing OpenSearch node (plain HTTP, unsigned, e.g. http://127.0.0.1:9200) instead of starting one for the run (default: start one)"
  )
)

const opensearchIndex = Flag.String("opensearch-index").pipe(
  Flag.mapTryCatch(
    (alias) => IndexLayout.make({ alias }).alias,
    (error) => `a valid index name (${errorMessage(error)})`
  ),
  Flag.optional,
  Flag.withDescription(
    `With --backend emulators: the alias documents are indexed behind, over daily indices <alias>-yyyy.MM.dd (default: ${EmulatorPipeline.defaultAlias})`
  )
)

export const devCommand = Command.make(
  "dev",
  {
    port,
    apiKey,
    noDemo,
    rate,
    records,
    shards,
    maxBodyBytes,
    drainTimeout,
    allowOrigin,
    backend,
    opensearchUrl,
    opensearchIndex
  },
  (options) =>
    Effect.gen(function* () {
      if (options.noDemo && Option.isSome(options.records)) {
        return yield* new UsageError({
          message: "--records counts demo records: it cannot go with --no-demo"
        })
      }
      if (options.backend !== "emulators") {
        const given = [
          ...(Option.isSome(options.opensearchUrl) ? ["--opensearch-url"] : []),
          ...(Option.isSome(options.opensearchIndex) ? ["--opensearch-index"] : [])
        ]
        if (given.length > 0) {
          return yield* new UsageError({
            message: `${given.join(" and ")} ${given.length === 1 ? "goes" : "go"} with --backend emulators only: the ${options.backend} backend keeps its index in memory`
          })
        }
      }
      yield* LocalPipeline.run({
        backend: options.backend,
        opensearch: {
          url: Option.getOrUndefined(options.opensearchUrl),
          alias: Option.getOrUndefined(options.opensearchIndex)
        },
        port: options.port,
        apiKey: Option.getOrUndefined(options.apiKey),
        demo: !options.noDemo,
        rate: Option.getOrUndefined(options.rate),
        records: Option.getOrUndefined(options.records),
        shards: Option.getOrUndefined(options.shards),
        maxBodyBytes: options.maxBodyBytes,
        drainTimeout: Duration.seconds(options.drainTimeout),
        allowedOrigins: [...CollectorHttp.localOrigins, ...options.allowOrigin],
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
    "Run the whole pipeline locally (in memory, or on emulators and a real OpenSearch), with the collector on HTTP, demo traffic and a live view"
  )
)
