/**
 * The event source mapping with `parallelizationFactor` > 1 (docs/aws-behaviour.md §2.1–§2.3):
 * several batches of one shard in flight at once, each partition key in one lane, order kept per
 * key, and a retried batch blocking only its own lane.
 */
import { describe, expect, it } from "@effect/vitest"
import type { LambdaEvents } from "@spillway/core"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as KinesisEventSource from "../src/KinesisEventSource.js"
import * as MemoryFailureDestination from "../src/MemoryFailureDestination.js"
import * as MemoryStream from "../src/MemoryStream.js"

const text = (value: string) => new TextEncoder().encode(value)
const payloadOf = (record: LambdaEvents.KinesisEventRecord) =>
  Buffer.from(record.kinesis.data, "base64").toString("utf8")

/** The first `count` keys `device-<n>` that go to `lane` of `factor`. */
const keysOfLane = (lane: number, factor: number, count: number) => {
  const keys: Array<string> = []
  for (let n = 0; keys.length < count; n++) {
    if (KinesisEventSource.laneOf(`device-${n}`, factor) === lane) keys.push(`device-${n}`)
  }
  return keys
}

interface Invocation {
  readonly at: number
  readonly payloads: ReadonlyArray<string>
  readonly keys: ReadonlyArray<string>
  readonly sequences: ReadonlyArray<string>
}

/**
 * A handler taking `millis` per invocation that fails while `fails` says so, noting what each
 * invocation carried and how many ran at once.
 */
const observingHandler = (millis: number, fails: (payloads: ReadonlyArray<string>) => boolean) => {
  const invocations: Array<Invocation> = []
  const succeeded: Array<Invocation> = []
  let running = 0
  let mostAtOnce = 0
  const handler: KinesisEventSource.Handler<never> = (event) =>
    Effect.gen(function* () {
      const invocation: Invocation = {
        at: yield* Clock.currentTimeMillis,
        payloads: event.Records.map(payloadOf),
        keys: event.Records.map((record) => record.kinesis.partitionKey),
        sequences: event.Records.map((record) => record.kinesis.sequenceNumber)
      }
      invocations.push(invocation)
      running++
      mostAtOnce = Math.max(mostAtOnce, running)
      yield* Effect.sleep(millis)
      running--
      if (fails(invocation.payloads)) return yield* Effect.fail("boom")
      succeeded.push(invocation)
    })
  return { handler, invocations, succeeded, mostAtOnce: () => mostAtOnce }
}

/** `count` records, each under a key of its own (`device-<i>`, payload `r<i>`). */
const putDistinctKeys = (stream: MemoryStream.Service, count: number) =>
  stream.putRecords(
    Array.from({ length: count }, (_, i) => ({ partitionKey: `device-${i}`, data: text(`r${i}`) }))
  )

const settle = (source: KinesisEventSource.EventSource, maxSeconds = 120) =>
  Effect.gen(function* () {
    for (let second = 0; second < maxSeconds; second++) {
      if (yield* source.isIdle) return
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.die(new Error(`event source still busy after ${maxSeconds} s`))
  })

describe("KinesisEventSource with a parallelization factor", () => {
  it("assigns a partition key to one lane, and spreads keys over every lane", () => {
    for (const factor of [2, 3, 10]) {
      const counts = new Array<number>(factor).fill(0)
      for (let n = 0; n < 10_000; n++) {
        const lane = KinesisEventSource.laneOf(`record-${n}`, factor)
        expect(lane).toBe(KinesisEventSource.laneOf(`record-${n}`, factor))
        counts[lane]!++
      }
      for (const count of counts)
        expect(Math.abs(count - 10_000 / factor)).toBeLessThan(0.1 * (10_000 / factor))
    }
    expect(KinesisEventSource.laneOf("anything", 1)).toBe(0)
  })

  it.effect("keeps as many batches of one shard in flight as the factor, never more", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const observed = observingHandler(500, () => false)
      const source = yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        parallelizationFactor: 3,
        batchSize: 10
      })
      yield* putDistinctKeys(stream, 300)
      yield* settle(source)
      expect(observed.mostAtOnce()).toBe(3)
      const delivered = observed.invocations.flatMap((invocation) => invocation.payloads)
      expect(delivered).toHaveLength(300)
      expect(new Set(delivered).size).toBe(300)
      // Every batch holds records of one lane only, at most a batch of them.
      for (const invocation of observed.invocations) {
        expect(invocation.payloads.length).toBeLessThanOrEqual(10)
        expect(new Set(invocation.keys.map((key) => KinesisEventSource.laneOf(key, 3))).size).toBe(1)
      }
      const tips = yield* stream.shardTips
      expect(yield* source.checkpoints).toEqual(tips)
    })
  )

  it.effect("with a factor of 1, one batch at a time as before", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const observed = observingHandler(500, () => false)
      const source = yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        batchSize: 10
      })
      yield* putDistinctKeys(stream, 100)
      yield* settle(source)
      expect(observed.mostAtOnce()).toBe(1)
      expect(observed.invocations.flatMap((invocation) => invocation.payloads)).toEqual(
        Array.from({ length: 100 }, (_, i) => `r${i}`)
      )
    })
  )

  it.effect("a retried batch blocks its own lane only: the other lane goes on, and order holds per key", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const [stuckKey, ...laneZeroKeys] = keysOfLane(0, 2, 3)
      const laneOneKeys = keysOfLane(1, 2, 3)
      // "sticky" fails its invocation three times, then goes through.
      let stickyFailures = 0
      const observed = observingHandler(100, (payloads) => {
        if (!payloads.includes("sticky") || stickyFailures === 3) return false
        stickyFailures++
        return true
      })
      const source = yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        parallelizationFactor: 2,
        batchSize: 100,
        bisectBatchOnFunctionError: true,
        retryDelayMillis: 1000
      })
      yield* stream.putRecords([{ partitionKey: stuckKey!, data: text("sticky") }])
      for (let tick = 0; tick < 8; tick++) {
        yield* TestClock.adjust("500 millis")
        yield* stream.putRecords(
          [...laneZeroKeys, ...laneOneKeys, stuckKey!].map((key) => ({
            partitionKey: key,
            data: text(`${key}:${tick}`)
          }))
        )
      }
      yield* settle(source)

      expect(stickyFailures).toBe(3)
      const doneAt = new Map<string, number>()
      for (const invocation of observed.succeeded) {
        for (const payload of invocation.payloads) doneAt.set(payload, invocation.at)
      }
      expect(doneAt.size).toBe(1 + 8 * 6)
      const stickyDone = doneAt.get("sticky")!
      // The sticky record's lane waited out three retries; the other lane's records written
      // meanwhile were done within a poll or two of being written, long before it.
      expect(stickyDone).toBeGreaterThanOrEqual(3000)
      for (const key of laneOneKeys) {
        expect(doneAt.get(`${key}:0`)!).toBeLessThan(2000)
        expect(doneAt.get(`${key}:0`)!).toBeLessThan(stickyDone)
      }
      // The stuck lane's records are done only after the sticky record, in order per key.
      for (const key of [stuckKey!, ...laneZeroKeys]) {
        expect(doneAt.get(`${key}:0`)!).toBeGreaterThanOrEqual(stickyDone)
      }
      const sequencesByKey = new Map<string, Array<bigint>>()
      for (const invocation of observed.succeeded) {
        invocation.keys.forEach((key, i) => {
          const list = sequencesByKey.get(key) ?? []
          list.push(BigInt(invocation.sequences[i]!))
          sequencesByKey.set(key, list)
        })
      }
      for (const [key, sequences] of sequencesByKey) {
        const sorted = [...sequences].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        expect(sequences, key).toEqual(sorted)
      }
    })
  )

  it.effect(
    "the shard's checkpoint is its slowest lane's: it stays before a record still being retried",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const [stuckKey] = keysOfLane(0, 2, 1)
        const [freeKey] = keysOfLane(1, 2, 1)
        let blocked = true
        const observed = observingHandler(10, (payloads) => blocked && payloads.includes("stuck"))
        const source = yield* KinesisEventSource.start(stream, observed.handler, {
          startingPosition: "TRIM_HORIZON",
          parallelizationFactor: 2
        })
        const outcomes = yield* stream.putRecords([
          { partitionKey: stuckKey!, data: text("stuck") },
          { partitionKey: freeKey!, data: text("free") }
        ])
        const [stuck, free] = outcomes.map((outcome) =>
          outcome._tag === "Stored" ? outcome.sequenceNumber : ""
        )
        yield* TestClock.adjust("5 seconds")
        expect(observed.succeeded.flatMap((invocation) => invocation.payloads)).toEqual(["free"])
        expect(yield* source.isIdle).toBe(false)
        const shardId = stream.shardIds[0]!
        // The stuck record is the shard's first: nothing of the shard is done up to a record yet,
        // although the other lane is done with the second.
        expect(BigInt(stuck!) < BigInt(free!)).toBe(true)
        expect((yield* source.checkpoints)[shardId]).toBeUndefined()
        blocked = false
        yield* settle(source)
        expect((yield* source.checkpoints)[shardId]).toBe(free)
      })
  )

  it.effect("sends a lane's discarded batch to the on-failure destination while the other lane goes on", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 2 })
      const destination = yield* MemoryFailureDestination.make
      const observed = observingHandler(10, (payloads) => payloads.includes("poison"))
      const source = yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        parallelizationFactor: 4,
        batchSize: 50,
        bisectBatchOnFunctionError: true,
        reportBatchItemFailures: true,
        maximumRetryAttempts: 1,
        onFailure: destination
      })
      const records = Array.from({ length: 400 }, (_, i) => ({
        partitionKey: `device-${i}`,
        data: text(i === 123 ? "poison" : `r${i}`)
      }))
      const outcomes = yield* stream.putRecords(records)
      yield* settle(source)
      const done = observed.succeeded.flatMap((invocation) => invocation.payloads)
      expect(done).toHaveLength(399)
      expect(done).not.toContain("poison")
      const reports = yield* destination.records
      expect(reports).toHaveLength(1)
      const poison = outcomes[123]!
      expect(poison._tag).toBe("Stored")
      if (poison._tag !== "Stored") return
      expect(reports[0]!.KinesisBatchInfo).toMatchObject({
        shardId: poison.shardId,
        startSequenceNumber: poison.sequenceNumber,
        endSequenceNumber: poison.sequenceNumber,
        batchSize: 1
      })
      expect(reports[0]!.requestContext.condition).toBe("RetryAttemptsExhausted")
      expect(yield* source.checkpoints).toEqual(yield* stream.shardTips)
    })
  )

  it.effect("on an enhanced fan-out consumer: each lane is pushed its records and invokes at once", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const observed = observingHandler(300, () => false)
      const [laneZero] = keysOfLane(0, 2, 1)
      const [laneOne] = keysOfLane(1, 2, 1)
      const source = yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        consumer: "enhancedFanOut",
        parallelizationFactor: 2
      })
      yield* stream.putRecords([
        { partitionKey: laneZero!, data: text("a0") },
        { partitionKey: laneOne!, data: text("a1") }
      ])
      yield* TestClock.adjust("100 millis")
      yield* stream.putRecords([
        { partitionKey: laneZero!, data: text("b0") },
        { partitionKey: laneOne!, data: text("b1") }
      ])
      yield* TestClock.adjust("2 seconds")
      // Both lanes are pushed a0/a1 at 70 ms, and b0/b1 as soon as their first batch is done.
      const byTime = observed.invocations.map((invocation) => [invocation.at, invocation.payloads] as const)
      expect(byTime).toEqual([
        [70, ["a0"]],
        [70, ["a1"]],
        [370, ["b0"]],
        [370, ["b1"]]
      ])
      expect(yield* source.isIdle).toBe(true)
      const counters = yield* source.counters
      expect(counters.invocations).toBe(4)
      expect(counters.recordsSucceeded).toBe(4)
    })
  )

  it.effect("flushes a lane's batch once it holds a batch, without waiting out the batching window", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const observed = observingHandler(10, () => false)
      const [laneZero] = keysOfLane(0, 2, 1)
      yield* stream.putRecords(
        ["a", "b"].map((payload) => ({ partitionKey: laneZero!, data: text(payload) }))
      )
      yield* KinesisEventSource.start(stream, observed.handler, {
        startingPosition: "TRIM_HORIZON",
        parallelizationFactor: 2,
        batchSize: 2,
        maximumBatchingWindowInSeconds: 5
      })
      yield* TestClock.adjust("1 millis")
      expect(observed.invocations.map((invocation) => [invocation.at, invocation.payloads])).toEqual([
        [0, ["a", "b"]]
      ])
    })
  )

  it.effect(
    "a lane whose keys are rare skips a long run of other lanes' records at once, not a poll at a time",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const observed = observingHandler(0, () => false)
        const [rare] = keysOfLane(9, 10, 1)
        const others = keysOfLane(0, 10, 1)
        // 900 records of lane 0, then one of lane 9: lane 9 reads pages of 10 records, 10 pages a
        // read, so waiting a poll between reads would find it after 9 s.
        for (let call = 0; call < 2; call++) {
          yield* stream.putRecords(
            Array.from({ length: 450 }, (_, i) => ({ partitionKey: others[0]!, data: text(`o${call}-${i}`) }))
          )
        }
        yield* stream.putRecords([{ partitionKey: rare!, data: text("rare") }])
        yield* KinesisEventSource.start(stream, observed.handler, {
          startingPosition: "TRIM_HORIZON",
          parallelizationFactor: 10,
          batchSize: 1
        })
        yield* TestClock.adjust("1 millis")
        expect(observed.invocations.find((invocation) => invocation.payloads.includes("rare"))?.at).toBe(0)
      })
  )

  it.effect("refuses a factor outside 1–10, naming the option", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const { handler } = observingHandler(0, () => false)
      for (const parallelizationFactor of [0, 11, 1.5]) {
        const error = yield* Effect.flip(
          KinesisEventSource.start(stream, handler, {
            startingPosition: "TRIM_HORIZON",
            parallelizationFactor
          })
        )
        expect(error._tag).toBe("InvalidEventSourceConfig")
        expect(error.option).toBe("parallelizationFactor")
        expect(error.message).toBe(
          `parallelizationFactor must be an integer in 1..10, got ${parallelizationFactor}`
        )
      }
      yield* KinesisEventSource.start(stream, handler, {
        startingPosition: "LATEST",
        parallelizationFactor: 10
      })
    })
  )
})
