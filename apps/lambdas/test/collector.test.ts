/**
 * The collector function over a memory pipeline's collector layer, called with API Gateway HTTP
 * API (payload 2.0) and function URL events, plain and base64 bodies; and answering exactly as
 * `spillway dev` does: the same requests sent to the dev server (`@spillway/cli`'s
 * `CollectorServer`, the adapter `spillway dev` serves, over real HTTP on loopback) and to the
 * function, over the same pipeline, get the same status, headers and JSON body.
 */
import { describe, expect, it } from "@effect/vitest"
import { CollectorServer, CollectorHttp as LocalCollector } from "@spillway/cli"
import { CollectorHttp, type LambdaEvents } from "@spillway/core"
import { MemoryPipeline } from "@spillway/memory"
import { Harness } from "@spillway/testing"
import { Effect, Fiber } from "effect"
import * as Collector from "../src/functions/Collector.js"
import {
  capture,
  context,
  functionUrlEvent,
  gzip,
  type HttpOptions,
  httpApiEvent,
  invocationError,
  invoke,
  onTestClock
} from "./fixtures/Events.js"

const body = (response: LambdaEvents.HttpResponse) =>
  response.body === undefined ? undefined : (JSON.parse(response.body) as Record<string, unknown>)

const setup = Effect.gen(function* () {
  const pipeline = yield* MemoryPipeline.make({ backup: false, processor: { pollIntervalMillis: 3_600_000 } })
  const out = capture()
  const handler = Collector.make(yield* onTestClock(pipeline.layers.collector), {
    output: out.output,
    shutdown: false,
    env: {}
  })
  yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
  return { pipeline, handler, out }
})

describe("collector function", () => {
  it.effect("accepts records from an HTTP API event, plain body", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup
      const event = httpApiEvent({ body: JSON.stringify(Harness.records(3)) })
      const response = yield* invoke(handler, event, yield* context())
      expect(response.statusCode).toBe(202)
      expect(response.isBase64Encoded).toBe(false)
      expect(response.headers["content-type"]).toContain("application/json")
      expect(body(response)).toEqual({ accepted: 3, rejected: [], unavailable: [] })
      expect(yield* pipeline.stream.recordCount).toBe(3)
      expect(out.logs()).toContainEqual(
        expect.objectContaining({
          level: "INFO",
          message: "202",
          status: 202,
          accepted: 3,
          function: "collector"
        })
      )
    })
  )

  it.effect(
    "accepts a function URL event with a base64 body, and a gzip body (base64, as API Gateway sends binary)",
    () =>
      Effect.gen(function* () {
        const { pipeline, handler } = yield* setup
        const ctx = yield* context()
        const plain = yield* invoke(
          handler,
          functionUrlEvent({ body: JSON.stringify(Harness.records(2, "u")), base64: true }),
          ctx
        )
        expect(plain.statusCode).toBe(202)
        const zipped = yield* invoke(
          handler,
          httpApiEvent({
            body: gzip(Harness.records(4, "z")),
            headers: {
              "content-type": "application/json",
              "x-api-key": Harness.apiKey,
              "content-encoding": "gzip"
            }
          }),
          ctx
        )
        expect(body(zipped)).toEqual({ accepted: 4, rejected: [], unavailable: [] })
        expect(yield* pipeline.stream.recordCount).toBe(6)
      })
  )

  it.effect("an API with a named stage: the stage's prefix is not part of the route", () =>
    Effect.gen(function* () {
      const { handler } = yield* setup
      const event = httpApiEvent({ stage: "prod", body: JSON.stringify(Harness.records(1)) })
      expect(event.rawPath).toBe("/prod/v1/telemetry")
      expect((yield* invoke(handler, event, yield* context())).statusCode).toBe(202)
      const health = yield* invoke(
        handler,
        httpApiEvent({ stage: "prod", method: "GET", path: "/healthz" }),
        yield* context()
      )
      expect(body(health)).toEqual({ ok: true })
    })
  )

  it.effect("503 with Retry-After when neither the stream nor the fallback queue takes the records", () =>
    Effect.gen(function* () {
      const { pipeline, handler, out } = yield* setup
      yield* pipeline.stream.startOutage()
      yield* pipeline.queue.startOutage()
      const fiber = yield* Effect.forkChild(
        invoke(handler, httpApiEvent({ body: JSON.stringify(Harness.records(2)) }), yield* context())
      )
      // The collector tries the fallback queue a few times (Schedules.fallbackSend) before answering.
      yield* Harness.whileClockRuns(Fiber.join(fiber), "100 millis")
      const response = yield* Fiber.join(fiber)
      expect(response.statusCode).toBe(503)
      expect(response.headers["retry-after"]).toBe("5")
      expect(body(response)).toMatchObject({ error: { code: "Unavailable" }, accepted: 0 })
      expect(out.logs()).toContainEqual(
        expect.objectContaining({ level: "ERROR", status: 503, code: "Unavailable" })
      )
    })
  )

  it.effect("allows browsers from ALLOWED_ORIGINS only", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make({
        backup: false,
        processor: { pollIntervalMillis: 3_600_000 }
      })
      const handler = Collector.make(yield* onTestClock(pipeline.layers.collector), {
        output: capture().output,
        shutdown: false,
        env: { ALLOWED_ORIGINS: "https://app.example.com, http://localhost:*" }
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
      const preflight = (origin: string) =>
        httpApiEvent({ method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } })
      const ctx = yield* context()
      const allowed = yield* invoke(handler, preflight("https://app.example.com"), ctx)
      expect(allowed.statusCode).toBe(204)
      expect(allowed.body).toBeUndefined()
      expect(allowed.headers["access-control-allow-origin"]).toBe("https://app.example.com")
      expect((yield* invoke(handler, preflight("http://localhost:5173"), ctx)).statusCode).toBe(204)
      expect((yield* invoke(handler, preflight("https://evil.example.com"), ctx)).statusCode).toBe(403)
    })
  )

  it.effect("an event that is not an HTTP request fails the invocation, saying why", () =>
    Effect.gen(function* () {
      const { handler } = yield* setup
      const { isBase64Encoded: _, ...noFlag } = httpApiEvent()
      const error = yield* invocationError(handler, noFlag, yield* context())
      expect(error.name).toBe("InvalidEvent")
      expect(error.message).toContain(
        "collector takes an API Gateway HTTP API (payload format 2.0) or Lambda function URL event"
      )
      expect(error.message).toContain("isBase64Encoded: is missing")
      const v1 = yield* invocationError(handler, { ...httpApiEvent(), version: "1.0" }, yield* context())
      expect(v1.message).toContain('version: Expected "2.0"')
    })
  )
})

/** The same request for the dev server (fetch) and for the function (an HTTP API or function URL event). */
interface Case {
  readonly name: string
  readonly method?: string
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array
  readonly functionUrl?: boolean
}

const valid = JSON.stringify(Harness.records(2, "parity"))
const big = JSON.stringify(
  Harness.records(1, "big").map((r) => ({ ...r, payload: { blob: "x".repeat(1_100_000) } }))
)
const json = { "content-type": "application/json", "x-api-key": Harness.apiKey }

const cases: ReadonlyArray<Case> = [
  { name: "202 accepted", headers: json, body: valid },
  {
    name: "202 with a rejected record",
    headers: json,
    body: JSON.stringify([Harness.record("ok"), { id: "bad" }]),
    functionUrl: true
  },
  {
    name: "202 gzip",
    headers: { ...json, "content-encoding": "gzip" },
    body: gzip(Harness.records(3, "gz"))
  },
  {
    name: "400 gzip without content-encoding",
    headers: json,
    body: gzip(Harness.records(1, "gz")),
    functionUrl: true
  },
  { name: "400 not JSON", headers: json, body: "[{" },
  { name: "400 not an array", headers: json, body: '{"id":"x"}', functionUrl: true },
  { name: "400 no valid record", headers: json, body: '[{"id":""}]' },
  { name: "401 missing key", headers: { "content-type": "application/json" }, body: valid },
  { name: "401 unknown key", headers: { ...json, "x-api-key": "nope" }, body: valid, functionUrl: true },
  {
    name: "413 over the limit",
    headers: { ...json, "content-length": String(Buffer.byteLength(big)) },
    body: big
  },
  { name: "415 content type", headers: { ...json, "content-type": "text/plain" }, body: valid },
  {
    name: "415 content coding",
    headers: { ...json, "content-encoding": "br" },
    body: valid,
    functionUrl: true
  },
  { name: "405 wrong method", method: "GET", headers: json },
  { name: "404 unknown path", method: "POST", path: "/v2/nothing", headers: json, body: valid },
  { name: "200 health", method: "GET", path: "/healthz" },
  {
    name: "204 preflight",
    method: "OPTIONS",
    headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    functionUrl: true
  },
  { name: "202 from a local page", headers: { ...json, origin: "http://localhost:5173" }, body: valid }
]

describe("collector function and spillway dev", () => {
  it.live("answer the same requests with the same status, headers and body", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make({ backup: false })
      // `spillway dev`'s own settings (1 MiB raw and decompressed, pages on this machine), given to both.
      const http: CollectorHttp.Options = {
        maxBodyBytes: LocalCollector.defaultMaxBodyBytes,
        maxDecodedBytes: LocalCollector.defaultMaxBodyBytes,
        allowedOrigins: LocalCollector.localOrigins
      }
      const server = yield* CollectorServer.serve({ port: 0, ...http }, pipeline.layers.collector)
      const handler = Collector.make(pipeline.layers.collector, {
        http,
        output: capture().output,
        shutdown: false,
        env: {}
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
      const ctx = yield* context()
      for (const c of cases) {
        const dev = yield* Effect.promise(async () => {
          const response = await fetch(`${server.url}${c.path ?? CollectorHttp.telemetryPath}`, {
            method: c.method ?? "POST",
            headers: c.headers ?? {},
            ...(c.body === undefined ? {} : { body: c.body })
          })
          const text = await response.text()
          return {
            status: response.status,
            headers: response.headers,
            body: text === "" ? undefined : JSON.parse(text)
          }
        })
        const options: HttpOptions = {
          method: c.method ?? "POST",
          path: c.path ?? CollectorHttp.telemetryPath,
          headers: c.headers ?? {},
          ...(c.body === undefined ? {} : { body: c.body })
        }
        // The fixtures add what the gateway adds (host, user agent); the case's headers win.
        const event = c.functionUrl === true ? functionUrlEvent(options) : httpApiEvent(options)
        const lambda = yield* invoke(handler, event, ctx)
        expect({ case: c.name, status: lambda.statusCode }).toEqual({ case: c.name, status: dev.status })
        expect({ case: c.name, body: body(lambda) }).toEqual({ case: c.name, body: dev.body })
        for (const [name, value] of Object.entries(lambda.headers)) {
          expect({ case: c.name, header: name, value: dev.headers.get(name) }).toEqual({
            case: c.name,
            header: name,
            value
          })
        }
        expect(c.name.slice(0, 3)).toBe(String(lambda.statusCode))
      }
    })
  )
})
