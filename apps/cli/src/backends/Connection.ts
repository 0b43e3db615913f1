/**
 * Where a recovery command works: `--backend memory | emulators | aws`, and for the last two the
 * settings the Lambda functions read from their environment (`README`, *Environment variables*),
 * each of which a flag can give instead.
 *
 * - `aws`: the variables as the functions read them (`STREAM_ARN`/`STREAM_NAME`,
 *   `FAILURE_QUEUE_URL`, `ARCHIVE_BUCKET`, `FIREHOSE_STREAM_NAME`, `OPENSEARCH_ENDPOINT`, …),
 *   credentials from the SDK's default chain (checked before anything else: none found is a
 *   refusal, exit 2), OpenSearch requests SigV4-signed.
 * - `emulators`: the same layers against local servers — the ones `spillway dev --backend
 *   emulators` runs (it prints their endpoints) or a test's: the emulators' fixed credentials,
 *   region `us-east-1`, unsigned OpenSearch, path-style S3, and dev's names as defaults (stream
 *   `spillway-dev`, on-failure queue `spillway-dev-on-failure`, bucket `spillway-backup`, delivery
 *   stream `spillway-dev-backup`, alias `spillway-dev`). The endpoints have no default.
 * - `memory`: a rehearsal in this process (`Rehearsal.ts`): nothing outside is touched.
 *
 * Flags win over variables; a variable left empty counts as unset, as in the functions. The
 * services are built from `@spillway/aws`'s own `layerConfig`s — the same code and variables as the
 * deployed functions — so a misconfiguration fails here as it would there, naming the variable
 * (and the flag that sets it).
 */
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs"
import {
  FirehoseArchive,
  KinesisClient,
  KinesisRecordStream,
  OpenSearchClient,
  OpenSearchSink,
  S3Client,
  SqsClient
} from "@spillway/aws"
import { Archive, DocumentSink, RecordStream } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { Config, ConfigProvider, Context, Effect, Layer, Option, type Scope } from "effect"
import { Flag } from "effect/cli"
import { Refused } from "../Refusal.js"

export type Backend = "memory" | "emulators" | "aws"

export const backends: ReadonlyArray<Backend> = ["memory", "emulators", "aws"]

export const backendFlag = Flag.Literals("backend", ["memory", "emulators", "aws"]).pipe(
  Flag.withDescription(
    "Where to work: aws — the deployment, from the same environment variables as the Lambda functions (or the flags below), credentials from the SDK's default chain; emulators — local servers such as those `spillway dev --backend emulators` runs, with their fixed credentials and dev's names; memory — a rehearsal on an in-memory pipeline seeded with the failure this command repairs, touching nothing (required: no default)"
  )
)

/** What a flag sets, by variable: the help and the refusals name both. */
const variableFlags: Readonly<Record<string, string>> = {
  AWS_REGION: "--region",
  AWS_ENDPOINT_URL: "--endpoint-url",
  AWS_ENDPOINT_URL_KINESIS: "--kinesis-endpoint",
  AWS_ENDPOINT_URL_SQS: "--sqs-endpoint",
  AWS_ENDPOINT_URL_S3: "--s3-endpoint",
  STREAM_ARN: "--stream",
  STREAM_NAME: "--stream",
  FAILURE_QUEUE_URL: "--failure-queue",
  ARCHIVE_BUCKET: "--archive-bucket",
  FIREHOSE_STREAM_NAME: "--firehose-stream",
  ARCHIVE_PREFIX: "--archive-prefix",
  ARCHIVE_COMPRESSION: "--archive-compression",
  OPENSEARCH_ENDPOINT: "--opensearch-endpoint",
  OPENSEARCH_INDEX: "--opensearch-index",
  SNAPSHOT_REPOSITORY: "--snapshot-repository"
}

/** A flag standing for a variable: its help names the variable, and what holds when both are unset. */
const optionalString = (
  name: string,
  variable: string,
  description: string,
  metavar: string,
  otherwise: { readonly unset?: string; readonly emulators?: string } = {}
) =>
  Flag.String(name).pipe(
    Flag.withMetavar(metavar),
    Flag.optional,
    Flag.withDescription(
      `${description} (default: $${variable}${otherwise.unset === undefined ? "" : `, else ${otherwise.unset}`}${
        otherwise.emulators === undefined ? "" : `; emulators: ${otherwise.emulators}`
      })`
    )
  )

/**
 * The connection flags, each standing for the variable named in its help, in the order a command's
 * help lists those it takes (`RecoveryCommand.flags`).
 */
export const flags = {
  snapshotRepository: optionalString(
    "snapshot-repository",
    "SNAPSHOT_REPOSITORY",
    "The snapshot repository",
    "name",
    { unset: "cs-automated, the service's hourly snapshots", emulators: "spillway-dev-snapshots" }
  ),
  region: optionalString("region", "AWS_REGION", "AWS region", "region", {
    unset: "$AWS_DEFAULT_REGION",
    emulators: "us-east-1"
  }),
  endpointUrl: optionalString(
    "endpoint-url",
    "AWS_ENDPOINT_URL",
    "Endpoint of every AWS client without its own",
    "url"
  ),
  kinesisEndpoint: optionalString(
    "kinesis-endpoint",
    "AWS_ENDPOINT_URL_KINESIS",
    "Kinesis endpoint (kinesalite with --backend emulators)",
    "url",
    { unset: "$AWS_ENDPOINT_URL" }
  ),
  sqsEndpoint: optionalString(
    "sqs-endpoint",
    "AWS_ENDPOINT_URL_SQS",
    "SQS endpoint (fauxqs with --backend emulators)",
    "url",
    { unset: "$AWS_ENDPOINT_URL" }
  ),
  s3Endpoint: optionalString(
    "s3-endpoint",
    "AWS_ENDPOINT_URL_S3",
    "S3 endpoint (fauxqs with --backend emulators)",
    "url",
    { unset: "$AWS_ENDPOINT_URL" }
  ),
  stream: optionalString("stream", "STREAM_ARN", "The Kinesis stream, by ARN or name", "arn|name", {
    unset: "$STREAM_NAME",
    emulators: "spillway-dev"
  }),
  failureQueue: optionalString(
    "failure-queue",
    "FAILURE_QUEUE_URL",
    "The on-failure queue (the processor mapping's destination), by URL or name",
    "url|name",
    { emulators: "spillway-dev-on-failure" }
  ),
  archiveBucket: optionalString(
    "archive-bucket",
    "ARCHIVE_BUCKET",
    "The S3 bucket Firehose backs the stream up into",
    "bucket",
    { emulators: "spillway-backup" }
  ),
  firehoseStream: optionalString(
    "firehose-stream",
    "FIREHOSE_STREAM_NAME",
    "The delivery stream's name, the first part of every archive object's name",
    "name",
    { emulators: "spillway-dev-backup" }
  ),
  archivePrefix: optionalString(
    "archive-prefix",
    "ARCHIVE_PREFIX",
    "The prefix before YYYY/MM/dd/HH/ in the archive",
    "prefix",
    { unset: "none" }
  ),
  archiveCompression: Flag.Literals("archive-compression", ["GZIP", "UNCOMPRESSED"]).pipe(
    Flag.optional,
    Flag.withDescription(
      "How the delivery stream writes objects (default: $ARCHIVE_COMPRESSION, else UNCOMPRESSED)"
    )
  ),
  opensearchEndpoint: optionalString(
    "opensearch-endpoint",
    "OPENSEARCH_ENDPOINT",
    "The OpenSearch domain's endpoint (an http:// node with --backend emulators)",
    "url"
  ),
  opensearchIndex: optionalString(
    "opensearch-index",
    "OPENSEARCH_INDEX",
    "The alias documents are written behind, over <alias>-* indices",
    "alias",
    { unset: "telemetry", emulators: "spillway-dev" }
  )
}

export interface FlagValues {
  readonly region?: Option.Option<string>
  readonly endpointUrl?: Option.Option<string>
  readonly kinesisEndpoint?: Option.Option<string>
  readonly sqsEndpoint?: Option.Option<string>
  readonly s3Endpoint?: Option.Option<string>
  readonly stream?: Option.Option<string>
  readonly failureQueue?: Option.Option<string>
  readonly archiveBucket?: Option.Option<string>
  readonly firehoseStream?: Option.Option<string>
  readonly archivePrefix?: Option.Option<string>
  readonly archiveCompression?: Option.Option<"GZIP" | "UNCOMPRESSED">
  readonly opensearchEndpoint?: Option.Option<string>
  readonly opensearchIndex?: Option.Option<string>
  readonly snapshotRepository?: Option.Option<string>
}

/** dev's names (`EmulatorPipeline`, `Emulators.start`), so a rehearsal against `spillway dev` needs only endpoints. */
export const emulatorDefaults: Readonly<Record<string, string>> = {
  AWS_REGION: Emulators.region,
  STREAM_NAME: "spillway-dev",
  FAILURE_QUEUE_URL: "spillway-dev-on-failure",
  ARCHIVE_BUCKET: "spillway-backup",
  FIREHOSE_STREAM_NAME: "spillway-dev-backup",
  OPENSEARCH_INDEX: "spillway-dev",
  OPENSEARCH_AUTH: "none",
  AWS_S3_FORCE_PATH_STYLE: "true",
  SNAPSHOT_REPOSITORY: "spillway-dev-snapshots"
}

/** A deployment (or emulators) to work on: the environment its services are read from. */
export interface Target {
  readonly backend: "emulators" | "aws"
  readonly command: string
  readonly env: Readonly<Record<string, string>>
}

const value = (option: Option.Option<string> | undefined): string | undefined =>
  option === undefined ? undefined : Option.getOrUndefined(option)

/**
 * The environment of a target: the process's, dev's names under it for emulators, the flags over
 * it. A stream given by flag replaces both stream variables, so an ARN set in the environment
 * cannot win over a name given on the command line.
 */
export const environment = (
  backend: "emulators" | "aws",
  given: FlagValues,
  base: Readonly<Record<string, string | undefined>> = process.env
): Record<string, string> => {
  const env: Record<string, string> = {}
  if (backend === "emulators") Object.assign(env, emulatorDefaults)
  for (const [key, v] of Object.entries(base)) if (v !== undefined && v !== "") env[key] = v
  const set = (variable: string, v: string | undefined) => {
    if (v !== undefined) env[variable] = v
  }
  set("AWS_REGION", value(given.region))
  set("AWS_ENDPOINT_URL", value(given.endpointUrl))
  set("AWS_ENDPOINT_URL_KINESIS", value(given.kinesisEndpoint))
  set("AWS_ENDPOINT_URL_SQS", value(given.sqsEndpoint))
  set("AWS_ENDPOINT_URL_S3", value(given.s3Endpoint))
  const stream = value(given.stream)
  if (stream !== undefined) {
    delete env.STREAM_ARN
    delete env.STREAM_NAME
    env[stream.startsWith("arn:") ? "STREAM_ARN" : "STREAM_NAME"] = stream
  }
  set("FAILURE_QUEUE_URL", value(given.failureQueue))
  set("ARCHIVE_BUCKET", value(given.archiveBucket))
  set("FIREHOSE_STREAM_NAME", value(given.firehoseStream))
  set("ARCHIVE_PREFIX", value(given.archivePrefix))
  set("ARCHIVE_COMPRESSION", value(given.archiveCompression))
  set("OPENSEARCH_ENDPOINT", value(given.opensearchEndpoint))
  set("OPENSEARCH_INDEX", value(given.opensearchIndex))
  set("SNAPSHOT_REPOSITORY", value(given.snapshotRepository))
  return env
}

export const target = (command: string, backend: "emulators" | "aws", given: FlagValues): Target => ({
  backend,
  command,
  env: environment(backend, given)
})

/**
 * `Config`'s wording (`SchemaError(Expected string at ["ARCHIVE_BUCKET"])`, `Missing data at
 * AWS_REGION: …`) as a sentence about the variable: `ARCHIVE_BUCKET is not set`.
 */
export const describeConfigError = (text: string): string => {
  const message = text
    .replace(/\s*\n\s*/g, " ")
    .trim()
    .replace(/^SchemaError\((.*)\)$/, "$1")
  const unset = /^(?:Expected string|Missing key|Expected a value) at \["([A-Z0-9_]+)"\]$/.exec(message)
  if (unset !== null) return `${unset[1]} is not set`
  const missing = /^Missing data at ([A-Z0-9_]+): (.*)$/.exec(message)
  if (missing !== null) return `${missing[1]} is not set: ${missing[2]}`
  const invalid = /^Invalid data at ([A-Z0-9_]+): (.*)$/.exec(message)
  if (invalid !== null) return `${invalid[1]} ${invalid[2]}`
  const check = /^(.*) at \["([A-Z0-9_]+)"\]$/.exec(message)
  if (check !== null) return `${check[2]} ${check[1]}`
  return message
}

/** A configuration problem, as one line naming the variable and the flag that sets it. */
export const configRefusal = (command: string, error: { readonly message: string }): Refused => {
  const message = describeConfigError(error.message)
  const variable = /^([A-Z0-9_]+)\b/.exec(message)?.[1]
  const flag = variable === undefined ? undefined : variableFlags[variable]
  return new Refused({ command, message: `${message}${flag === undefined ? "" : ` (${flag} sets it too)`}` })
}

/** Runs `effect` with the target's environment as its `ConfigProvider`. */
export const withConfig =
  (t: Target) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provide(effect, ConfigProvider.layer(ConfigProvider.fromEnv({ env: { ...t.env } })))

/** The emulators accept any credentials; giving them keeps the SDK from searching for real ones. */
const credentials = (t: Target) => (t.backend === "emulators" ? { credentials: Emulators.credentials } : {})

const openSearchOverrides = (t: Target) =>
  t.backend === "emulators" ? { auth: "none" as const } : { requestTimeoutMillis: 120_000 }

/** Builds `layer` in the current scope under the target's environment; config errors are refusals. */
const build = <I, S, E>(t: Target, layer: Layer.Layer<I, E>, tag: Context.Key<I, S>) =>
  Layer.build(layer).pipe(
    withConfig(t),
    Effect.map((context) => Context.get(context, tag)),
    Effect.mapError((error): Refused | Exclude<E, Config.ConfigError> =>
      error instanceof Config.ConfigError
        ? configRefusal(t.command, error)
        : (error as Exclude<E, Config.ConfigError>)
    )
  )

export const kinesisClient = (t: Target) =>
  build(t, KinesisClient.layerConfig(credentials(t)), KinesisClient.KinesisClient)
export const sqsClient = (t: Target) => build(t, SqsClient.layerConfig(credentials(t)), SqsClient.SqsClient)
export const s3Client = (t: Target) => build(t, S3Client.layerConfig(credentials(t)), S3Client.S3Client)
export const openSearchClient = (t: Target) =>
  build(t, OpenSearchClient.layerConfig(openSearchOverrides(t)), OpenSearchClient.OpenSearchClient)

/**
 * Credentials from the SDK's default chain, resolved now rather than at the first call: none found
 * is a refusal before anything is read or written. (The emulators take fixed ones.)
 */
export const checkCredentials = (t: Target): Effect.Effect<void, Refused, Scope.Scope> =>
  t.backend === "emulators"
    ? Effect.void
    : Effect.gen(function* () {
        const client = yield* kinesisClient(t)
        yield* Effect.tryPromise({
          try: () => client.config.credentials(),
          catch: (cause) => cause
        }).pipe(
          Effect.timeout("20 seconds"),
          Effect.mapError(
            (cause) =>
              new Refused({
                command: t.command,
                message: `no AWS credentials: ${
                  cause instanceof Error ? cause.message.split("\n")[0] : "the SDK found none in time"
                } (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them)`
              })
          )
        )
      })

/** The stream (`STREAM_ARN` or `STREAM_NAME`, resolved to its ARN with one call). */
export const stream = (
  t: Target
): Effect.Effect<RecordStream.Service, Refused | RecordStream.RecordStreamError, Scope.Scope> =>
  Effect.flatMap(kinesisClient(t), (client) =>
    build(
      t,
      KinesisRecordStream.layerConfig().pipe(
        Layer.provide(Layer.succeed(KinesisClient.KinesisClient, client))
      ),
      RecordStream.RecordStream
    )
  )

/** The OpenSearch sink over the alias's daily indices (`OPENSEARCH_ENDPOINT`, `OPENSEARCH_INDEX`, …). */
export const sink = (t: Target): Effect.Effect<DocumentSink.Service, Refused, Scope.Scope> =>
  Effect.flatMap(openSearchClient(t), (client) =>
    build(
      t,
      OpenSearchSink.layerConfig().pipe(
        Layer.provide(Layer.succeed(OpenSearchClient.OpenSearchClient, client))
      ),
      DocumentSink.DocumentSink
    )
  )

/** The backup archive (`ARCHIVE_BUCKET`, `FIREHOSE_STREAM_NAME`, `ARCHIVE_PREFIX`, `ARCHIVE_COMPRESSION`). */
export const archive = (t: Target): Effect.Effect<Archive.Service, Refused, Scope.Scope> =>
  Effect.flatMap(s3Client(t), (client) =>
    build(
      t,
      FirehoseArchive.layerConfig.pipe(Layer.provide(Layer.succeed(S3Client.S3Client, client))),
      Archive.Archive
    )
  )

/** The alias the sink writes behind, as the sink reads it (`OPENSEARCH_INDEX`, default `telemetry`). */
export const alias = (t: Target): Effect.Effect<string, Refused> =>
  Effect.gen(function* () {
    return yield* Config.String("OPENSEARCH_INDEX").pipe(Config.withDefault("telemetry"))
  }).pipe(
    withConfig(t),
    Effect.mapError((error) => configRefusal(t.command, error))
  )

/** The on-failure queue's URL: `FAILURE_QUEUE_URL` (or `--failure-queue`), a URL or a name to look up. */
export const failureQueueUrl = (
  t: Target,
  client: SqsClient.SqsClient["Service"]
): Effect.Effect<string, Refused> =>
  Effect.gen(function* () {
    const given = t.env.FAILURE_QUEUE_URL
    if (given === undefined) {
      return yield* configRefusal(t.command, {
        message: "Missing data at FAILURE_QUEUE_URL: set FAILURE_QUEUE_URL to the on-failure queue's URL"
      })
    }
    if (/^https?:\/\//.test(given)) return given
    if (!/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/.test(given)) {
      return yield* new Refused({
        command: t.command,
        message: `the on-failure queue "${given}" is neither a queue URL nor a queue name (FAILURE_QUEUE_URL, or --failure-queue)`
      })
    }
    return yield* Effect.tryPromise({
      try: () => client.send(new GetQueueUrlCommand({ QueueName: given })),
      catch: (cause) =>
        new Refused({
          command: t.command,
          message: `cannot find the on-failure queue ${given}: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    }).pipe(
      Effect.flatMap((answer) =>
        answer.QueueUrl === undefined
          ? Effect.fail(new Refused({ command: t.command, message: `no queue named ${given}` }))
          : Effect.succeed(answer.QueueUrl)
      )
    )
  })
