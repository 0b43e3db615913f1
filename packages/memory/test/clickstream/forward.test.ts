/**
 * The forwarder and the retrier on the in-memory intake and spool, on `TestClock`: what cannot be
 * read is counted and the rest goes on; every point ends delivered once or in the spool before
 * the stage answers; 429 resets are honoured; a spool that cannot be written fails the stage.
 */
import { gzipSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { CloudWatchLogs, DedupCache, Forward, MetricLine, RetrySpool } from "@spillway/core"
import { Clock, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryMetricSpool from "../../src/MemoryMetricSpool.js"
import * as MemoryMetricsIntake from "../../src/MemoryMetricsIntake.js"

const start = Date.UTC(2026, 10, 27, 8, 0, 0)
const minute = Math.floor(start / 60_000) * 60

const services = (intake: MemoryMetricsIntake.Options = {}) =>
  Layer.mergeAll(MemoryMetricsIntake.layerMemory(intake), MemoryMetricSpool.layerMemory(), DedupCache.layer())

/** Runs `effect` while moving the clock, as the retries sleep on it. */
const onClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < 10_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

const line = (
  metric: string,
  value: number,
  tags: ReadonlyArray<string> = ["platform:web"],
  timestamp = minute
) => MetricLine.encodeDatadogLine({ metric, kind: "count", value, timestamp, tags })

let ids = 0
const data = (messages: ReadonlyArray<string>, stream = "2026/11/27/[$LATEST]abc") =>
  CloudWatchLogs.encodeData({
    messageType: "DATA_MESSAGE",
    owner: "123456789012",
    logGroup: "/aws/lambda/clickstream-metrics",
    logStream: stream,
    subscriptionFilters: ["to-forwarder"],
    logEvents: messages.map((message) => ({ id: String(++ids).padStart(56, "0"), timestamp: start, message }))
  })

describe("forward", () => {
  it.effect("counts and reports what it cannot read, and forwards the rest of the batch", () =>
    Effect.gen(function* () {
      const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
      yield* TestClock.setTime(start)
      const good = data([
        "START RequestId: 8f2d Version: $LATEST",
        line("clickstream.events", 3),
        '{"timestamp":"2026-11-27T08:00:00Z","level":"INFO","message":"derived 200 events"}',
        '{"e":1795766400,"m":"clickstream.events","t":["platform:web"],"v":',
        '{"e":1795766400,"m":"clickstream.events","t":["platform:web"],"v":"seven"}',
        line("clickstream.events", 4),
        line("clickstream.checkouts", 1),
        "END RequestId: 8f2d"
      ])
      const truncatedGzip = gzipSync(Buffer.from('{"messageType":"DATA_MESSAGE"}'))
        .subarray(0, 12)
        .toString("base64")
      const result = yield* Forward.forward([
        "this is not base64!",
        good,
        truncatedGzip,
        gzipSync(Buffer.from("not json")).toString("base64"),
        gzipSync(Buffer.from('{"messageType":"DATA_MESSAGE","logEvents":"nope"}')).toString("base64"),
        CloudWatchLogs.encodeData({
          messageType: "CONTROL_MESSAGE",
          owner: "CloudwatchLogs",
          logGroup: "",
          logStream: "",
          subscriptionFilters: [],
          logEvents: [
            { id: "1", timestamp: start, message: "CWL CONTROL MESSAGE: Checking health of destination" }
          ]
        })
      ])
      expect(result.invalidPayloads.map((p) => p.reason.split(":")[0])).toEqual([
        "NotBase64",
        "NotGzip",
        "NotJson",
        "NotASubscriptionMessage"
      ])
      expect(result.controlMessages).toBe(1)
      expect(result).toMatchObject({
        logEvents: 8,
        metricLines: 3,
        otherLines: 3,
        malformedLines: 2,
        points: 2,
        delivered: 2,
        spooled: 0
      })
      expect(result.malformed.map((m) => m.reason)).toEqual([
        "truncated or invalid JSON",
        "v (the value) must be a finite number"
      ])
      expect(result.malformed.every((m) => m.logEventId !== undefined)).toBe(true)
      const totals = MemoryMetricsIntake.totals(yield* intake.points)
      expect(Object.fromEntries(totals)).toEqual({
        [`clickstream.events|platform:web|${minute}`]: 7,
        [`clickstream.checkouts|platform:web|${minute}`]: 1
      })
    }).pipe(Effect.provide(services()))
  )

  it.effect(
    "spools what the intake will not take before answering, and the retrier delivers it later, once",
    () =>
      Effect.gen(function* () {
        const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
        const spool = yield* MemoryMetricSpool.MemoryMetricSpool
        yield* TestClock.setTime(start)
        yield* intake.startOutage()
        const lines = Array.from({ length: 50 }, (_, i) =>
          line("clickstream.events", i + 1, [`event_type:t${i % 5}`])
        )
        const result = yield* onClock(Forward.forward([data(lines)]))
        expect(result).toMatchObject({ points: 5, delivered: 0, spooled: 5, parked: 0 })
        expect(result.requests).toBeGreaterThan(3)
        expect(yield* spool.size("pending")).toBe(1)
        expect(yield* intake.points).toEqual([])

        // Still down: the retrier keeps the entry and reports its age.
        yield* TestClock.adjust("1 minute")
        const stillDown = yield* onClock(RetrySpool.retrySpool())
        expect(stillDown).toMatchObject({ listed: 1, delivered: 0 })
        expect(stillDown.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(60)
        expect(yield* spool.size("pending")).toBe(1)

        yield* intake.endOutage
        const run = yield* onClock(RetrySpool.retrySpool())
        expect(run).toMatchObject({
          listed: 1,
          delivered: 1,
          deliveredPoints: 5,
          oldestPendingAgeSeconds: undefined
        })
        expect(yield* spool.size("pending")).toBe(0)
        const totals = MemoryMetricsIntake.totals(yield* intake.points)
        expect([...totals.values()].reduce((a, b) => a + b, 0)).toBe((50 * 51) / 2)
        expect(yield* intake.points).toHaveLength(5)
      }).pipe(Effect.provide(services()))
  )

  it.effect("waits out a 429's reset before trying again, and delivers once", () =>
    Effect.gen(function* () {
      const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
      yield* TestClock.setTime(start)
      yield* intake.failNext(2, "Throttled", { retryAfterMillis: 3000 })
      const result = yield* onClock(Forward.forward([data([line("clickstream.events", 1)])]))
      expect(result).toMatchObject({ delivered: 1, spooled: 0, requests: 3 })
      const [point] = yield* intake.points
      expect(point!.acceptedAt - start).toBeGreaterThanOrEqual(6000)
      expect(yield* intake.points).toHaveLength(1)
    }).pipe(Effect.provide(services()))
  )

  it.effect("does not wait for a reset past the cap inside an invocation: spools at once", () =>
    Effect.gen(function* () {
      const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
      yield* TestClock.setTime(start)
      yield* intake.failNext(1, "Throttled", { retryAfterMillis: 60_000 })
      const result = yield* onClock(Forward.forward([data([line("clickstream.events", 1)])]))
      expect(result).toMatchObject({ delivered: 0, spooled: 1, requests: 1 })
    }).pipe(Effect.provide(services()))
  )

  it.effect("splits a payload the intake finds too large (413) and delivers every half", () =>
    Effect.gen(function* () {
      const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
      yield* TestClock.setTime(start)
      const lines = Array.from({ length: 400 }, (_, i) => line(`clickstream.m${i}`, i, [`k:${i}`]))
      const result = yield* onClock(Forward.forward([data(lines)]))
      expect(result).toMatchObject({ points: 400, delivered: 400, spooled: 0 })
      const stats = yield* intake.stats
      expect(stats.refused).toBeGreaterThan(0)
      expect(stats.points).toBe(400)
    }).pipe(
      Effect.provide(
        services({
          limits: { maxPointsPerPayload: 10_000, maxUncompressedBytes: 5_242_880, maxCompressedBytes: 3000 }
        })
      )
    )
  )

  it.effect(
    "fails when neither the intake nor the spool takes the points, so the redelivery sends them all",
    () =>
      Effect.gen(function* () {
        const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
        const spool = yield* MemoryMetricSpool.MemoryMetricSpool
        yield* TestClock.setTime(start)
        yield* intake.startOutage()
        yield* spool.startOutage()
        const payload = data([line("clickstream.events", 2), line("clickstream.events", 3, ["platform:ios"])])
        const failed = yield* onClock(Effect.flip(Forward.forward([payload])))
        expect(failed._tag).toBe("SpoolUnavailable")
        expect(failed.points).toBe(2)
        yield* intake.endOutage
        yield* spool.endOutage
        const again = yield* onClock(Forward.forward([payload]))
        expect(again).toMatchObject({ duplicateLogEvents: 0, delivered: 2 })
        // A third delivery of the same events (CloudWatch is at-least-once) is skipped.
        const third = yield* Forward.forward([payload])
        expect(third).toMatchObject({ duplicateLogEvents: 2, delivered: 0 })
        expect(yield* intake.points).toHaveLength(2)
      }).pipe(Effect.provide(services()))
  )

  it.effect("parks points outside the intake's window instead of sending them or losing them", () =>
    Effect.gen(function* () {
      const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
      const spool = yield* MemoryMetricSpool.MemoryMetricSpool
      yield* TestClock.setTime(start)
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const result = yield* Forward.forward([
        data([line("clickstream.events", 1, ["platform:web"], now - 2 * 3600), line("clickstream.events", 1)])
      ])
      expect(result).toMatchObject({ delivered: 1, parked: 1, spooled: 0 })
      expect((yield* spool.entries("parked"))[0]!.entry.reason).toMatch(/outside the intake's window/)
      expect((yield* intake.stats).droppedOutsideWindow).toBe(0)
    }).pipe(Effect.provide(services()))
  )

  it.effect(
    "the retrier counts an unreadable entry and leaves it, and stops at the first entry the intake still refuses",
    () =>
      Effect.gen(function* () {
        const intake = yield* MemoryMetricsIntake.MemoryMetricsIntake
        const spool = yield* MemoryMetricSpool.MemoryMetricSpool
        yield* TestClock.setTime(start)
        const corrupt = yield* spool.corrupt("{not an entry")
        yield* TestClock.adjust("1 second")
        yield* intake.startOutage()
        yield* onClock(Forward.forward([data([line("clickstream.a", 1)])]))
        yield* onClock(Forward.forward([data([line("clickstream.b", 1)])]))
        expect(yield* spool.size("pending")).toBe(3)
        const run = yield* onClock(RetrySpool.retrySpool())
        expect(run.unreadable.map((u) => u.key)).toEqual([corrupt])
        expect(run.delivered).toBe(0)
        expect(run.stopped).toMatch(/^Unavailable/)
        expect((yield* intake.stats).requests).toBeLessThan(30)
        yield* intake.endOutage
        const next = yield* onClock(RetrySpool.retrySpool())
        expect(next).toMatchObject({ delivered: 2, deliveredPoints: 2 })
        expect(yield* spool.size("pending")).toBe(1)
      }).pipe(Effect.provide(services()))
  )
})
