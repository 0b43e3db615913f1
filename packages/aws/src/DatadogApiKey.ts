/**
 * The Datadog API key the forwarder sends with (`DD-API-KEY`), read from a Secrets Manager secret
 * — the secret's `SecretString` is the key itself, or JSON with an `api_key` (or `DD_API_KEY`)
 * field — and cached for `ttl` (15 minutes), so a rotated key is picked up without a cold start.
 *
 * Nothing is read while the layer is built: the first send reads, and a read that fails fails
 * that send with a typed error (the sink turns it into a spooled payload), so a key that cannot
 * be read never stops the function from starting nor loses a point (the Datadog forwarder's
 * #1026). A failed read is not cached: the next send reads again. `invalidate` forgets the key
 * (the sink calls it on a 403, so a rotated key is read at once).
 *
 * Configuration (`layerConfig`): `DD_API_KEY_SECRET_ID` (a secret's name or ARN; the function
 * needs `secretsmanager:GetSecretValue` on it, and `kms:Decrypt` on a customer-managed key), or,
 * for local runs only, `DD_API_KEY` itself; `DD_API_KEY_TTL_SECONDS` (default 900).
 */
import { GetSecretValueCommand } from "@aws-sdk/client-secrets-manager"
import { Config, Context, Duration, Effect, Exit, Layer, Option, Redacted, Schema } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import * as AwsErrors from "./internal/awsErrors.js"
import * as SecretsManagerClient from "./SecretsManagerClient.js"

export const ErrorReason = Schema.Literals([
  "NotFound",
  "AccessDenied",
  "Throttled",
  "Unavailable",
  "Malformed"
])
export type ErrorReason = typeof ErrorReason.Type

export class ApiKeyUnavailable extends Schema.TaggedError<ApiKeyUnavailable>()("ApiKeyUnavailable", {
  reason: ErrorReason,
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.reason === "Throttled" || this.reason === "Unavailable"
  }
}

export interface Service {
  readonly current: Effect.Effect<Redacted.Redacted<string>, ApiKeyUnavailable>
  readonly invalidate: Effect.Effect<void>
}

export class DatadogApiKey extends Context.Service<DatadogApiKey, Service>()("spillway/aws/DatadogApiKey") {}

/** The key in a secret's text: the text itself, or the `api_key` / `DD_API_KEY` field of a JSON object. */
export const parseSecret = (text: string): string | undefined => {
  const trimmed = text.trim()
  if (trimmed.startsWith("{")) {
    try {
      const value = JSON.parse(trimmed) as Record<string, unknown>
      const key = value.api_key ?? value.DD_API_KEY ?? value.apiKey
      return typeof key === "string" && key.trim().length > 0 ? key.trim() : undefined
    } catch {
      return undefined
    }
  }
  return trimmed.length > 0 && !/\s/.test(trimmed) ? trimmed : undefined
}

const reasonOf = (failure: AwsErrors.AwsFailure): ErrorReason => {
  if (failure.name === "ThrottlingException" || failure.status === 429) return "Throttled"
  if (failure.name === "ResourceNotFoundException") return "NotFound"
  if (
    AwsErrors.authErrorNames.has(failure.name) ||
    failure.name === "DecryptionFailure" ||
    failure.status === 403
  )
    return "AccessDenied"
  return "Unavailable"
}

/** A key that is always there (local runs, tests). */
export const layerStatic = (key: string): Layer.Layer<DatadogApiKey> =>
  Layer.succeed(DatadogApiKey, { current: Effect.succeed(Redacted.make(key)), invalidate: Effect.void })

/** The key in `secretId`, read on first use and kept for `ttl`. */
export const makeSecretsManager = (
  secretId: string,
  ttl: Duration.Input = Duration.minutes(15)
): Effect.Effect<Service, never, SecretsManagerClient.SecretsManagerClient> =>
  Effect.gen(function* () {
    const client = yield* SecretsManagerClient.SecretsManagerClient
    const read = Effect.gen(function* () {
      const output = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new GetSecretValueCommand({ SecretId: secretId }), { abortSignal: signal }),
        catch: (error) => {
          const failure = AwsErrors.inspect(error)
          return new ApiKeyUnavailable({
            reason: reasonOf(failure),
            message: `GetSecretValue of ${JSON.stringify(secretId)}: ${AwsErrors.describe(failure)}`,
            cause: error
          })
        }
      })
      const key = output.SecretString === undefined ? undefined : parseSecret(output.SecretString)
      if (key === undefined) {
        return yield* new ApiKeyUnavailable({
          reason: "Malformed",
          message: `secret ${JSON.stringify(secretId)} holds no API key (store the key as text, or JSON with "api_key")`
        })
      }
      return Redacted.make(key)
    })
    const [current, invalidate] = yield* Effect.cachedInvalidateWithTTL(read, (exit) =>
      Exit.isSuccess(exit) ? ttl : Duration.zero
    )
    return { current, invalidate }
  })

export const layerSecretsManager = (
  secretId: string,
  ttl?: Duration.Input
): Layer.Layer<DatadogApiKey, never, SecretsManagerClient.SecretsManagerClient> =>
  Layer.effect(DatadogApiKey, makeSecretsManager(secretId, ttl))

const TtlSeconds = Schema.Int.check(
  Schema.isBetween({ minimum: 0, maximum: 86_400 }, { message: "must be a whole number of seconds, 0–86400" })
)

/** From `Config` (see the module header); the Secrets Manager client is only used when a secret is named. */
export const layerConfig: Layer.Layer<
  DatadogApiKey,
  Config.ConfigError,
  SecretsManagerClient.SecretsManagerClient
> = Layer.effect(
  DatadogApiKey,
  Effect.gen(function* () {
    const { secretId, key, ttl } = yield* Config.all({
      secretId: Config.option(Config.NonEmptyString("DD_API_KEY_SECRET_ID")),
      key: Config.option(Config.Redacted("DD_API_KEY")),
      ttl: Config.schema(TtlSeconds, "DD_API_KEY_TTL_SECONDS").pipe(Config.withDefault(900))
    })
    if (Option.isSome(secretId)) return yield* makeSecretsManager(secretId.value, Duration.seconds(ttl))
    if (Option.isSome(key))
      return { current: Effect.succeed(key.value), invalidate: Effect.void } satisfies Service
    return yield* Effect.fail(
      ClientConfig.missing(
        "DD_API_KEY_SECRET_ID",
        "set DD_API_KEY_SECRET_ID to the secret holding the Datadog API key"
      )
    )
  })
)
