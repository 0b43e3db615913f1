/**
 * The Datadog sink over Effect's `HttpClient` against a loopback server behaving like Datadog's
 * metrics intake (`support/FakeDatadogIntake.ts`): the `MetricsSink` conformance suite, then the
 * forwarder and the retrier through it — 429s with `X-RateLimit-*` headers, a 500, a request the
 * intake never answers, a 413 for an oversized payload, a refused key — with every point arriving
 * exactly once, every request gzipped, keyed and within the documented limits, and every
 * accepted body a v2 `MetricPayload`.
 */
import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { CloudWatchLogs, DedupCache, Forward, MetricLine, MetricsSink, RetrySpool } from "@spillway/core"
import { MemoryMetricSpool } from "@spillway/memory"
import { Conformance } from "@spillway/testing"
import { Clock, Context, Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import * as DatadogApiKey from "../src/DatadogApiKey.js"
import * as DatadogMetricsSink from "../src/DatadogMetricsSink.js"
import * as FakeDatadogIntake from "./support/FakeDatadogIntake.js"

const apiKey = "0123456789abcdef0123456789abcdef"

class Intake extends Context.Service<Intake, FakeDatadogIntake.FakeIntake>()("test/FakeDatadogIntake") {}

const sink = (
  intake: FakeDatadogIntake.FakeIntake,
  options: {
    readonly key?: string
    readonly limits?: MetricsSink.Limits
    readonly timeoutMillis?: number
  } = {}
) =>
  DatadogMetricsSink.make({
    url: intake.url,
    timeoutMillis: options.timeoutMillis ?? 2000,
    ...(options.limits === undefined ? {} : { limits: options.limits })
  }).pipe(
    Effect.provide(Layer.merge(FetchHttpClient.layer, DatadogApiKey.layerStatic(options.key ?? apiKey)))
  )

Conformance.metricsSinkSuite({
  name: "DatadogMetricsSink on a loopback intake",
  clock: "live",
  layer: () =>
    Layer.effectContext(
      Effect.gen(function* () {
        const intake = yield* FakeDatadogIntake.start(apiKey)
        const service = yield* sink(intake)
        return Context.make(MetricsSink.MetricsSink, service).pipe(
          Context.add(Intake, intake),
          Context.add(
            Conformance.MetricsSinkFaults,
            Conformance.MetricsSinkFaults.of({
              failNext: (count, reason, retryAfterMillis) =>
                Effect.sync(() => {
                  for (let i = 0; i < count; i++) {
                    intake.plan(
                      reason === "Throttled"
                        ? FakeDatadogIntake.rateLimited(retryAfterMillis / 1000)
                        : { _tag: "Respond", status: reason === "Unavailable" ? 503 : 400 }
                    )
                  }
                }),
              clear: Effect.sync(() => intake.clearPlans())
            })
          )
        )
      })
    ),
  accepted: Intake.use((intake) => Effect.sync(() => intake.acceptedPoints())),
  faults: Conformance.MetricsSinkFaults,
  timeout: 20_000
})

let ids = 0
const subscriptionData = (lines: ReadonlyArray<string>) =>
  CloudWatchLogs.encodeData({
    messageType: "DATA_MESSAGE",
    owner: "123456789012",
    logGroup: "/aws/lambda/clickstream-metrics",
    logStream: "2026/12/02/[$LATEST]abc",
    subscriptionFilters: ["to-forwarder"],
    logEvents: lines.map((message) => ({
      id: String(++ids).padStart(56, "0"),
      timestamp: Date.now(),
      message
    }))
  })

const forwarderLayer = (service: MetricsSink.Service) =>
  Layer.mergeAll(
    Layer.succeed(MetricsSink.MetricsSink, service),
    MemoryMetricSpool.layerMemory(),
    DedupCache.layer()
  )

const keyOf = (p: { metric: string; tags: ReadonlyArray<string>; timestamp: number }) =>
  `${p.metric}|${p.tags.join(",")}|${p.timestamp}`

/** Every request well formed: gzipped, keyed, a v2 payload, within the documented limits. */
const expectWellFormed = (intake: FakeDatadogIntake.FakeIntake) => {
  for (const request of intake.received) {
    expect(request.contentEncoding).toBe("gzip")
    expect(request.apiKey).toBe(apiKey)
    expect(request.payload, "a v2 MetricPayload").toBeDefined()
    expect(request.compressedBytes).toBeLessThanOrEqual(MetricsSink.datadogV2Limits.maxCompressedBytes)
    expect(request.decompressedBytes).toBeLessThanOrEqual(MetricsSink.datadogV2Limits.maxUncompressedBytes)
    const points = request.payload!.series.reduce((n, s) => n + s.points.length, 0)
    expect(points).toBeLessThanOrEqual(MetricsSink.datadogV2Limits.maxPointsPerPayload)
  }
}

describe("the forwarder against the loopback intake", () => {
  it.live(
    "delivers every point exactly once through a 429 (waiting out its reset), a 500 and an unanswered request",
    () =>
      Effect.gen(function* () {
        const intake = yield* FakeDatadogIntake.start(apiKey)
        intake.plan(
          FakeDatadogIntake.rateLimited(1),
          { _tag: "Respond", status: 500 },
          { _tag: "Hold", millis: 800 }
        )
        const service = yield* sink(intake, { timeoutMillis: 400 })
        const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        const lines = Array.from({ length: 25_000 }, (_, i) =>
          MetricLine.encodeDatadogLine({
            metric: `shop.m${i % 50}`,
            kind: "count",
            value: i,
            timestamp: now - (i % 300),
            tags: [`n:${Math.floor(i / 50)}`]
          })
        )
        const result = yield* Forward.forward([subscriptionData(lines)]).pipe(
          Effect.provide(forwarderLayer(service))
        )
        expect(result).toMatchObject({ points: 25_000, delivered: 25_000, spooled: 0, parked: 0 })
        expect(intake.received.map((r) => r.status)).toEqual([429, 500, "held", 202, 202, 202])
        // The try after the 429 came no sooner than the reset it named.
        expect(intake.received[1]!.at - intake.received[0]!.at).toBeGreaterThanOrEqual(1000)
        const accepted = intake.acceptedPoints()
        expect(accepted).toHaveLength(25_000)
        expect(new Set(accepted.map(keyOf)).size).toBe(25_000)
        expect(accepted.reduce((n, p) => n + p.value, 0)).toBe((25_000 * 24_999) / 2)
        expectWellFormed(intake)
      }),
    30_000
  )

  it.live(
    "splits a payload the intake answers 413 and delivers both halves",
    () =>
      Effect.gen(function* () {
        const intake = yield* FakeDatadogIntake.start(apiKey)
        // A sink that believes larger payloads are fine: only the intake's 413 stops it.
        const service = yield* sink(intake, {
          limits: {
            maxPointsPerPayload: 10_000,
            maxUncompressedBytes: 5_242_880,
            maxCompressedBytes: 10_000_000
          }
        })
        const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        const lines = Array.from({ length: 6000 }, (_, i) =>
          MetricLine.encodeDatadogLine({
            metric: "shop.noise",
            kind: "count",
            value: 1,
            timestamp: now,
            tags: [`r:${randomBytes(90).toString("base64")}`, `i:${i}`]
          })
        )
        const result = yield* Forward.forward([subscriptionData(lines)]).pipe(
          Effect.provide(forwarderLayer(service))
        )
        expect(result).toMatchObject({ points: 6000, delivered: 6000, spooled: 0 })
        expect(intake.received[0]!.status).toBe(413)
        expect(intake.received[0]!.compressedBytes).toBeGreaterThan(
          MetricsSink.datadogV2Limits.maxCompressedBytes
        )
        expect(intake.received.slice(1).every((r) => r.status === 202)).toBe(true)
        expect(new Set(intake.acceptedPoints().map(keyOf)).size).toBe(6000)
        expect(intake.acceptedPoints()).toHaveLength(6000)
      }),
    30_000
  )

  it.live("spools what a long rate limit refuses, and the retrier delivers it later, once", () =>
    Effect.gen(function* () {
      const intake = yield* FakeDatadogIntake.start(apiKey)
      const service = yield* sink(intake)
      const layer = forwarderLayer(service)
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      intake.plan(FakeDatadogIntake.rateLimited(60))
      const lines = Array.from({ length: 30 }, (_, i) =>
        MetricLine.encodeDatadogLine({
          metric: "shop.orders",
          kind: "count",
          value: i + 1,
          timestamp: now - i * 60,
          tags: ["currency:EUR"]
        })
      )
      yield* Effect.gen(function* () {
        const spool = yield* MemoryMetricSpool.MemoryMetricSpool
        const result = yield* Forward.forward([subscriptionData(lines)])
        expect(result).toMatchObject({ delivered: 0, spooled: 30, requests: 1 })
        expect(yield* spool.size("pending")).toBe(1)
        expect(intake.acceptedPoints()).toEqual([])
        const run = yield* RetrySpool.retrySpool()
        expect(run).toMatchObject({ delivered: 1, deliveredPoints: 30 })
        expect(yield* spool.size("pending")).toBe(0)
        expect(intake.acceptedPoints().reduce((n, p) => n + p.value, 0)).toBe(465)
        expect(intake.acceptedPoints()).toHaveLength(30)
        expectWellFormed(intake)
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("never counts a refused key (403) as delivered: the points are spooled", () =>
    Effect.gen(function* () {
      const intake = yield* FakeDatadogIntake.start(apiKey)
      const service = yield* sink(intake, { key: "not-the-key" })
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const result = yield* Forward.forward([
        subscriptionData([
          MetricLine.encodeDatadogLine({
            metric: "shop.orders",
            kind: "count",
            value: 1,
            timestamp: now,
            tags: []
          })
        ])
      ]).pipe(Effect.provide(forwarderLayer(service)))
      expect(result).toMatchObject({ delivered: 0, spooled: 1, requests: 1 })
      expect(intake.received.map((r) => r.status)).toEqual([403])
    })
  )
})

describe("DatadogMetricsSink configuration", () => {
  it("sends to api.<site>, or to DD_METRICS_URL when set", () => {
    expect(DatadogMetricsSink.seriesUrl("datadoghq.eu")).toBe("https://api.datadoghq.eu/api/v2/series")
    expect(DatadogMetricsSink.reasonOfStatus(408)).toBe("Unavailable")
    expect(DatadogMetricsSink.reasonOfStatus(413)).toBe("TooLarge")
    expect(DatadogMetricsSink.reasonOfStatus(401)).toBe("AccessDenied")
    expect(DatadogMetricsSink.reasonOfStatus(302)).toBe("InvalidRequest")
  })

  it("reads the key from a secret's text or its api_key field", () => {
    expect(DatadogApiKey.parseSecret(` ${apiKey}\n`)).toBe(apiKey)
    expect(DatadogApiKey.parseSecret(JSON.stringify({ api_key: apiKey }))).toBe(apiKey)
    expect(DatadogApiKey.parseSecret("{}")).toBeUndefined()
    expect(DatadogApiKey.parseSecret("two words")).toBeUndefined()
  })
})

describe("the intake's check against Datadog's own client model", () => {
  it("accepts a v2 series payload and refuses one the model cannot read", () => {
    const series = { metric: "clickstream.events", type: 1, points: [{ timestamp: 1764669600, value: 3 }] }
    expect(FakeDatadogIntake.acceptedByOfficialModel({ series: [{ ...series, tags: ["env:prod"] }] })).toBe(
      true
    )
    expect(FakeDatadogIntake.acceptedByOfficialModel({ series: [{ ...series, type: 9 }] })).toBe(false)
    expect(FakeDatadogIntake.acceptedByOfficialModel({ series: [{ ...series, points: undefined }] })).toBe(
      false
    )
    expect(
      FakeDatadogIntake.acceptedByOfficialModel({
        series: [{ ...series, points: [{ timestamp: "now", value: 3 }] }]
      })
    ).toBe(false)
    expect(FakeDatadogIntake.acceptedByOfficialModel({ series: [{ ...series, metric: 7 }] })).toBe(false)
  })
})
