/**
 * The cleaner against a stream that refuses entries, and the metrics stage against a batch
 * delivered twice: a session's events stay in order, each exactly once; what could not be put is
 * reported by raw sequence number; nothing is counted twice.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clean, DedupCache, Derive, LambdaEvents, MetricLog, RecordStream } from "@spillway/core"
import { ClickstreamFixtures } from "@spillway/testing"
import { Effect, Fiber, Layer, Random } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryStream from "../../src/MemoryStream.js"

const start = Date.UTC(2026, 10, 27, 8, 0, 0)

const onClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < 10_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

const rawRecords = (
  events: ReadonlyArray<ClickstreamFixtures.GeneratedEvent>
): Array<RecordStream.StreamRecord> =>
  events.map((e, i) => ({
    shardId: "shardId-000000000000",
    sequenceNumber: String(49_650_000_000_000_000_000_000n + BigInt(i) * 7n),
    partitionKey: e.sessionId,
    data: new TextEncoder().encode(JSON.stringify(e.body)),
    approximateArrivalTimestamp: e.sentAt
  }))

const cleanEventsBySession = (records: ReadonlyArray<RecordStream.StreamRecord>) => {
  const sessions = new Map<string, Array<string>>()
  for (const record of records) {
    const { sessionId, events } = JSON.parse(new TextDecoder().decode(record.data)) as {
      sessionId: string
      events: Array<{ eventId: string }>
    }
    expect(record.partitionKey).toBe(sessionId)
    sessions.set(sessionId, [...(sessions.get(sessionId) ?? []), ...events.map((e) => e.eventId)])
  }
  return sessions
}

describe("clean", () => {
  it.effect(
    "keeps each session's events in order, each once, while the stream throttles half the entries",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start + 10_000)
        const stream = yield* MemoryStream.MemoryStream
        yield* stream.failRandomEntries(0.5)
        const events = ClickstreamFixtures.generate({
          seed: 3,
          events: 400,
          start,
          concurrentSessions: 20,
          botShare: 0,
          invalidShare: 0,
          unwantedShare: 0,
          tooOldShare: 0
        })
        // Small records, so a session's events span many records and their order across calls matters.
        const config = {
          ...Clean.defaultConfig,
          streamLimits: { ...RecordStream.defaultLimits, maxBytesPerRecord: 1200 }
        }
        const result = yield* onClock(Clean.clean(rawRecords(events), config))
        expect(result.failed).toEqual([])
        expect(result.kept).toBe(400)
        expect(result.put).toBeGreaterThan(100)
        expect((yield* stream.stats).injectedEntryFailures).toBeGreaterThan(0)
        const stored = cleanEventsBySession(yield* stream.records)
        const sent = new Map<string, Array<string>>()
        for (const e of events)
          sent.set(e.sessionId, [...(sent.get(e.sessionId) ?? []), e.body.eventId as string])
        // Across shards the records of one session all sit on one shard, in put order.
        expect(Object.fromEntries(stored)).toEqual(Object.fromEntries(sent))
      }).pipe(
        Random.withSeed(11),
        Effect.provide(
          MemoryStream.layerMemory({
            shardCount: 3,
            recordsPerSecondPerShard: 1_000_000,
            bytesPerSecondPerShard: 1 << 30
          })
        )
      )
  )

  it.effect("reports the raw records it could not put, lowest first, when the stream stays down", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start + 10_000)
      const stream = yield* MemoryStream.MemoryStream
      yield* stream.startOutage()
      const events = ClickstreamFixtures.generate({
        seed: 4,
        events: 30,
        start,
        concurrentSessions: 5,
        botShare: 0,
        invalidShare: 0,
        unwantedShare: 0,
        tooOldShare: 0
      })
      const records = rawRecords(events)
      const event = {
        Records: records.map((r) =>
          LambdaEvents.fromStreamRecord(r, {
            streamArn: stream.streamArn,
            region: "us-east-1",
            roleArn: "arn:aws:iam::123456789012:role/r"
          })
        )
      }
      const response = yield* onClock(Clean.cleanKinesisEvent(event))
      expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(
        records.map((r) => r.sequenceNumber)
      )
      expect(response.result.kept).toBe(0)
      expect(yield* stream.recordCount).toBe(0)
    }).pipe(Effect.provide(MemoryStream.layerMemory()))
  )
})

describe("derive", () => {
  it.effect("counts a batch delivered again only once, and a session once per minute across batches", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start + 10_000)
      const stream = yield* MemoryStream.MemoryStream
      const events = ClickstreamFixtures.generate({
        seed: 5,
        events: 300,
        start,
        concurrentSessions: 10,
        botShare: 0,
        invalidShare: 0,
        unwantedShare: 0,
        tooOldShare: 0
      })
      yield* onClock(Clean.clean(rawRecords(events)))
      const cleanRecords = yield* stream.records
      const lines: Array<string> = []
      const log = Layer.succeed(MetricLog.MetricLog, {
        write: (batch) => Effect.sync(() => void lines.push(...batch))
      })
      const half = Math.ceil(cleanRecords.length / 2)
      const run = (records: ReadonlyArray<RecordStream.StreamRecord>) =>
        Derive.derive(records).pipe(Effect.provide(log))
      yield* run(cleanRecords.slice(0, half))
      yield* run(cleanRecords.slice(half))
      const again = yield* run(cleanRecords)
      expect(again).toMatchObject({ duplicates: 300, samples: [], lines: 0 })
      const sums = new Map<string, number>()
      for (const line of lines) {
        const { m, t, e, v } = JSON.parse(line) as { m: string; t: Array<string>; e: number; v: number }
        const key = `${m}|${t.join(",")}|${e}`
        sums.set(key, (sums.get(key) ?? 0) + v)
      }
      expect(Object.fromEntries(sums)).toEqual(Object.fromEntries(ClickstreamFixtures.expected(events)))
    }).pipe(
      Effect.provide(
        Layer.merge(MemoryStream.layerMemory({ recordsPerSecondPerShard: 1_000_000 }), DedupCache.layer())
      )
    )
  )
})
