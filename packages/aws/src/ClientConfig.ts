/**
 * What every AWS SDK client in Spillway is built from: region, endpoint, credentials, HTTP timeouts
 * and the retry policy, read through Effect `Config` so that a missing or malformed variable stops
 * the function at start with the variable's name instead of failing on the first request.
 *
 * Retries — how the SDK's loop and `Schedules` combine. The SDK retries only *connection-level*
 * faults: no HTTP response at all (socket reset on a stale keep-alive connection, refused connect,
 * DNS hiccup, request timeout), at most `maxAttempts` attempts in all with a short jittered backoff.
 * Anything the service answered — throttling (`ProvisionedThroughputExceededException`,
 * `RequestThrottled`, 429), 5xx, and per-entry failures inside a 200 — is returned at once as a typed
 * error or outcome, so that the stage schedules in `@spillway/core` (`Schedules.ts`) own every
 * service-level retry and their time bounds hold: the SDK never sleeps seconds of throttling
 * backoff behind a stage's back. A connection-level retry can repeat a request the service did
 * receive; Spillway is at-least-once end to end and deduplicates downstream, so that is safe.
 *
 * Configuration errors name the variable: a failed `Schema` check reads `<message> at ["X"]`
 * (Effect's wording), and the errors this package builds itself (`invalid`, `missing`) read
 * `Invalid data at X: ...` / `Missing data at X: ...`.
 *
 * Endpoints: `AWS_ENDPOINT_URL_<SERVICE>` then `AWS_ENDPOINT_URL` (skipped when
 * `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), the precedence the SDK itself applies, are read here
 * so that they are validated at start and can come from any `ConfigProvider`. When none is set
 * the SDK's own resolution still runs (shared config file `endpoint_url`, then the AWS endpoint).
 */
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Config, Effect, Option, Result, Schema, SchemaIssue } from "effect"

export interface Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
  readonly expiration?: Date
}

export type CredentialsProvider = () => Promise<Credentials>

export interface ClientOptions {
  readonly region: string
  /** Overrides endpoint resolution (emulators, VPC endpoints). @default the SDK's resolution */
  readonly endpoint?: string
  /** @default the SDK's default provider chain (env, SSO, web identity, ECS/Lambda, IMDS) */
  readonly credentials?: Credentials | CredentialsProvider
  /** Time allowed to open a connection. @default 3000 */
  readonly connectionTimeoutMillis?: number
  /**
   * Time allowed without activity on an open request. Must exceed any long poll
   * (SQS `WaitTimeSeconds` up to 20 s). @default 25000
   */
  readonly requestTimeoutMillis?: number
  /** Attempts in all for connection-level faults (1 = never retry). @default 3 */
  readonly maxAttempts?: number
}

/** The SDK service ids Spillway uses, as they appear in `AWS_ENDPOINT_URL_<SERVICE>`. */
export type ServiceId = "KINESIS" | "SQS" | "S3" | "FIREHOSE" | "SECRETS_MANAGER" | "SSM"

/**
 * A configuration error for `Config.mapEffect`, worded `Invalid data at <variable>: <message>`.
 * (A failed `Schema` check inside `Config.schema(schema, "X")` is named by Effect itself: its
 * message is followed by `at ["X"]`.)
 */
export const invalid = (variable: string, message: string): Config.ConfigError =>
  new Config.ConfigError(
    new Schema.SchemaError(
      new SchemaIssue.InvalidValue({ message: `Invalid data at ${variable}: ${message}` })
    )
  )

/** A required variable that is absent, worded `Missing data at <variable>: <message>`. */
export const missing = (variable: string, message: string): Config.ConfigError =>
  new Config.ConfigError(
    new Schema.SchemaError(
      new SchemaIssue.MissingKey({ messageMissingKey: `Missing data at ${variable}: ${message}` })
    )
  )

const isHttpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

const HttpUrl = Schema.String.check(
  Schema.makeFilter(isHttpUrl, { message: "must be an http:// or https:// URL" })
)

/** An `http(s)://` URL; anything else fails naming the variable. */
export const httpUrl = (name: string): Config.Config<string> => Config.schema(HttpUrl, name)

const Region = Schema.String.check(
  Schema.isPattern(/^[a-z]{2}(-[a-z]+)+-\d+$/, { message: "must be an AWS region such as us-east-1" })
)

/**
 * `AWS_REGION` (set by Lambda), else `AWS_DEFAULT_REGION`; a malformed value fails naming its
 * variable, and neither being set fails naming both.
 */
export const region: Config.Config<string> = Config.option(Config.schema(Region, "AWS_REGION")).pipe(
  Config.flatMap(
    Option.match({
      onSome: (value) => Config.succeed(value),
      onNone: () =>
        Config.option(Config.schema(Region, "AWS_DEFAULT_REGION")).pipe(
          Config.mapEffect(
            Option.match({
              onSome: Effect.succeed,
              onNone: () => Effect.fail(missing("AWS_REGION", "set AWS_REGION (or AWS_DEFAULT_REGION)"))
            })
          )
        )
    })
  )
)

const ignoreConfiguredEndpoints: Config.Config<boolean> = Config.Boolean(
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
).pipe(Config.withDefault(false))

/** The endpoint configured for `service`, if any, with the SDK's precedence. */
export const endpoint = (service: ServiceId): Config.Config<Option.Option<string>> =>
  Config.all([
    ignoreConfiguredEndpoints,
    Config.option(httpUrl(`AWS_ENDPOINT_URL_${service}`)),
    Config.option(httpUrl("AWS_ENDPOINT_URL"))
  ]).pipe(
    Config.map(([ignore, specific, global]) =>
      ignore ? Option.none() : Option.orElse(specific, () => global)
    )
  )

/** Region and endpoint for one service's client. */
export const clientOptions = (service: ServiceId): Config.Config<ClientOptions> =>
  Config.all([region, endpoint(service)]).pipe(
    Config.map(([region, endpoint]) =>
      Option.match(endpoint, {
        onNone: (): ClientOptions => ({ region }),
        onSome: (url): ClientOptions => ({ region, endpoint: url })
      })
    )
  )

export interface Arn {
  readonly partition: string
  readonly region: string
  readonly account: string
  readonly resource: string
}

/**
 * Parses `arn:<partition>:<service>:<region>:<account>:<resource>`; the failure is a message for
 * `invalid` (or any other error) to carry.
 */
export const parseArn = (service: string, text: string): Result.Result<Arn, string> => {
  const match = /^arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}):(.+)$/.exec(text)
  if (match === null || match[2] !== service) {
    return Result.fail(`must be an ARN of the form arn:aws:${service}:<region>:<account>:...`)
  }
  return Result.succeed({ partition: match[1]!, region: match[3]!, account: match[4]!, resource: match[5]! })
}

/** The ARN partition of a region. */
export const partitionOf = (region: string): string =>
  region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws"

interface RetryToken {
  getRetryCount(): number
  getRetryDelay(): number
}

const token = (count: number, delay: number): RetryToken => ({
  getRetryCount: () => count,
  getRetryDelay: () => delay
})

const retryBaseMillis = 50
const retryCapMillis = 1000

/**
 * The SDK retry strategy described in the module header: retries a failure only when no HTTP
 * response arrived, up to `maxAttempts` attempts, with full-jitter exponential backoff
 * (≤ 50, 100, 200 ... ms, capped at 1 s). Rejecting the retry makes the SDK throw the error as is.
 */
export const connectionRetryStrategy = (maxAttempts: number) => ({
  acquireInitialRetryToken: (_scope: string): Promise<RetryToken> => Promise.resolve(token(0, 0)),
  refreshRetryTokenForRetry: (
    previous: RetryToken,
    info: { readonly error?: unknown; readonly errorType: string }
  ): Promise<RetryToken> => {
    const attempt = previous.getRetryCount() + 1
    const status = (info.error as { readonly $metadata?: { readonly httpStatusCode?: number } } | undefined)
      ?.$metadata?.httpStatusCode
    // `TRANSIENT` without a status is a socket/timeout fault; with a status it is a 5xx, which is
    // the stage schedules' to retry.
    if (info.errorType !== "TRANSIENT" || status !== undefined || attempt >= maxAttempts) {
      return Promise.reject(info.error ?? new Error("retry refused"))
    }
    const ceiling = Math.min(retryCapMillis, retryBaseMillis * 2 ** (attempt - 1))
    return Promise.resolve(token(attempt, Math.floor(Math.random() * ceiling)))
  },
  recordSuccess: (_token: RetryToken): void => {}
})

/**
 * What every SDK client constructor gets. HTTP/1.1 everywhere: the Kinesis client defaults to
 * HTTP/2 (for SubscribeToShard, which Spillway does not use), which HTTP/1.1-only emulators reject
 * and which opens a session per request in current SDKs; keep-alive HTTP/1.1 is cheaper.
 */
export const sdkClientConfig = (options: ClientOptions) => {
  const maxAttempts = options.maxAttempts ?? 3
  return {
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts,
    retryStrategy: connectionRetryStrategy(maxAttempts),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.connectionTimeoutMillis ?? 3000,
      requestTimeout: options.requestTimeoutMillis ?? 25_000
    })
  }
}
