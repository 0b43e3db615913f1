/**
 * The collector's HTTP contract in core, over a stream that keeps what it is given: what clients
 * really send (epoch-millisecond timestamps, extra fields, gzip, API Gateway events), one key
 * check per request, CORS, the deployment-derived limits, and every reason in plain words.
 */
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Result } from "effect"
import * as ApiKeys from "../src/ApiKeys.js"
import * as CollectorHttp from "../src/CollectorHttp.js"
import * as FallbackQueue from "../src/FallbackQueue.js"
import * as RecordStream from "../src/RecordStream.js"
import * as Collect from "../src/stages/collect.js"
import * as Telemetry from "../src/Telemetry.js"

const apiKey = "k-demo"
const ts = "2026-11-24T10:00:00.000Z"
const record = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "cpu",
  timestamp: ts,
  payload: { value: 1 },
  ...extra
})

/**
 * A stream that stores every entry, a queue that is never needed, and keys that count their checks
 * (the demo key, unless another key service is given).
 */
const setup = (
  options: CollectorHttp.Options = {},
  keys: ApiKeys.Service = ApiKeys.make([{ tenant: "demo", sha256: ApiKeys.hashKey(apiKey) }])
) => {
  const stored: Array<Telemetry.TelemetryEnvelope> = []
  const checks = { count: 0 }
  const stream = RecordStream.RecordStream.of({
    streamArn: "arn:aws:kinesis:eu-west-1:123456789012:stream/test",
    putRecords: (entries) =>
      Effect.sync(() =>
        entries.map((entry, i) => {
          stored.push(Result.getOrThrow(Telemetry.decodeEnvelope(entry.data)))
          return { _tag: "Stored" as const, shardId: "shardId-000000000000", sequenceNumber: String(i) }
        })
      ),
    readRange: () => Effect.succeed([])
  })
  const unused = Effect.die(new Error("the fallback queue is not used here"))
  const queue = FallbackQueue.FallbackQueue.of({
    queueArn: "arn:aws:sqs:eu-west-1:123456789012:fallback",
    send: () => unused,
    receive: () => unused,
    delete: () => unused,
    changeVisibility: () => unused
  })
  const context = Context.make(
    ApiKeys.ApiKeys,
    ApiKeys.ApiKeys.of({
      authorize: (key) =>
        Effect.suspend(() => {
          checks.count += 1
          return keys.authorize(key)
        })
    })
  ).pipe(Context.add(RecordStream.RecordStream, stream), Context.add(FallbackQueue.FallbackQueue, queue))
  const send = (request: CollectorHttp.Request) =>
    CollectorHttp.handle(request, options).pipe(Effect.provideContext(context))
  return { send, stored, checks, context }
}

const post = (
  body: unknown,
  headers: Readonly<Record<string, CollectorHttp.HeaderValue>> = {},
  gzip = false
): CollectorHttp.Request => {
  const raw =
    body instanceof Uint8Array ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body))
  return {
    method: "POST",
    path: CollectorHttp.telemetryPath,
    headers: {
      "content-type": "application/json",
      "x-api-key": apiKey,
      ...(gzip ? { "content-encoding": "gzip" } : {}),
      ...headers
    },
    body: gzip ? gzipSync(raw) : raw
  }
}

const errorOf = (response: CollectorHttp.Response) => (response.body as CollectorHttp.ErrorBody).error

describe("CollectorHttp: what clients send", () => {
  it.effect("an API Gateway HTTP API (payload 2.0) event maps to a request field by field", () =>
    Effect.gen(function* () {
      const { send, stored } = setup()
      const event = {
        version: "2.0",
        rawPath: "/v1/telemetry",
        rawQueryString: "",
        headers: { "content-type": "application/json", "content-encoding": "gzip", "x-api-key": apiKey },
        requestContext: { http: { method: "POST", path: "/v1/telemetry" } },
        body: gzipSync(Buffer.from(JSON.stringify([record("gw-1")]))).toString("base64"),
        isBase64Encoded: true
      }
      const response = yield* send({
        method: event.requestContext.http.method,
        path: event.rawPath,
        headers: event.headers,
        body: event.body,
        isBase64Encoded: event.isBase64Encoded
      })
      expect(response.status).toBe(202)
      expect(stored.map((e) => e.record.id)).toEqual(["gw-1"])
      // A text body (not base64) and headers in any case.
      const text = yield* send({
        method: "post",
        path: "/v1/telemetry",
        headers: { "Content-Type": "application/json", "X-Api-Key": apiKey },
        body: JSON.stringify([record("gw-2")])
      })
      expect(text.status).toBe(202)
    })
  )

  it.effect("timestamps: epoch milliseconds are normalized to ISO-8601, ISO strings are kept as sent", () =>
    Effect.gen(function* () {
      const { send, stored } = setup()
      const response = yield* send(
        post([
          record("ms", { timestamp: 1_795_514_400_000 }),
          record("iso-offset", { timestamp: "2026-11-24T11:00:00+01:00" }),
          record("iso-nanos", { timestamp: "2026-11-24T10:00:00.123456789Z" })
        ])
      )
      expect(response.body).toEqual({ accepted: 3, rejected: [], unavailable: [] })
      expect(stored.map((e) => e.record.timestamp)).toEqual([
        "2026-11-24T10:00:00.000Z",
        "2026-11-24T11:00:00+01:00",
        "2026-11-24T10:00:00.123456789Z"
      ])
    })
  )

  it.effect("fields beyond id, type, timestamp and payload are kept under attributes", () =>
    Effect.gen(function* () {
      const { send, stored } = setup()
      const response = yield* send(
        post([record("extra", { host: "web-1", tags: ["env:prod", "team:a"], service: { name: "api" } })])
      )
      expect(response.status).toBe(202)
      expect(stored[0]?.record.attributes).toEqual({
        host: "web-1",
        tags: ["env:prod", "team:a"],
        service: { name: "api" }
      })
      // A record without extras has no attributes at all.
      yield* send(post([record("plain")]))
      expect(stored[1]?.record).not.toHaveProperty("attributes")
    })
  )

  it.effect("1,000 records of 1 KB, gzipped, are accepted under the default limits", () =>
    Effect.gen(function* () {
      const { send, stored } = setup()
      const body = Array.from({ length: 1000 }, (_, i) =>
        record(`kb-${i}`, { payload: { blob: "x".repeat(1000 - 80) } })
      )
      const raw = JSON.stringify(body)
      expect(raw.length).toBeGreaterThan(1000 * 1000)
      const response = yield* send(post(raw, {}, true))
      expect(response.status).toBe(202)
      expect(response.body).toEqual({ accepted: 1000, rejected: [], unavailable: [] })
      expect(stored).toHaveLength(1000)
    })
  )

  it.effect("the public 202 body is only {accepted, rejected, unavailable}; onCollected gets the rest", () =>
    Effect.gen(function* () {
      const seen: Array<CollectorHttp.Collected> = []
      const { send } = setup({ onCollected: (c) => Effect.sync(() => void seen.push(c)) })
      const body = [record("a"), { id: "b" }]
      const response = yield* send(post(body))
      expect(Object.keys(response.body ?? {}).sort()).toEqual(["accepted", "rejected", "unavailable"])
      expect(seen).toHaveLength(1)
      expect(seen[0]?.tenant).toBe("demo")
      expect(seen[0]?.records).toEqual(body)
      expect(seen[0]?.result.stored).toBe(1)
      // A request refused before the stage reaches no hook.
      yield* send(post(body, { "x-api-key": "wrong" }))
      expect(seen).toHaveLength(1)
    })
  )
})

describe("CollectorHttp: the key is checked once per request", () => {
  it.effect("exactly one check for an accepted, a refused and an unauthorized request", () =>
    Effect.gen(function* () {
      const { send, checks, context } = setup()
      for (const [request, status] of [
        [post([record("one")]), 202],
        [post([{ id: 1 }]), 400],
        [post("[", {}), 400],
        [post([record("two")], { "x-api-key": "wrong" }), 401]
      ] as const) {
        const before = checks.count
        expect((yield* send(request)).status).toBe(status)
        expect(checks.count - before).toBe(1)
      }
      // The keyed entry point of the stage checks once too.
      const before = checks.count
      yield* Collect.collect(apiKey, [record("three")]).pipe(Effect.provideContext(context))
      expect(checks.count - before).toBe(1)
    })
  )
})

describe("CollectorHttp: a key store that cannot be read", () => {
  const storeError = new ApiKeys.KeyStoreUnavailable({
    reason: "Malformed",
    message: "secret spillway/api-keys: entry 2 (tenant acme): sha256 must be 64 hex characters"
  })
  /** Judges no key: every check fails as a store that cannot be read does. */
  const unreadableStore = ApiKeys.ApiKeys.of({ authorize: () => Effect.fail(storeError) })
  /** A request whose body must not be read: the answer comes from the key check alone. */
  const bodyNeverRead = (): CollectorHttp.Request => ({
    ...post([record("never")]),
    body: () => Effect.die(new Error("the body was read"))
  })

  it.effect("answers 503 with Retry-After and a JSON error, never 401, before reading the body", () =>
    Effect.gen(function* () {
      const { send, stored, checks } = setup({}, unreadableStore)
      const response = yield* send(bodyNeverRead())
      expect(response.status).toBe(503)
      expect(response.headers["retry-after"]).toBe("5")
      expect(response.headers["content-type"]).toBe("application/json; charset=utf-8")
      expect(response.body).toEqual({
        error: {
          code: "KeyStoreUnavailable",
          message:
            "the collector cannot check API keys right now; nothing was read or accepted: send the request again in 5 s"
        }
      })
      // The store's reason is for the logs: neither the secret nor the entry reaches the client.
      expect(JSON.stringify(response.body)).not.toContain("spillway/api-keys")
      expect(checks.count).toBe(1)
      expect(stored).toHaveLength(0)
    })
  )

  it.effect("takes Retry-After from the options and carries the CORS headers of an allowed origin", () =>
    Effect.gen(function* () {
      const { send } = setup(
        { retryAfterSeconds: 30, allowedOrigins: ["https://app.example.com"] },
        unreadableStore
      )
      const response = yield* send({
        ...bodyNeverRead(),
        headers: { ...post([]).headers, origin: "https://app.example.com" }
      })
      expect(response.status).toBe(503)
      expect(response.headers).toMatchObject({
        "retry-after": "30",
        "access-control-allow-origin": "https://app.example.com",
        "access-control-expose-headers": "retry-after"
      })
      expect(errorOf(response).message).toContain("send the request again in 30 s")
    })
  )

  it.effect("the keyed stage entry point ends with the same typed, retryable error", () =>
    Effect.gen(function* () {
      const { context, stored } = setup({}, unreadableStore)
      const error = yield* Effect.flip(
        Collect.collect(apiKey, [record("one")]).pipe(Effect.provideContext(context))
      )
      expect(error).toBe(storeError)
      expect(error._tag === "KeyStoreUnavailable" && error.isRetryable).toBe(true)
      expect(stored).toHaveLength(0)
    })
  )
})

describe("CollectorHttp: CORS", () => {
  const origins = ["https://app.example.com", "http://localhost:*"]

  it.effect("a preflight from an allowed origin is answered 204 with the CORS headers", () =>
    Effect.gen(function* () {
      const { send } = setup({ allowedOrigins: origins })
      for (const origin of ["https://app.example.com", "http://localhost:5173"]) {
        const response = yield* send({
          method: "OPTIONS",
          path: CollectorHttp.telemetryPath,
          headers: {
            Origin: origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key"
          }
        })
        expect(response.status).toBe(204)
        expect(response.body).toBeUndefined()
        expect(response.headers).toMatchObject({
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "POST",
          "access-control-allow-headers": "content-type, content-encoding, x-api-key",
          "access-control-max-age": "600",
          vary: "origin"
        })
      }
    })
  )

  it.effect("a preflight from any other origin, or with no origins configured, is refused 403", () =>
    Effect.gen(function* () {
      const preflight = (origin: string): CollectorHttp.Request => ({
        method: "OPTIONS",
        path: CollectorHttp.telemetryPath,
        headers: { origin, "access-control-request-method": "POST" }
      })
      for (const [options, origin] of [
        [{ allowedOrigins: origins }, "https://evil.example.com"],
        [{ allowedOrigins: origins }, "http://localhost.evil.example.com:80"],
        [{ allowedOrigins: origins }, "http://localhost:abc"],
        [{}, "https://app.example.com"]
      ] as const) {
        const response = yield* setup(options).send(preflight(origin))
        expect(response.status).toBe(403)
        expect(errorOf(response)).toEqual({
          code: "OriginNotAllowed",
          message: `browsers may not send telemetry from ${origin}: it is not one of the collector's allowed origins`
        })
        expect(response.headers["access-control-allow-origin"]).toBeUndefined()
      }
      // `*` allows any origin.
      expect((yield* setup({ allowedOrigins: ["*"] }).send(preflight("https://any.example"))).status).toBe(
        204
      )
    })
  )

  it.effect("answers to an allowed origin carry its CORS headers, errors included; others carry none", () =>
    Effect.gen(function* () {
      const { send } = setup({ allowedOrigins: origins })
      const ok = yield* send(post([record("c")], { origin: "https://app.example.com" }))
      expect(ok.status).toBe(202)
      expect(ok.headers).toMatchObject({
        "access-control-allow-origin": "https://app.example.com",
        "access-control-expose-headers": "retry-after",
        vary: "origin"
      })
      const refused = yield* send(
        post([record("c")], { origin: "https://app.example.com", "x-api-key": "no" })
      )
      expect(refused.status).toBe(401)
      expect(refused.headers["access-control-allow-origin"]).toBe("https://app.example.com")
      const other = yield* send(post([record("d")], { origin: "https://evil.example.com" }))
      expect(other.headers["access-control-allow-origin"]).toBeUndefined()
      // OPTIONS that is no preflight is a wrong method.
      const options = yield* send({ method: "OPTIONS", path: CollectorHttp.telemetryPath, headers: {} })
      expect(options.status).toBe(405)
      expect(options.headers.allow).toBe("POST, OPTIONS")
    })
  )
})

describe("CollectorHttp: limits derived from the deployment", () => {
  it("a default-size body, base64-encoded in its event, fits Lambda's synchronous payload", () => {
    const base64Bytes = Math.ceil(CollectorHttp.defaultMaxBodyBytes / 3) * 4
    expect(base64Bytes + CollectorHttp.eventOverheadBytes).toBeLessThanOrEqual(
      CollectorHttp.lambdaSyncPayloadBytes
    )
    expect(CollectorHttp.defaultMaxDecodedBytes).toBe(CollectorHttp.httpApiPayloadBytes)
  })

  it.effect("the 413 reasons name the limit and why", () =>
    Effect.gen(function* () {
      const { send } = setup()
      const big = `[${JSON.stringify(record("big"))}]`.padEnd(CollectorHttp.defaultMaxBodyBytes + 1, " ")
      expect(errorOf(yield* send(post(big)))).toEqual({
        code: "PayloadTooLarge",
        message:
          "the body is over 4194304 bytes (4 MiB), the collector's limit: base64-encoded (4/3 its size), a body must fit Lambda's 6 MB synchronous invocation payload"
      })
      const bomb = gzipSync(Buffer.alloc(CollectorHttp.defaultMaxDecodedBytes + 1, 0x20))
      expect(errorOf(yield* send(post(bomb, { "content-encoding": "gzip" })))).toEqual({
        code: "PayloadTooLarge",
        message:
          "once decompressed, the body is over 10485760 bytes (10 MiB), the collector's limit: a gzip body may carry what API Gateway's HTTP API carries uncompressed, 10 MB"
      })
      const custom = setup({ maxBodyBytes: 100 })
      expect(errorOf(yield* custom.send(post([record("x"), record("y")]))).message).toBe(
        "the body is over 100 bytes, the collector's limit"
      )
    })
  )
})

describe("CollectorHttp: reasons in plain words", () => {
  const valid = record("v")
  it.effect.each([
    [null, "record must be a JSON object"],
    [42, "record must be a JSON object"],
    ["cpu", "record must be a JSON object"],
    [[valid], "record must be a JSON object"],
    [{}, "id: is missing; type: is missing; timestamp: is missing; payload: is missing"],
    [{ ...valid, id: 7 }, "id: must be a string"],
    [{ ...valid, id: "" }, "id: must not be empty"],
    [{ ...valid, id: "x".repeat(257) }, "id: must be at most 256 characters (Kinesis partition key limit)"],
    [{ ...valid, id: "é".repeat(256) }, undefined],
    [{ ...valid, id: "€".repeat(200) }, "id: must be at most 512 UTF-8 bytes (OpenSearch _id)"],
    [{ ...valid, type: 42 }, "type: must be a string"],
    [{ ...valid, type: "" }, "type: must not be empty"],
    [{ ...valid, type: "t".repeat(129) }, "type: must be at most 128 characters"],
    [{ ...valid, payload: "x" }, "payload: must be a JSON object"],
    [{ ...valid, payload: [1] }, "payload: must be a JSON object"],
    [{ ...valid, payload: null }, "payload: must be a JSON object"],
    [
      { ...valid, timestamp: true },
      "timestamp: must be an ISO-8601 timestamp with a zone (e.g. 2026-11-24T10:00:00.000Z) or epoch milliseconds"
    ],
    [
      { ...valid, timestamp: null },
      "timestamp: must be an ISO-8601 timestamp with a zone (e.g. 2026-11-24T10:00:00.000Z) or epoch milliseconds"
    ],
    [
      { ...valid, timestamp: "yesterday" },
      "timestamp: must be an ISO-8601 timestamp with a zone, e.g. 2026-11-24T10:00:00.000Z"
    ],
    [
      { ...valid, timestamp: "2026-11-24T10:00:00" },
      "timestamp: must be an ISO-8601 timestamp with a zone, e.g. 2026-11-24T10:00:00.000Z"
    ],
    [{ ...valid, timestamp: "2026-13-45T10:00:00Z" }, "timestamp: is not a real date"],
    [{ ...valid, timestamp: 1_795_514_400_000.5 }, "timestamp: must be whole epoch milliseconds"],
    [
      { ...valid, timestamp: 1_795_514_400 },
      "timestamp: must be epoch milliseconds (at least 100000000000, March 1973): this looks like epoch seconds, multiply it by 1000"
    ],
    [{ ...valid, timestamp: 9e15 }, "timestamp: is after the year 9999"],
    [{ ...valid, timestamp: Date.UTC(10000, 0, 1) }, "timestamp: is after the year 9999"],
    [
      { id: "", type: 1, timestamp: "no", payload: [] },
      "id: must not be empty; type: must be a string; timestamp: must be an ISO-8601 timestamp with a zone, e.g. 2026-11-24T10:00:00.000Z; payload: must be a JSON object"
    ]
  ] as const)("record %j is refused with %j", ([input, reason]) =>
    Effect.gen(function* () {
      const { send } = setup()
      const response = yield* send(post([valid, input]))
      expect(response.status).toBe(202)
      const rejected = (response.body as CollectorHttp.AcceptedBody).rejected
      if (reason === undefined) expect(rejected).toEqual([])
      else expect(rejected).toEqual([{ index: 1, reason }])
      const all = JSON.stringify(rejected)
      for (const jargon of ["Expected", "readonly", "[x: string]", "unknown"])
        expect(all).not.toContain(jargon)
    })
  )

  const gzipped = gzipSync(Buffer.from(JSON.stringify([valid])))
  it.effect.each([
    ["not JSON", post("[{"), 400, "InvalidJson", "the body is not JSON: "],
    ["empty", post(""), 400, "InvalidJson", "the body is not JSON: "],
    [
      "not UTF-8",
      post(new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x5d])),
      400,
      "InvalidJson",
      "the body is not valid UTF-8"
    ],
    [
      "gzip without its header",
      post(gzipped),
      400,
      "InvalidJson",
      "the body is gzip-compressed but was sent without Content-Encoding: gzip; add that header"
    ],
    [
      "not gzip",
      post([valid], { "content-encoding": "gzip" }),
      400,
      "InvalidGzip",
      "the body is not valid gzip: "
    ],
    ["an object", post({ id: "x" }), 400, "InvalidBody", "body must be a JSON array of records"],
    ["an empty array", post([]), 400, "InvalidBody", "body must contain at least one record"],
    [
      "too many records",
      post(Array.from({ length: 1001 }, (_, i) => record(`r-${i}`))),
      400,
      "InvalidBody",
      "body has 1001 records; at most 1000 per request (send the rest in another request)"
    ],
    [
      "no key",
      post([valid], { "x-api-key": undefined }),
      401,
      "MissingApiKey",
      "missing API key (x-api-key header)"
    ],
    ["a wrong key", post([valid], { "x-api-key": "guess" }), 401, "UnknownApiKey", "unknown API key"],
    [
      "text/plain",
      post([valid], { "content-type": "text/plain" }),
      415,
      "UnsupportedMediaType",
      'content-type must be application/json (UTF-8), got "text/plain"'
    ],
    [
      "brotli",
      post([valid], { "content-encoding": "br" }),
      415,
      "UnsupportedContentEncoding",
      "content-encoding must be gzip or absent"
    ]
  ] as const)("a request with %s: %i %s", ([, request, status, code, message]) =>
    Effect.gen(function* () {
      const response = yield* setup().send(request)
      expect(response.status).toBe(status)
      const error = errorOf(response)
      expect(error.code).toBe(code)
      if (message.endsWith(": ")) expect(error.message.startsWith(message)).toBe(true)
      else expect(error.message).toBe(message)
    })
  )

  it.effect("no valid record: 400 listing every reason", () =>
    Effect.gen(function* () {
      const response = yield* setup().send(post([{ id: 1 }, null]))
      expect(response.status).toBe(400)
      expect(response.body).toEqual({
        error: { code: "NoValidRecords", message: "none of the 2 records is valid" },
        accepted: 0,
        rejected: [
          {
            index: 0,
            reason: "id: must be a string; type: is missing; timestamp: is missing; payload: is missing"
          },
          { index: 1, reason: "record must be a JSON object" }
        ]
      })
    })
  )
})
