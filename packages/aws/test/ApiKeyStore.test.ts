/**
 * `ApiKeyStore` against moto's Secrets Manager and SSM Parameter Store (one moto server for the
 * file), each store's client going through a `FaultProxy` that plays the failures moto does not
 * (no answer, 5xx, access denied) and a client middleware that counts reads and can hold one in
 * flight. Time moves only through TestClock: the cache reads Effect's Clock, and the SDK calls are
 * real. The same tests run on both sources.
 */
import * as SecretsManager from "@aws-sdk/client-secrets-manager"
import * as Ssm from "@aws-sdk/client-ssm"
import { describe, expect, it } from "@effect/vitest"
import { ApiKeys, CollectorHttp, FallbackQueue, RecordStream } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { ConfigProvider, Context, Effect, Fiber, Layer, Logger, Result, type Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ApiKeyStore from "../src/ApiKeyStore.js"
import * as AwsPipeline from "../src/AwsPipeline.js"
import * as SecretsManagerClient from "../src/SecretsManagerClient.js"
import * as SsmClient from "../src/SsmClient.js"
import { serversForFile } from "./support/servers.js"

const servers = serversForFile("moto")

const entry = (tenant: string, key: string) => ({ tenant, sha256: ApiKeys.hashKey(key) })
const list = (...entries: ReadonlyArray<{ readonly tenant: string; readonly sha256: string }>) =>
  JSON.stringify(entries)

let names = 0
const uniqueName = (prefix: string) => `${prefix}-${process.pid}-${++names}`

/** Counts the reads a store's client sends, and can hold them until it is opened. */
const makeGate = () => {
  let sent = 0
  let held: Promise<void> | undefined
  let release: () => void = () => {}
  return {
    get sent() {
      return sent
    },
    /** The middleware's step: counts the read and waits while the gate is closed. */
    pass: async () => {
      sent++
      if (held !== undefined) await held
    },
    /** Holds the next reads until `open`. */
    close: () => {
      held = new Promise<void>((resolve) => {
        release = resolve
      })
    },
    open: () => {
      held = undefined
      release()
    }
  }
}
type Gate = ReturnType<typeof makeGate>

const sdkClient = (endpoint = servers.moto.endpoint) => ({ ...servers.moto.client, endpoint })

/** A client straight to moto (not through the proxy), for writing the stored values. */
const admin = <C extends { destroy(): void }>(create: () => C): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(create), (client) => Effect.sync(() => client.destroy()))

const send = <A>(what: string, call: () => Promise<A>) =>
  Effect.tryPromise({ try: call, catch: (cause) => new Error(`${what}: ${String(cause)}`) }).pipe(
    Effect.orDie
  )

interface Variant {
  readonly name: string
  /** The SDK operation of one read, as the proxy names it. */
  readonly operation: string
  readonly description: (id: string) => string
  /** A fresh id that names nothing in the store yet. */
  readonly newId: () => string
  /** Writes the stored value, creating it on first use. */
  readonly write: (id: string, value: string) => Effect.Effect<void, never, Scope.Scope>
  /** The store over `id`, read through `endpoint`, every read passing the gate. */
  readonly layer: (
    id: string,
    endpoint: string,
    cache: ApiKeyStore.CacheOptions,
    gate: Gate
  ) => Layer.Layer<ApiKeys.ApiKeys>
}

const createdSecrets = new Set<string>()

const secretsManager: Variant = {
  name: "Secrets Manager",
  operation: "GetSecretValue",
  description: (id) => `secret "${id}"`,
  newId: () => uniqueName("spillway/api-keys"),
  write: (id, value) =>
    Effect.gen(function* () {
      const client = yield* admin(() => new SecretsManager.SecretsManagerClient(sdkClient()))
      if (createdSecrets.has(id)) {
        yield* send("PutSecretValue", () =>
          client.send(new SecretsManager.PutSecretValueCommand({ SecretId: id, SecretString: value }))
        )
      } else {
        yield* send("CreateSecret", () =>
          client.send(new SecretsManager.CreateSecretCommand({ Name: id, SecretString: value }))
        )
        createdSecrets.add(id)
      }
    }),
  layer: (id, endpoint, cache, gate) =>
    ApiKeyStore.layerSecretsManager({ secretId: id, ...cache }).pipe(
      Layer.provide(
        Layer.effect(
          SecretsManagerClient.SecretsManagerClient,
          Effect.tap(SecretsManagerClient.make(sdkClient(endpoint)), (client) =>
            Effect.sync(() =>
              client.middlewareStack.add(
                (next) => async (args) => {
                  await gate.pass()
                  return next(args)
                },
                { step: "initialize", name: "testGate" }
              )
            )
          )
        )
      )
    )
}

const ssm: Variant = {
  name: "SSM Parameter Store",
  operation: "GetParameter",
  description: (id) => `SSM parameter "${id}"`,
  newId: () => `/${uniqueName("spillway/api-keys")}`,
  write: (id, value) =>
    Effect.gen(function* () {
      const client = yield* admin(() => new Ssm.SSMClient(sdkClient()))
      yield* send("PutParameter", () =>
        client.send(
          new Ssm.PutParameterCommand({ Name: id, Value: value, Type: "SecureString", Overwrite: true })
        )
      )
    }),
  layer: (id, endpoint, cache, gate) =>
    ApiKeyStore.layerSsm({ parameterName: id, ...cache }).pipe(
      Layer.provide(
        Layer.effect(
          SsmClient.SsmClient,
          Effect.tap(SsmClient.make(sdkClient(endpoint)), (client) =>
            Effect.sync(() =>
              client.middlewareStack.add(
                (next) => async (args) => {
                  await gate.pass()
                  return next(args)
                },
                { step: "initialize", name: "testGate" }
              )
            )
          )
        )
      )
    )
}

/** A store over a fresh secret or parameter holding `value` (none when undefined), behind a proxy. */
const setup = (variant: Variant, value: string | undefined, cache: ApiKeyStore.CacheOptions = {}) =>
  Effect.gen(function* () {
    const proxy = yield* FaultProxy.scoped(servers.moto.endpoint)
    const id = variant.newId()
    if (value !== undefined) yield* variant.write(id, value)
    const gate = makeGate()
    const context = yield* Layer.build(variant.layer(id, proxy.endpoint, cache, gate))
    const keys = Context.get(context, ApiKeys.ApiKeys)
    return {
      id,
      proxy,
      gate,
      keys,
      authorize: (key: string | undefined) => keys.authorize(key),
      write: (next: string) => variant.write(id, next),
      /** Reads that reached the proxy (SDK retries included). */
      wireReads: () => proxy.requests(variant.operation)
    }
  })

/** Records every log line (the store's reads log from their own fiber, which inherits the loggers). */
const captureLogs = () => {
  const lines: Array<{ readonly level: string; readonly message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push({ level: logLevel, message: (Array.isArray(message) ? message : [message]).join(" ") })
  })
  return { lines, layer: Logger.layer([logger]) }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

/** Runs `body` with `process.env` changed (the SDK's default credentials chain reads it), restoring it after. */
const withProcessEnv =
  (env: Record<string, string>) =>
  <A, E, R>(body: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
        Object.assign(process.env, env)
        return saved
      }),
      () => body,
      (saved) =>
        Effect.sync(() => {
          for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k]
            else process.env[k] = v
          }
        })
    )

const withCredentials = withProcessEnv({
  AWS_ACCESS_KEY_ID: Emulators.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: Emulators.credentials.secretAccessKey
})

/** The collector contract over `keys`, with a stream and a queue that must never be reached. */
const collector = (keys: ApiKeys.Service) => {
  const never = Effect.die(new Error("records reached the stream or the queue"))
  const context = Context.make(ApiKeys.ApiKeys, keys).pipe(
    Context.add(
      RecordStream.RecordStream,
      RecordStream.RecordStream.of({
        streamArn: "arn:aws:kinesis:us-east-1:123456789012:stream/x",
        putRecords: () => never,
        readRange: () => never
      })
    ),
    Context.add(
      FallbackQueue.FallbackQueue,
      FallbackQueue.FallbackQueue.of({
        queueArn: "arn:aws:sqs:us-east-1:123456789012:x",
        send: () => never,
        receive: () => never,
        delete: () => never,
        changeVisibility: () => never
      })
    )
  )
  return (key: string) =>
    CollectorHttp.handle({
      method: "POST",
      path: CollectorHttp.telemetryPath,
      headers: { "content-type": "application/json", "x-api-key": key },
      body: "[]"
    }).pipe(Effect.provideContext(context))
}

const expect503 = (response: CollectorHttp.Response) => {
  expect(response.status).toBe(503)
  expect(response.headers["retry-after"]).toBe("5")
  expect((response.body as CollectorHttp.ErrorBody).error.code).toBe("KeyStoreUnavailable")
}

for (const variant of [secretsManager, ssm]) {
  describe(`ApiKeyStore on moto: ${variant.name}`, () => {
    it.effect(
      "authorizes each tenant's keys, refuses an unknown key, and reads nothing for a missing one",
      () =>
        Effect.gen(function* () {
          const store = yield* setup(
            variant,
            list(entry("acme", "k-acme-1"), entry("acme", "k-acme-2"), entry("globex", "k-globex-1"))
          )
          expect(yield* Effect.flip(store.authorize(undefined))).toMatchObject({
            _tag: "Unauthorized",
            reason: "MissingKey"
          })
          expect(store.gate.sent).toBe(0)
          expect(yield* store.authorize("k-acme-1")).toBe("acme")
          expect(yield* store.authorize("k-acme-2")).toBe("acme")
          expect(yield* store.authorize("k-globex-1")).toBe("globex")
          expect(yield* Effect.flip(store.authorize("k-acme-3"))).toMatchObject({
            _tag: "Unauthorized",
            reason: "UnknownKey"
          })
          expect(store.gate.sent).toBe(1)
          expect(store.wireReads()).toBe(1)
        })
    )

    it.effect("reads the map form (digest → tenant), upper-case digests included", () =>
      Effect.gen(function* () {
        const store = yield* setup(
          variant,
          JSON.stringify({
            [ApiKeys.hashKey("k-acme").toUpperCase()]: "acme",
            [ApiKeys.hashKey("k-globex")]: "globex"
          })
        )
        expect(yield* store.authorize("k-acme")).toBe("acme")
        expect(yield* store.authorize("k-globex")).toBe("globex")
        expect(yield* Effect.flip(store.authorize("k-initech"))).toMatchObject({ reason: "UnknownKey" })
      })
    )

    it.effect("a rotation in the store is picked up after the TTL, and not before", () =>
      Effect.gen(function* () {
        const store = yield* setup(variant, list(entry("acme", "k-old")), { ttl: "60 seconds" })
        expect(yield* store.authorize("k-old")).toBe("acme")
        yield* store.write(list(entry("acme", "k-new")))

        yield* TestClock.adjust("59 seconds")
        expect(yield* store.authorize("k-old")).toBe("acme")
        expect(yield* Effect.flip(store.authorize("k-new"))).toMatchObject({ reason: "UnknownKey" })
        expect(store.gate.sent).toBe(1)

        yield* TestClock.adjust("1 second")
        expect(yield* store.authorize("k-new")).toBe("acme")
        expect(yield* Effect.flip(store.authorize("k-old"))).toMatchObject({ reason: "UnknownKey" })
        expect(store.gate.sent).toBe(2)
      })
    )

    it.effect("concurrent checks during a refresh wait for one read and share it", () =>
      Effect.gen(function* () {
        const store = yield* setup(variant, list(entry("acme", "k-acme")), { ttl: "60 seconds" })
        expect(yield* store.authorize("k-acme")).toBe("acme")
        yield* TestClock.adjust("60 seconds")

        store.gate.close()
        // Should an expectation fail while the read is held, the read still ends, and the test with it.
        yield* Effect.addFinalizer(() => Effect.sync(() => store.gate.open()))
        let started = 0
        const fibers = yield* Effect.forEach(
          Array.from({ length: 20 }, () => "k-acme"),
          (key) =>
            Effect.suspend(() => {
              started++
              return store.authorize(key)
            }).pipe(Effect.forkChild)
        )
        // Scheduler turns, not time: every check starts, and the refresh reaches the held gate.
        for (let turn = 0; turn < 1000 && (started < fibers.length || store.gate.sent < 2); turn++)
          yield* Effect.yieldNow
        expect(started).toBe(20)
        expect(fibers.every((fiber) => fiber.pollUnsafe() === undefined)).toBe(true)
        expect(store.gate.sent).toBe(2)

        store.gate.open()
        const tenants = yield* Fiber.joinAll(fibers)
        expect(tenants).toEqual(Array.from({ length: 20 }, () => "acme"))
        expect(store.gate.sent).toBe(2)
        expect(store.wireReads()).toBe(2)
      })
    )

    it.effect(
      "never read: a missing store, a refused permission, a store that stopped → 503 with Retry-After",
      () => {
        const logs = captureLogs()
        return Effect.gen(function* () {
          // Nothing at that name.
          const missing = yield* setup(variant, undefined)
          const notFound = yield* Effect.flip(missing.authorize("k-acme"))
          expect(notFound).toMatchObject({ _tag: "KeyStoreUnavailable", reason: "NotFound" })
          expect(notFound.message).toContain(variant.description(missing.id))
          expect(notFound._tag === "KeyStoreUnavailable" && notFound.isRetryable).toBe(true)
          expect(logs.lines).toContainEqual({
            level: "Error",
            message: expect.stringContaining(
              `API keys: cannot read ${variant.description(missing.id)}; requests with a key are answered 503`
            )
          })
          expect503(yield* collector(missing.keys)("k-acme"))

          // IAM refuses the read.
          const denied = yield* setup(variant, list(entry("acme", "k-acme")))
          denied.proxy.setInterceptor(() => ({
            _tag: "Respond",
            status: 400,
            body: { __type: "AccessDeniedException", message: "not authorized to perform this operation" }
          }))
          expect(yield* Effect.flip(denied.authorize("k-acme"))).toMatchObject({
            _tag: "KeyStoreUnavailable",
            reason: "AccessDenied",
            message: expect.stringContaining("AccessDeniedException: not authorized")
          })
          expect503(yield* collector(denied.keys)("k-acme"))

          // The store stops answering: its endpoint refuses connections.
          const stopped = yield* setup(variant, list(entry("acme", "k-acme")))
          yield* Effect.promise(() => stopped.proxy.close())
          expect(yield* Effect.flip(stopped.authorize("k-acme"))).toMatchObject({
            _tag: "KeyStoreUnavailable",
            reason: "Unavailable"
          })
          expect503(yield* collector(stopped.keys)("k-acme"))
        }).pipe(Effect.provide(logs.layer))
      }
    )

    it.effect(
      "a failed refresh keeps the last keys for the stale period, logged, asking again at intervals",
      () => {
        const logs = captureLogs()
        return Effect.gen(function* () {
          const store = yield* setup(variant, list(entry("acme", "k-acme")), {
            ttl: "60 seconds",
            maxStale: "120 seconds",
            retryAfterFailure: "10 seconds"
          })
          expect(yield* store.authorize("k-acme")).toBe("acme")
          store.proxy.setInterceptor(() => ({
            _tag: "Respond",
            status: 500,
            body: { __type: "InternalServiceError", message: "internal failure" }
          }))

          yield* TestClock.adjust("60 seconds")
          expect(yield* store.authorize("k-acme")).toBe("acme")
          expect(store.gate.sent).toBe(2)
          expect(logs.lines).toContainEqual({
            level: "Warn",
            message: expect.stringMatching(
              /^API keys: cannot refresh from .+; still using the 1 key read 1m ago, for at most 2m more: .*InternalServiceError: internal failure$/
            )
          })
          // Not asked again before the interval…
          yield* TestClock.adjust("9 seconds")
          expect(yield* store.authorize("k-acme")).toBe("acme")
          expect(store.gate.sent).toBe(2)
          // …then asked again.
          yield* TestClock.adjust("1 second")
          expect(yield* store.authorize("k-acme")).toBe("acme")
          expect(store.gate.sent).toBe(3)

          // Past TTL + stale period (180 s after the read), the key can no longer be judged.
          yield* TestClock.adjust("110 seconds")
          expect(yield* Effect.flip(store.authorize("k-acme"))).toMatchObject({
            _tag: "KeyStoreUnavailable",
            reason: "Unavailable"
          })
          expect503(yield* collector(store.keys)("k-acme"))
          expect(logs.lines.at(-1)?.level).toBe("Error")

          // The store answers again: the next read after the interval restores service.
          store.proxy.setInterceptor(undefined)
          yield* TestClock.adjust("10 seconds")
          expect(yield* store.authorize("k-acme")).toBe("acme")
          expect(logs.lines.at(-1)).toEqual({
            level: "Info",
            message: `API keys: read 1 key from ${variant.description(store.id)} again`
          })
        }).pipe(Effect.provide(logs.layer))
      }
    )

    it.effect(
      "a malformed value is refused naming the entry (503), and a malformed update keeps the last keys",
      () => {
        const logs = captureLogs()
        return Effect.gen(function* () {
          const badDigest = JSON.stringify([
            entry("acme", "k-acme"),
            { tenant: "globex", sha256: "k-globex-in-clear" }
          ])
          const store = yield* setup(variant, badDigest, {
            ttl: "60 seconds",
            retryAfterFailure: "5 seconds"
          })

          const error = yield* Effect.flip(store.authorize("k-acme"))
          expect(error).toMatchObject({ _tag: "KeyStoreUnavailable", reason: "Malformed" })
          expect(error.message).toMatch(
            new RegExp(
              `^${escapeRegExp(variant.description(store.id))} \\(version [^)]+\\) entry \\[1\\] \\(tenant "globex"\\): sha256 must be 64 hex characters \\(the SHA-256 of the key\\), got 17 characters$`
            )
          )
          // What looks like a key pasted in clear is never repeated.
          expect(error.message).not.toContain("k-globex-in-clear")
          expect503(yield* collector(store.keys)("k-acme"))
          expect(
            logs.lines.some((l) => l.level === "Error" && l.message.includes('entry [1] (tenant "globex")'))
          ).toBe(true)

          // Fixed in the store: read again once the interval after the failure is over.
          yield* store.write(list(entry("acme", "k-acme")))
          yield* TestClock.adjust("5 seconds")
          expect(yield* store.authorize("k-acme")).toBe("acme")

          // A malformed update after a good read: the last keys stay in use, and the reason is logged.
          yield* store.write("{ not json")
          yield* TestClock.adjust("60 seconds")
          expect(yield* store.authorize("k-acme")).toBe("acme")
          expect(logs.lines.at(-1)).toMatchObject({
            level: "Warn",
            message: expect.stringContaining("is not JSON (a syntax error at position 2)")
          })
        }).pipe(Effect.provide(logs.layer))
      }
    )
  })
}

describe("ApiKeyStore on moto: what only one source has", () => {
  it.effect("a binary secret is refused: the key list is JSON text", () =>
    Effect.gen(function* () {
      const id = uniqueName("spillway/binary")
      const client = yield* admin(() => new SecretsManager.SecretsManagerClient(sdkClient()))
      yield* send("CreateSecret", () =>
        client.send(
          new SecretsManager.CreateSecretCommand({ Name: id, SecretBinary: new Uint8Array([1, 2, 3]) })
        )
      )
      const keys = Context.get(
        yield* Layer.build(
          ApiKeyStore.layerSecretsManager({ secretId: id }).pipe(
            Layer.provide(SecretsManagerClient.layer(sdkClient()))
          )
        ),
        ApiKeys.ApiKeys
      )
      expect(yield* Effect.flip(keys.authorize("k"))).toMatchObject({
        reason: "Malformed",
        message: expect.stringContaining("holds no SecretString (a binary secret?)")
      })
    })
  )

  it.effect("a StringList parameter is refused: the key list is a String or SecureString of JSON", () =>
    Effect.gen(function* () {
      const id = `/${uniqueName("spillway/list")}`
      const client = yield* admin(() => new Ssm.SSMClient(sdkClient()))
      yield* send("PutParameter", () =>
        client.send(new Ssm.PutParameterCommand({ Name: id, Value: "a,b", Type: "StringList" }))
      )
      const keys = Context.get(
        yield* Layer.build(
          ApiKeyStore.layerSsm({ parameterName: id }).pipe(Layer.provide(SsmClient.layer(sdkClient())))
        ),
        ApiKeys.ApiKeys
      )
      expect(yield* Effect.flip(keys.authorize("k"))).toMatchObject({
        reason: "Malformed",
        message: expect.stringContaining("is a StringList")
      })
    })
  )
})

describe("ApiKeyStore from Config", () => {
  const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))
  const build = <A, E>(layer: Layer.Layer<A, E>, env: Record<string, string>) =>
    Layer.build(layer).pipe(Effect.provide(fromEnv(env)))

  it.effect("names the variable that is missing or malformed, reading nothing", () =>
    Effect.gen(function* () {
      const failure = (env: Record<string, string>) =>
        build(ApiKeyStore.layerConfig(), { AWS_REGION: "us-east-1", ...env }).pipe(
          Effect.flip,
          Effect.map(String)
        )
      expect(yield* failure({})).toContain(
        "Missing data at API_KEYS_SOURCE: set it to secretsmanager or ssm: where the collector reads its API keys"
      )
      expect(yield* failure({ API_KEYS_SOURCE: "vault" })).toMatch(
        /"secretsmanager" \| "ssm"\s+at \["API_KEYS_SOURCE"\]/
      )
      expect(yield* failure({ API_KEYS_SOURCE: "secretsmanager" })).toContain(
        "Missing data at API_KEYS_SECRET_ID"
      )
      expect(yield* failure({ API_KEYS_SOURCE: "ssm", API_KEYS_SECRET_ID: "x" })).toContain(
        "Missing data at API_KEYS_PARAMETER_NAME"
      )
      expect(yield* failure({ API_KEYS_SOURCE: "secretsmanager", API_KEYS_SECRET_ID: "a secret" })).toMatch(
        /must be a secret name .* or a secret ARN\s+at \["API_KEYS_SECRET_ID"\]/
      )
      expect(
        yield* failure({ API_KEYS_SOURCE: "ssm", API_KEYS_PARAMETER_NAME: "/k", API_KEYS_TTL_SECONDS: "0" })
      ).toMatch(/at least 1\s+at \["API_KEYS_TTL_SECONDS"\]/)
      expect(
        yield* failure({
          API_KEYS_SOURCE: "ssm",
          API_KEYS_PARAMETER_NAME: "/k",
          API_KEYS_MAX_STALE_SECONDS: "-1"
        })
      ).toMatch(/0 or more\s+at \["API_KEYS_MAX_STALE_SECONDS"\]/)
      expect(
        yield* failure({
          API_KEYS_SOURCE: "secretsmanager",
          API_KEYS_SECRET_ID: "x",
          AWS_ENDPOINT_URL_SECRETS_MANAGER: "localhost:4566"
        })
      ).toContain("AWS_ENDPOINT_URL_SECRETS_MANAGER")
    })
  )

  it.effect("reads the source, its endpoint and the TTL from the environment", () =>
    Effect.gen(function* () {
      for (const variant of [secretsManager, ssm]) {
        const id = variant.newId()
        yield* variant.write(id, list(entry("acme", "k-old")))
        const env =
          variant === secretsManager
            ? {
                API_KEYS_SOURCE: "secretsmanager",
                API_KEYS_SECRET_ID: id,
                AWS_ENDPOINT_URL_SECRETS_MANAGER: servers.moto.endpoint
              }
            : {
                API_KEYS_SOURCE: "ssm",
                API_KEYS_PARAMETER_NAME: id,
                AWS_ENDPOINT_URL_SSM: servers.moto.endpoint
              }
        const context = yield* build(ApiKeyStore.layerConfig({ credentials: Emulators.credentials }), {
          AWS_REGION: Emulators.region,
          API_KEYS_TTL_SECONDS: "30",
          ...env
        })
        const keys = Context.get(context, ApiKeys.ApiKeys)
        expect(yield* keys.authorize("k-old")).toBe("acme")
        yield* variant.write(id, list(entry("acme", "k-new")))
        yield* TestClock.adjust("29 seconds")
        expect(yield* Effect.flip(keys.authorize("k-new"))).toMatchObject({ reason: "UnknownKey" })
        yield* TestClock.adjust("1 second")
        expect(yield* keys.authorize("k-new")).toBe("acme")
      }
    })
  )

  it.effect(
    "AwsPipeline.collectorFromConfig builds without a call and answers 503 when the secret is missing",
    () =>
      Effect.gen(function* () {
        const context = yield* build(AwsPipeline.collectorFromConfig, {
          AWS_REGION: Emulators.region,
          AWS_ENDPOINT_URL: "http://127.0.0.1:9",
          AWS_ENDPOINT_URL_SECRETS_MANAGER: servers.moto.endpoint,
          STREAM_ARN: "arn:aws:kinesis:us-east-1:123456789012:stream/telemetry",
          FALLBACK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/fallback",
          API_KEYS_SOURCE: "secretsmanager",
          API_KEYS_SECRET_ID: uniqueName("spillway/never-created")
        })
        const response = yield* CollectorHttp.handle({
          method: "POST",
          path: CollectorHttp.telemetryPath,
          headers: { "content-type": "application/json", "x-api-key": "k-acme" },
          body: "[]"
        }).pipe(Effect.provideContext(context))
        expect503(response)
      }).pipe(withCredentials)
  )
})

describe("ApiKeyStore.parseKeyList", () => {
  const digest = ApiKeys.hashKey("k")
  it.each([
    ["not JSON", '{"a": nope}', "is not JSON"],
    ["JSON cut short", "{ not json", "is not JSON (a syntax error at position 2)"],
    [
      "a string",
      '"k-acme"',
      'must be a JSON array of {"tenant", "sha256"} entries or an object from sha256 digest to tenant, got string'
    ],
    ["an empty list", "[]", "lists no keys (every request would be refused; list at least one key)"],
    ["an empty map", "{}", "lists no keys (every request would be refused; list at least one key)"],
    [
      "an entry that is no object",
      `[${JSON.stringify(entry("a", "k"))}, 3]`,
      'entry [1] must be an object {"tenant", "sha256"}, got number'
    ],
    [
      "a missing tenant",
      JSON.stringify([{ sha256: digest }]),
      "entry [0]: tenant must be a non-empty string, got undefined"
    ],
    [
      "an empty tenant",
      JSON.stringify([{ tenant: "", sha256: digest }]),
      "entry [0]: tenant must be a non-empty string, got string"
    ],
    [
      "a number for a digest",
      JSON.stringify([{ tenant: "acme", sha256: 42 }]),
      'entry [0] (tenant "acme"): sha256 must be a string, got number'
    ],
    [
      "64 characters that are not hex",
      JSON.stringify([{ tenant: "acme", sha256: "z".repeat(64) }]),
      'entry [0] (tenant "acme"): sha256 must be 64 hex characters (the SHA-256 of the key), got 64 characters that are not all hex'
    ],
    [
      "a map key that is no digest",
      JSON.stringify({ [digest]: "acme", "k-in-clear": "globex" }),
      'entry [1] (tenant "globex"): sha256 must be 64 hex characters (the SHA-256 of the key), got 10 characters'
    ],
    [
      "one digest for two tenants",
      JSON.stringify([entry("acme", "k"), { tenant: "globex", sha256: digest.toUpperCase() }]),
      'entry [0] (tenant "acme") and entry [1] (tenant "globex") list the same sha256 for two tenants'
    ]
  ])("refuses %s, saying where", (_, text, problem) => {
    expect(ApiKeyStore.parseKeyList(text)).toEqual(Result.fail(problem))
  })

  it("reads both forms alike, ignoring other fields and a repeated entry, digests in lower case", () => {
    const listForm = ApiKeyStore.parseKeyList(
      JSON.stringify([
        { tenant: "acme", sha256: digest.toUpperCase(), note: "rotated 2026-11", createdAt: "2026-11-01" },
        entry("acme", "k"),
        entry("globex", "k2")
      ])
    )
    const mapForm = ApiKeyStore.parseKeyList(
      JSON.stringify({ [digest]: "acme", [ApiKeys.hashKey("k2")]: "globex" })
    )
    const expected = [
      { tenant: "acme", sha256: digest },
      { tenant: "globex", sha256: ApiKeys.hashKey("k2") }
    ]
    expect(listForm).toEqual(Result.succeed(expected))
    expect(mapForm).toEqual(Result.succeed(expected))
  })
})
