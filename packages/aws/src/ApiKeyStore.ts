/**
 * `ApiKeys` read from AWS: the collector's hashed keys kept in a Secrets Manager secret or an SSM
 * Parameter Store parameter, read through a cache, and checked by `ApiKeys.make` (SHA-256 digests
 * compared in constant time, every stored key compared on every check).
 *
 * The stored value — the same JSON in a secret (`SecretString`) or a parameter (`String` or
 * `SecureString`, read with decryption) — takes one of two forms:
 *
 *   [{ "tenant": "acme", "sha256": "<64 hex>" }, { "tenant": "acme", "sha256": "<64 hex>" }, …]
 *   { "<64 hex>": "acme", "<64 hex>": "globex", … }
 *
 * a list of entries (other fields of an entry, such as a note or a creation date, are ignored), or
 * an object from digest to tenant (what the Secrets Manager console's key/value editor writes). A
 * tenant may have several keys, which is how a key is rotated: add the new digest, move the
 * clients, remove the old one. `sha256` is the lower- or upper-case hex SHA-256 of the UTF-8 key
 * (`ApiKeys.hashKey`): the store never holds a key itself. A value that is not JSON in one of these
 * forms, that lists no key, that has an entry with a tenant that is not a non-empty string or a
 * digest that is not 64 hex characters, or that gives one digest to two tenants, is refused whole
 * (`KeyStoreUnavailable`, reason `Malformed`, naming the entry by position and tenant — never
 * echoing a digest field, which may hold a key pasted by mistake). Refusing it whole answers 503,
 * which clients retry, rather than 401, which they do not: no tenant loses data to a typo.
 * Size limits: a secret holds 64 KB (about 600 entries); a standard parameter 4 KB (about 40),
 * an advanced one 8 KB.
 *
 * The cache (times are Effect's `Clock`, so tests move them with `TestClock`):
 * - keys read at time t are used, without asking the store, until t + `ttl` (default 300 s): a
 *   key added to or removed from the store takes effect within `ttl`;
 * - the first check after that reads the store again, and every check meanwhile waits for that
 *   same read: one read per refresh, however many requests arrive during it. The read runs in
 *   the layer's scope, so a request that goes away does not cancel it for the others;
 * - when a refresh fails after keys were read once, the last keys read stay in use until
 *   t + `ttl` + `maxStale` (default one hour), and each failed read is logged (warning) with its
 *   reason and how much longer they will be used: an outage of the store, a revoked permission
 *   or a malformed update does not stop ingestion, and keys removed during such an outage stop
 *   working at most `maxStale` late. After a failed read the store is not asked again for
 *   `retryAfterFailure` (default 5 s, at most `ttl`), so an outage costs one read per interval,
 *   not one per request;
 * - when no keys were ever read, or the stale period is over, a check with a key fails
 *   `KeyStoreUnavailable` (the collector answers 503 with `Retry-After`; logged as an error at
 *   each failed read). A check without a key is `Unauthorized` at once: no read is needed for it.
 *
 * Nothing is read while the layer is built: the first check reads (Lambda: the first invocation
 * of an execution environment), so a store that cannot be read never stops the function from
 * starting — it answers 503 until it can.
 *
 * Configuration (`layerConfig()`, through `Config`, failing at start naming the variable):
 * `API_KEYS_SOURCE` (`secretsmanager` or `ssm`), `API_KEYS_SECRET_ID` (a secret's name or ARN) or
 * `API_KEYS_PARAMETER_NAME` (a parameter's name or ARN), `API_KEYS_TTL_SECONDS` (default 300),
 * `API_KEYS_MAX_STALE_SECONDS` (default 3600, 0 for none), and for the chosen service's client only
 * `AWS_REGION` and `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_SSM` / `AWS_ENDPOINT_URL`
 * (`ClientConfig`: the shared SDK retry policy; a read gives up on an open request after 5 s, since
 * a request waits for it). The function needs `secretsmanager:GetSecretValue` on the secret, or
 * `ssm:GetParameter` on the parameter, and `kms:Decrypt` on a customer-managed key encrypting it.
 */
import { GetSecretValueCommand } from "@aws-sdk/client-secrets-manager"
import { GetParameterCommand } from "@aws-sdk/client-ssm"
import { ApiKeys } from "@spillway/core"
import { Clock, Config, Deferred, Duration, Effect, Exit, Layer, Option, Result, Schema, Scope } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import * as AwsErrors from "./internal/awsErrors.js"
import * as SecretsManagerClient from "./SecretsManagerClient.js"
import * as SsmClient from "./SsmClient.js"

// ---- the stored value -----------------------------------------------------------------------------

const digestPattern = /^[0-9a-fA-F]{64}$/

const describeType = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value

const entryName = (index: number, tenant: unknown): string =>
  typeof tenant === "string" && tenant.length > 0
    ? `entry [${index}] (tenant ${JSON.stringify(tenant.slice(0, 100))})`
    : `entry [${index}]`

/** Why a digest field is not a digest, without repeating it (it may be a key pasted by mistake). */
const digestProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return `must be a string, got ${describeType(value)}`
  if (!digestPattern.test(value))
    return `must be 64 hex characters (the SHA-256 of the key), got ${value.length} characters${value.length === 64 ? " that are not all hex" : ""}`
  return undefined
}

/**
 * The keys a stored value lists (see the module header for the two forms); the failure says what
 * is wrong and where, for a log line. Digests come back in lower case.
 */
export const parseKeyList = (text: string): Result.Result<ReadonlyArray<ApiKeys.HashedKey>, string> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    // JSON.parse quotes the text around the error; this text holds key digests, so only the position is told.
    const position = /position (\d+)/.exec(e instanceof Error ? e.message : "")?.[1]
    return Result.fail(
      `is not JSON${position === undefined ? "" : ` (a syntax error at position ${position})`}`
    )
  }
  const entries: Array<{ readonly name: string; readonly tenant: unknown; readonly sha256: unknown }> = []
  if (Array.isArray(value)) {
    for (const [index, entry] of value.entries()) {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry))
        return Result.fail(
          `entry [${index}] must be an object {"tenant", "sha256"}, got ${describeType(entry)}`
        )
      const { tenant, sha256 } = entry as { readonly tenant?: unknown; readonly sha256?: unknown }
      entries.push({ name: entryName(index, tenant), tenant, sha256 })
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [index, [sha256, tenant]] of Object.entries(value).entries()) {
      entries.push({ name: entryName(index, tenant), tenant, sha256 })
    }
  } else {
    return Result.fail(
      `must be a JSON array of {"tenant", "sha256"} entries or an object from sha256 digest to tenant, got ${describeType(value)}`
    )
  }
  if (entries.length === 0)
    return Result.fail("lists no keys (every request would be refused; list at least one key)")

  const keys: Array<ApiKeys.HashedKey> = []
  const owners = new Map<string, { readonly name: string; readonly tenant: string }>()
  for (const entry of entries) {
    if (typeof entry.tenant !== "string" || entry.tenant.length === 0)
      return Result.fail(
        `${entry.name}: tenant must be a non-empty string, got ${describeType(entry.tenant)}`
      )
    const problem = digestProblem(entry.sha256)
    if (problem !== undefined) return Result.fail(`${entry.name}: sha256 ${problem}`)
    const sha256 = (entry.sha256 as string).toLowerCase()
    const owner = owners.get(sha256)
    if (owner !== undefined && owner.tenant !== entry.tenant)
      return Result.fail(`${owner.name} and ${entry.name} list the same sha256 for two tenants`)
    if (owner === undefined) {
      owners.set(sha256, { name: entry.name, tenant: entry.tenant })
      keys.push({ tenant: entry.tenant, sha256 })
    }
  }
  return Result.succeed(keys)
}

// ---- where keys are read from ---------------------------------------------------------------------

/** Where the keys are read from. */
export type Source =
  | { readonly _tag: "SecretsManager"; readonly secretId: string }
  | { readonly _tag: "Ssm"; readonly parameterName: string }

/** A place keys are read from: what log lines call it, and one read of the whole list. */
export interface KeySource {
  /** `secret "spillway/api-keys"`, `SSM parameter "/spillway/api-keys"`. */
  readonly description: string
  readonly read: Effect.Effect<ReadonlyArray<ApiKeys.HashedKey>, ApiKeys.KeyStoreUnavailable>
}

const throttlingNames: ReadonlySet<string> = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded"
])

const notFoundNames: ReadonlySet<string> = new Set([
  "ResourceNotFoundException",
  "ParameterNotFound",
  "ParameterVersionNotFound"
])

/** KMS refusing to decrypt the secret or parameter: a permission, not an outage. */
const decryptionNames: ReadonlySet<string> = new Set(["DecryptionFailure", "InvalidKeyId"])

/** The reason for a failed read of a secret or a parameter. */
export const reasonOf = (failure: AwsErrors.AwsFailure): ApiKeys.KeyStoreErrorReason => {
  if (throttlingNames.has(failure.name) || failure.status === 429) return "Throttled"
  if (notFoundNames.has(failure.name)) return "NotFound"
  if (
    AwsErrors.authErrorNames.has(failure.name) ||
    decryptionNames.has(failure.name) ||
    /^Kms/i.test(failure.name)
  )
    return "AccessDenied"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

const fromSdk =
  (what: string) =>
  (error: unknown): ApiKeys.KeyStoreUnavailable => {
    const failure = AwsErrors.inspect(error)
    return new ApiKeys.KeyStoreUnavailable({
      reason: reasonOf(failure),
      message: `${what}: ${AwsErrors.describe(failure)}`,
      cause: error
    })
  }

const malformed = (what: string, problem: string) =>
  new ApiKeys.KeyStoreUnavailable({ reason: "Malformed", message: `${what} ${problem}` })

const parsed = (what: string, text: string) =>
  Result.match(parseKeyList(text), {
    onSuccess: (keys) => Effect.succeed(keys),
    onFailure: (problem) => Effect.fail(malformed(what, problem))
  })

/** The secret's current version (`AWSCURRENT`), its `SecretString` being the key list. */
export const secretsManagerSource = (
  secretId: string
): Effect.Effect<KeySource, never, SecretsManagerClient.SecretsManagerClient> =>
  Effect.gen(function* () {
    const client = yield* SecretsManagerClient.SecretsManagerClient
    const description = `secret ${JSON.stringify(secretId)}`
    return {
      description,
      read: Effect.gen(function* () {
        const output = yield* Effect.tryPromise({
          try: (signal) =>
            client.send(new GetSecretValueCommand({ SecretId: secretId }), { abortSignal: signal }),
          catch: fromSdk(`GetSecretValue of ${description}`)
        })
        const what = `${description}${output.VersionId === undefined ? "" : ` (version ${output.VersionId})`}`
        if (output.SecretString === undefined)
          return yield* malformed(
            what,
            "holds no SecretString (a binary secret?): store the key list as JSON text"
          )
        return yield* parsed(what, output.SecretString)
      })
    } satisfies KeySource
  })

/** The parameter's latest version, a `String` or `SecureString` (decrypted) holding the key list. */
export const ssmSource = (parameterName: string): Effect.Effect<KeySource, never, SsmClient.SsmClient> =>
  Effect.gen(function* () {
    const client = yield* SsmClient.SsmClient
    const description = `SSM parameter ${JSON.stringify(parameterName)}`
    return {
      description,
      read: Effect.gen(function* () {
        const output = yield* Effect.tryPromise({
          try: (signal) =>
            client.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }), {
              abortSignal: signal
            }),
          catch: fromSdk(`GetParameter of ${description}`)
        })
        const parameter = output.Parameter
        const what = `${description}${parameter?.Version === undefined ? "" : ` (version ${parameter.Version})`}`
        if (parameter?.Type === "StringList")
          return yield* malformed(
            what,
            "is a StringList: store the key list as a String or SecureString of JSON"
          )
        if (parameter?.Value === undefined) return yield* malformed(what, "has no value")
        return yield* parsed(what, parameter.Value)
      })
    } satisfies KeySource
  })

// ---- the cache ------------------------------------------------------------------------------------

export interface CacheOptions {
  /** How long keys once read are used without reading the store again. @default 300 seconds */
  readonly ttl?: Duration.Input
  /**
   * How long past their `ttl` the last keys read are still used while the store cannot be read;
   * 0 for never. @default 1 hour
   */
  readonly maxStale?: Duration.Input
  /** After a failed read, how long before the store is read again (at most `ttl`). @default 5 seconds */
  readonly retryAfterFailure?: Duration.Input
}

export const defaultTtl = Duration.seconds(300)
export const defaultMaxStale = Duration.hours(1)
export const defaultRetryAfterFailure = Duration.seconds(5)

const millisOf = (input: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(input))

const keyCount = (count: number) => `${count} key${count === 1 ? "" : "s"}`

const seconds = (millis: number) => Duration.format(Duration.seconds(Math.max(0, Math.ceil(millis / 1000))))

interface Loaded {
  readonly keys: ApiKeys.Service
  readonly count: number
  /** When the read that got them started. */
  readonly readAt: number
}

interface Failed {
  readonly error: ApiKeys.KeyStoreUnavailable
  readonly at: number
}

/**
 * `ApiKeys` over `source`, cached as the module header describes. The reads run in fibers of the
 * scope: closing it interrupts a read in progress, and the checks waiting for that read with it.
 */
export const make = Effect.fnUntraced(function* (
  source: KeySource,
  options: CacheOptions = {}
): Effect.fn.Return<ApiKeys.Service, never, Scope.Scope> {
  const scope = yield* Scope.Scope
  const ttl = millisOf(options.ttl ?? defaultTtl)
  const maxStale = millisOf(options.maxStale ?? defaultMaxStale)
  const retryAfterFailure = Math.min(ttl, millisOf(options.retryAfterFailure ?? defaultRetryAfterFailure))

  // The state is read and changed only inside synchronous sections (`Effect.suspend`, `Effect.sync`),
  // which no other fiber can interleave with: deciding to read and marking the read as started is one step.
  let loaded: Loaded | undefined
  let failed: Failed | undefined
  let reading: Deferred.Deferred<Loaded, ApiKeys.KeyStoreUnavailable> | undefined

  /** The last keys read while they are within their stale period, else the failure. */
  const fallBack = (now: number, error: ApiKeys.KeyStoreUnavailable) =>
    loaded !== undefined && now < loaded.readAt + ttl + maxStale
      ? Effect.succeed(loaded.keys)
      : Effect.fail(error)

  const settle = (
    readAt: number,
    exit: Exit.Exit<ReadonlyArray<ApiKeys.HashedKey>, ApiKeys.KeyStoreUnavailable>
  ) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.suspend((): Effect.Effect<Exit.Exit<Loaded, ApiKeys.KeyStoreUnavailable>> => {
        reading = undefined
        if (Exit.isSuccess(exit)) {
          const recovered = failed !== undefined
          loaded = { keys: ApiKeys.make(exit.value), count: exit.value.length, readAt }
          failed = undefined
          const done = Exit.succeed(loaded)
          return recovered
            ? Effect.as(
                Effect.logInfo(`API keys: read ${keyCount(loaded.count)} from ${source.description} again`),
                done
              )
            : Effect.succeed(done)
        }
        const error = Option.getOrUndefined(Exit.findErrorOption(exit))
        // A defect or an interruption is not the store's answer: it is passed on as it is.
        if (error === undefined) return Effect.succeed(exit as Exit.Exit<never>)
        failed = { error, at: now }
        const staleUntil = loaded === undefined ? now : loaded.readAt + ttl + maxStale
        const log =
          loaded !== undefined && now < staleUntil
            ? Effect.logWarning(
                `API keys: cannot refresh from ${source.description}; still using the ${keyCount(loaded.count)} read ${seconds(now - loaded.readAt)} ago, for at most ${seconds(staleUntil - now)} more: ${error.message}`
              )
            : Effect.logError(
                `API keys: cannot read ${source.description}; requests with a key are answered 503 until it can be read: ${error.message}`
              )
        return Effect.as(log, Exit.fail(error))
      })
    )

  /** Marks a read as started (synchronously, so that every check from now on waits for it) and starts it. */
  const startRead = (now: number) => {
    const deferred = Deferred.makeUnsafe<Loaded, ApiKeys.KeyStoreUnavailable>()
    reading = deferred
    return source.read.pipe(
      Effect.exit,
      Effect.flatMap((exit) => settle(now, exit)),
      Effect.flatten,
      Effect.forkIn(scope),
      Effect.map((fiber) => {
        // However the read ends — read, failed, interrupted, or never started because the scope
        // closed — every check waiting for it hears so.
        fiber.addObserver((exit) => {
          if (reading === deferred) reading = undefined
          Deferred.doneUnsafe(deferred, exit)
        })
        return deferred
      })
    )
  }

  const current: Effect.Effect<ApiKeys.Service, ApiKeys.KeyStoreUnavailable> = Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      Effect.suspend(() => {
        if (loaded !== undefined && now < loaded.readAt + ttl) return Effect.succeed(loaded.keys)
        if (reading === undefined && failed !== undefined && now < failed.at + retryAfterFailure)
          return fallBack(now, failed.error)
        return (reading === undefined ? startRead(now) : Effect.succeed(reading)).pipe(
          Effect.flatMap(Deferred.await),
          Effect.map((read) => read.keys),
          Effect.catchTag("KeyStoreUnavailable", (error) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.suspend(() => fallBack(at, error)))
          )
        )
      })
  )

  return ApiKeys.ApiKeys.of({
    authorize: Effect.fn("ApiKeyStore.authorize")(function* (key: string | undefined) {
      if (key === undefined || key.length === 0)
        return yield* new ApiKeys.Unauthorized({ reason: "MissingKey" })
      return yield* (yield* current).authorize(key)
    })
  })
})

// ---- layers ---------------------------------------------------------------------------------------

export interface SecretsManagerOptions extends CacheOptions {
  /** The secret's name or ARN. */
  readonly secretId: string
}

export interface SsmOptions extends CacheOptions {
  /** The parameter's name (`/spillway/api-keys`) or ARN. */
  readonly parameterName: string
}

export const layerSecretsManager = ({
  secretId,
  ...cache
}: SecretsManagerOptions): Layer.Layer<ApiKeys.ApiKeys, never, SecretsManagerClient.SecretsManagerClient> =>
  Layer.effect(
    ApiKeys.ApiKeys,
    Effect.flatMap(secretsManagerSource(secretId), (source) => make(source, cache))
  )

export const layerSsm = ({
  parameterName,
  ...cache
}: SsmOptions): Layer.Layer<ApiKeys.ApiKeys, never, SsmClient.SsmClient> =>
  Layer.effect(
    ApiKeys.ApiKeys,
    Effect.flatMap(ssmSource(parameterName), (source) => make(source, cache))
  )

export interface StoreConfig {
  readonly source: Source
  readonly ttl: Duration.Duration
  readonly maxStale: Duration.Duration
}

const SecretId = Schema.String.check(
  Schema.isPattern(
    /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+|[A-Za-z0-9/_+=.@-]{1,512})$/,
    {
      message: "must be a secret name (1–512 characters of A-Z, a-z, 0-9, /_+=.@-) or a secret ARN"
    }
  )
)

const ParameterName = Schema.String.check(
  Schema.isPattern(/^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/.+|[A-Za-z0-9_.\-/]{1,2048})$/, {
    message: "must be a parameter name (such as /spillway/api-keys: A-Z, a-z, 0-9, _.-/) or a parameter ARN"
  })
)

const required = <A>(config: Config.Config<A>, variable: string, why: string): Config.Config<A> =>
  Config.option(config).pipe(
    Config.mapEffect(
      Option.match({
        onSome: Effect.succeed,
        onNone: () => Effect.fail(ClientConfig.missing(variable, why))
      })
    )
  )

/** `API_KEYS_SOURCE` and the variable naming the secret or parameter it says. */
export const source: Config.Config<Source> = required(
  Config.Literals(["secretsmanager", "ssm"], "API_KEYS_SOURCE"),
  "API_KEYS_SOURCE",
  "set it to secretsmanager or ssm: where the collector reads its API keys"
).pipe(
  Config.flatMap(
    (kind): Config.Config<Source> =>
      kind === "secretsmanager"
        ? required(
            Config.schema(SecretId, "API_KEYS_SECRET_ID"),
            "API_KEYS_SECRET_ID",
            "API_KEYS_SOURCE=secretsmanager reads the keys from this secret: set its name or ARN"
          ).pipe(Config.map((secretId) => ({ _tag: "SecretsManager", secretId })))
        : required(
            Config.schema(ParameterName, "API_KEYS_PARAMETER_NAME"),
            "API_KEYS_PARAMETER_NAME",
            "API_KEYS_SOURCE=ssm reads the keys from this parameter: set its name or ARN"
          ).pipe(Config.map((parameterName) => ({ _tag: "Ssm", parameterName })))
  )
)

/** The store's configuration (see the module header). */
export const config: Config.Config<StoreConfig> = Config.all({
  source,
  ttl: Config.schema(
    Schema.Int.check(Schema.isGreaterThan(0, { message: "must be a whole number of seconds, at least 1" })),
    "API_KEYS_TTL_SECONDS"
  ).pipe(Config.withDefault(Duration.toSeconds(defaultTtl))),
  maxStale: Config.schema(
    Schema.Int.check(
      Schema.isGreaterThanOrEqualTo(0, { message: "must be a whole number of seconds, 0 or more" })
    ),
    "API_KEYS_MAX_STALE_SECONDS"
  ).pipe(Config.withDefault(Duration.toSeconds(defaultMaxStale)))
}).pipe(
  Config.map(({ source, ttl, maxStale }) => ({
    source,
    ttl: Duration.seconds(ttl),
    maxStale: Duration.seconds(maxStale)
  }))
)

/**
 * A key read holds up a request: its client gives up on an open request after 5 s instead of the
 * 25 s the shared default allows for long polls (`ClientConfig`).
 */
export const clientOverrides: Partial<ClientConfig.ClientOptions> = { requestTimeoutMillis: 5000 }

/**
 * The store from `Config` (see the module header), with the client of the chosen service only
 * (`AWS_REGION`, its `AWS_ENDPOINT_URL_*`; `clientOptions` over `clientOverrides`, e.g. credentials).
 * Fails at start naming a missing or malformed variable; reads nothing until the first check.
 */
export const layerConfig = (
  clientOptions: Partial<ClientConfig.ClientOptions> = {}
): Layer.Layer<ApiKeys.ApiKeys, Config.ConfigError> =>
  Layer.unwrap(
    Effect.map(config, ({ source, ...cache }) =>
      source._tag === "SecretsManager"
        ? layerSecretsManager({ secretId: source.secretId, ...cache }).pipe(
            Layer.provide(SecretsManagerClient.layerConfig({ ...clientOverrides, ...clientOptions }))
          )
        : layerSsm({ parameterName: source.parameterName, ...cache }).pipe(
            Layer.provide(SsmClient.layerConfig({ ...clientOverrides, ...clientOptions }))
          )
    )
  )
