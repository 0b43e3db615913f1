/**
 * The collector's HTTP contract (`CollectorHttp` in core), status by status, driven in-process
 * against the memory pipeline with time moving only through TestClock. Every error body is checked
 * for `{ error: { code, message } }`. What the stage answered is seen through `onCollected`.
 */
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { ApiKeys, CollectorHttp, Telemetry } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { Effect, Layer } from "effect"
import * as CollectorServer from "../src/collector/server.js"
import { apiKey, record, records, request, settle, whileClockRuns } from "./harness.js"

const setup = (options: CollectorHttp.Options = {}) =>
  Effect.gen(function* () {
    const pipeline = yield* MemoryPipeline.make()
    const context = pipeline.layers.collector
    const collected: Array<CollectorHttp.Collected> = []
    const send = (req: CollectorHttp.Request) =>
      CollectorHttp.handle(req, {
        ...options,
        onCollected: (c) => Effect.sync(() => void collected.push(c))
      }).pipe(Effect.provide(context))
    return { pipeline, send, collected }
  })

const expectError = (response: CollectorHttp.Response, status: number, code: CollectorHttp.ErrorCode) => {
  expect(response.status).toBe(status)
  expect(response.headers["content-type"]).toContain("application/json")
  expect(response.body).toMatchObject({ error: { code, message: expect.any(String) } })
}

/** A request whose body must never be read (the collector must answer from the headers alone). */
const unreadable = (headers: Readonly<Record<string, CollectorHttp.HeaderValue>>): CollectorHttp.Request => ({
  method: "POST",
  path: CollectorHttp.telemetryPath,
  headers,
  body: () => Effect.die(new Error("the body was read"))
})

describe("collector HTTP contract", () => {
  it.effect("202: every record accepted, then indexed", () =>
    Effect.gen(function* () {
      const { pipeline, send } = yield* setup()
      const response = yield* send(request({ body: records(50) }))
      expect(response.status).toBe(202)
      expect(response.body).toEqual({ accepted: 50, rejected: [], unavailable: [] })
      yield* settle(pipeline)
      expect(yield* pipeline.index.count).toBe(50)
    })
  )

  it.effect("202: partly valid, with the index and reason of each rejected record", () =>
    Effect.gen(function* () {
      const { send, collected } = yield* setup()
      const body = [record("ok-1"), { id: "bad", type: "cpu" }, record("ok-2"), 42]
      const response = yield* send(request({ body }))
      expect(response.status).toBe(202)
      expect(response.body).toMatchObject({ accepted: 2, unavailable: [] })
      const rejected = (response.body as CollectorHttp.AcceptedBody).rejected
      expect(rejected.map((r) => r.index)).toEqual([1, 3])
      expect(rejected[0]?.reason).toContain("timestamp")
      expect(collected.map((c) => c.result.accepted)).toEqual([2])
    })
  )

  it.effect("202: a gzip body is inflated and accepted", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const response = yield* send(request({ body: records(20), gzip: true }))
      expect(response.status).toBe(202)
      expect(response.body).toMatchObject({ accepted: 20 })
    })
  )

  it.effect("202: records parked in the fallback queue during a stream outage count as accepted", () =>
    Effect.gen(function* () {
      const { pipeline, send, collected } = yield* setup()
      yield* pipeline.stream.startOutage({ for: "10 seconds" })
      const response = yield* whileClockRuns(send(request({ body: records(10) })))
      expect(response.status).toBe(202)
      expect(collected[0]?.result.parked).toBe(10)
      yield* settle(pipeline)
      expect(yield* pipeline.index.count).toBe(10)
    })
  )

  it.effect(
    "202: an epoch-millisecond timestamp is indexed as ISO-8601, 1,000 gzipped 1 KB records are taken",
    () =>
      Effect.gen(function* () {
        const { pipeline, send } = yield* setup()
        const epoch = yield* send(request({ body: [{ ...record("epoch"), timestamp: 1_795_514_400_000 }] }))
        expect(epoch.body).toEqual({ accepted: 1, rejected: [], unavailable: [] })
        const kb = records(1000).map((r: ReturnType<typeof record>) => ({
          ...r,
          payload: { blob: "x".repeat(920) }
        }))
        expect(JSON.stringify(kb).length).toBeGreaterThan(1_000_000)
        expect((yield* send(request({ body: kb, gzip: true }))).body).toMatchObject({ accepted: 1000 })
        yield* settle(pipeline)
        expect((yield* pipeline.index.get("epoch"))?.source.timestamp).toBe("2026-11-24T10:00:00.000Z")
        expect(yield* pipeline.index.count).toBe(1001)
      })
  )

  it.effect("400: bodies that are not UTF-8 JSON, not an array, empty, or too many records", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      expectError(yield* send(request({ body: "[{" })), 400, "InvalidJson")
      expectError(yield* send(request({ body: "" })), 400, "InvalidJson")
      expectError(
        yield* send(request({ body: new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x5d]) })),
        400,
        "InvalidJson"
      )
      expectError(yield* send(request({ body: { id: "x" } })), 400, "InvalidBody")
      expectError(yield* send(request({ body: [] })), 400, "InvalidBody")
      expectError(yield* send(request({ body: records(1001) })), 400, "InvalidBody")
    })
  )

  it.effect("400: no valid record, still listing every reason", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const response = yield* send(request({ body: [{ id: 1 }, null, "x"] }))
      expectError(response, 400, "NoValidRecords")
      expect(response.body).toMatchObject({ accepted: 0 })
      expect((response.body as CollectorHttp.ErrorBody).rejected?.map((r) => r.index)).toEqual([0, 1, 2])
    })
  )

  it.effect("400: a body announced as gzip that is not gzip", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const notGzip = request({ body: records(1), headers: { "content-encoding": "gzip" } })
      expectError(yield* send(notGzip), 400, "InvalidGzip")
      const truncated = gzipSync(Buffer.from(JSON.stringify(records(100)))).subarray(0, 200)
      expectError(
        yield* send(request({ body: truncated, headers: { "content-encoding": "gzip" } })),
        400,
        "InvalidGzip"
      )
    })
  )

  it.effect("400 per record: nesting deeper than the limit is rejected alone, even 200,000 levels deep", () =>
    Effect.gen(function* () {
      const { pipeline, send } = yield* setup()
      const depth = 200_000
      const deep = `${"[".repeat(depth)}${"]".repeat(depth)}`
      const body = `[${JSON.stringify(record("fine"))},{"id":"deep","type":"cpu","timestamp":"2026-11-24T10:00:00.000Z","payload":{"a":${deep}}},${deep}]`
      const response = yield* send(request({ body }))
      expect(response.status).toBe(202)
      const rejected = (response.body as CollectorHttp.AcceptedBody).rejected
      expect(rejected.map((r) => r.index)).toEqual([1, 2])
      expect(rejected[0]?.reason).toContain("nests deeper than 20 levels")
      // Exactly at the limit is fine: the record (1) and its payload (2) count, 18 more levels fit.
      let payload: unknown = 1
      for (let i = 0; i < 18; i++) payload = { a: payload }
      const atLimit = yield* send(request({ body: [record("at-limit", payload as Record<string, unknown>)] }))
      expect(atLimit.body).toMatchObject({ accepted: 1, rejected: [] })
      yield* settle(pipeline)
      expect(yield* pipeline.index.get("fine")).toBeDefined()
      expect(yield* pipeline.index.get("at-limit")).toBeDefined()
    })
  )

  it.effect("401: missing or unknown key, answered before the body is read", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      expectError(yield* send(unreadable({ "content-type": "application/json" })), 401, "MissingApiKey")
      expectError(
        yield* send(unreadable({ "content-type": "application/json", "x-api-key": "" })),
        401,
        "MissingApiKey"
      )
      expectError(
        yield* send(unreadable({ "content-type": "application/json", "x-api-key": "guess" })),
        401,
        "UnknownApiKey"
      )
      // Sent twice: read as the comma-joined value, which is no key.
      expectError(
        yield* send(unreadable({ "content-type": "application/json", "x-api-key": [apiKey, apiKey] })),
        401,
        "UnknownApiKey"
      )
    })
  )

  it.effect("413: a body over the limit, raw, announced, or once decompressed (zip bomb)", () =>
    Effect.gen(function* () {
      const { send } = yield* setup({ maxBodyBytes: 16 * 1024, maxDecodedBytes: 1024 * 1024 })
      expectError(yield* send(request({ body: records(300) })), 413, "PayloadTooLarge")
      expectError(
        yield* send(
          unreadable({ "content-type": "application/json", "x-api-key": apiKey, "content-length": "20000" })
        ),
        413,
        "PayloadTooLarge"
      )
      const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20))
      expect(bomb.byteLength).toBeLessThan(16 * 1024)
      const response = yield* send(request({ body: bomb, headers: { "content-encoding": "gzip" } }))
      expectError(response, 413, "PayloadTooLarge")
      expect((response.body as CollectorHttp.ErrorBody).error.message).toContain("decompressed")
    })
  )

  it.effect("413: the default limit is 4 MiB (its base64 form fits Lambda's 6 MB payload)", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const justUnder = `[${JSON.stringify(record("big", { blob: "x".repeat(200_000) }))}]`.padEnd(
        4 * 1024 * 1024,
        " "
      )
      expect((yield* send(request({ body: justUnder }))).status).toBe(202)
      expectError(yield* send(request({ body: `${justUnder} ` })), 413, "PayloadTooLarge")
    })
  )

  it.effect("415: content types other than UTF-8 JSON, content codings other than gzip", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const withHeaders = (headers: Readonly<Record<string, CollectorHttp.HeaderValue>>) =>
        send({ ...request({ body: records(1) }), headers: { "x-api-key": apiKey, ...headers } })
      expectError(yield* withHeaders({}), 415, "UnsupportedMediaType")
      expectError(yield* withHeaders({ "content-type": "text/plain" }), 415, "UnsupportedMediaType")
      expectError(
        yield* withHeaders({ "content-type": "application/json; charset=iso-8859-1" }),
        415,
        "UnsupportedMediaType"
      )
      expectError(
        yield* withHeaders({ "content-type": ["application/json", "application/json"] }),
        415,
        "UnsupportedMediaType"
      )
      const br = yield* withHeaders({ "content-type": "application/json", "content-encoding": "br" })
      expectError(br, 415, "UnsupportedContentEncoding")
      expect(br.headers["accept-encoding"]).toBe("gzip")
      // Accepted spellings.
      for (const contentType of [
        "Application/JSON",
        "application/json; charset=UTF-8",
        'application/json;charset="utf-8"'
      ]) {
        expect((yield* withHeaders({ "content-type": contentType })).status).toBe(202)
      }
    })
  )

  it.effect(
    "503 with Retry-After only when neither the stream nor the fallback queue takes the records",
    () =>
      Effect.gen(function* () {
        const { pipeline, send } = yield* setup({ retryAfterSeconds: 7 })
        yield* pipeline.stream.startOutage()
        yield* pipeline.queue.startOutage()
        const response = yield* whileClockRuns(send(request({ body: [record("a"), record("b"), { id: 3 }] })))
        expectError(response, 503, "Unavailable")
        expect(response.headers["retry-after"]).toBe("7")
        expect(response.body).toMatchObject({ accepted: 0 })
        const body = response.body as CollectorHttp.ErrorBody
        expect(body.unavailable?.map((u) => u.index)).toEqual([0, 1])
        expect(body.rejected?.map((r) => r.index)).toEqual([2])
      })
  )

  it.effect("404 and 405 (with Allow), and the health check", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      expectError(yield* send(request({ url: "/v1/other" })), 404, "NotFound")
      expectError(yield* send(request({ url: "/v1/telemetry/" })), 404, "NotFound")
      const get = yield* send(request({ method: "GET" }))
      expectError(get, 405, "MethodNotAllowed")
      expect(get.headers.allow).toBe("POST, OPTIONS")
      const health = yield* send(request({ method: "GET", url: "/healthz" }))
      expect(health.status).toBe(200)
      expect(health.body).toEqual({ ok: true })
      expectError(yield* send(request({ method: "POST", url: "/healthz?x=1" })), 405, "MethodNotAllowed")
      // The query string does not change the route.
      expect((yield* send(request({ url: "/v1/telemetry?debug=1", body: records(1) }))).status).toBe(202)
    })
  )

  it.effect("reasons that echo what was sent are cut short", () =>
    Effect.gen(function* () {
      const { send } = yield* setup()
      const response = yield* send(request({ body: [{ ...record("x"), timestamp: "y".repeat(100_000) }] }))
      expectError(response, 400, "NoValidRecords")
      const reason = (response.body as CollectorHttp.ErrorBody).rejected?.[0]?.reason ?? ""
      expect(reason.length).toBeLessThanOrEqual(501)
    })
  )
})

describe("collector HTTP server", () => {
  it.live("answers a CORS preflight 204 with no body, and a cross-origin POST with its CORS headers", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make()
      const server = yield* CollectorServer.serve(
        { port: 0, allowedOrigins: ["http://localhost:*"] },
        pipeline.layers.collector
      )
      const url = `${server.url}${CollectorHttp.telemetryPath}`
      const preflight = yield* Effect.promise(() =>
        fetch(url, {
          method: "OPTIONS",
          headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" }
        })
      )
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:5173")
      expect(yield* Effect.promise(() => preflight.text())).toBe("")
      const posted = yield* Effect.promise(() =>
        fetch(url, {
          method: "POST",
          headers: {
            origin: "http://localhost:5173",
            "content-type": "application/json",
            "x-api-key": apiKey
          },
          body: JSON.stringify([record("from-a-browser")])
        })
      )
      expect(posted.status).toBe(202)
      expect(posted.headers.get("access-control-allow-origin")).toBe("http://localhost:5173")
      expect(yield* Effect.promise(() => posted.json())).toEqual({
        accepted: 1,
        rejected: [],
        unavailable: []
      })
    })
  )
})

describe("collector HTTP server: a key store that cannot be read", () => {
  it.live("relays the contract's 503 with Retry-After and its JSON error body", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make()
      const unreadableKeys = Layer.succeed(
        ApiKeys.ApiKeys,
        ApiKeys.ApiKeys.of({
          authorize: () =>
            Effect.fail(new ApiKeys.KeyStoreUnavailable({ reason: "Unavailable", message: "no answer" }))
        })
      )
      // The pipeline's stream and queue, with a key store that cannot be read in place of its keys.
      const server = yield* CollectorServer.serve(
        { port: 0, retryAfterSeconds: 7 },
        Layer.merge(pipeline.layers.collector, unreadableKeys)
      )
      const response = yield* Effect.promise(() =>
        fetch(`${server.url}${CollectorHttp.telemetryPath}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": apiKey },
          body: JSON.stringify([record("while-the-store-is-down")])
        })
      )
      expect(response.status).toBe(503)
      expect(response.headers.get("retry-after")).toBe("7")
      expect(response.headers.get("content-type")).toContain("application/json")
      expect(yield* Effect.promise(() => response.json())).toMatchObject({
        error: { code: "KeyStoreUnavailable", message: expect.stringContaining("again in 7 s") }
      })
      expect(yield* pipeline.stream.recordCount).toBe(0)
    })
  )
})

describe("nestsDeeperThan", () => {
  it("counts objects and arrays, and measures any depth without recursion", () => {
    expect(Telemetry.nestsDeeperThan(1, 0)).toBe(false)
    expect(Telemetry.nestsDeeperThan({}, 0)).toBe(true)
    expect(Telemetry.nestsDeeperThan({ a: [{}] }, 3)).toBe(false)
    expect(Telemetry.nestsDeeperThan({ a: [{}] }, 2)).toBe(true)
    expect(Telemetry.nestsDeeperThan(JSON.parse(`${"[".repeat(300_000)}${"]".repeat(300_000)}`), 20)).toBe(
      true
    )
  })
})
