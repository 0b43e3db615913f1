import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { RecordStream } from "@spillway/core"
import { Effect, Random, Result } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryStream from "../src/MemoryStream.js"

const entry = (partitionKey: string, data: string | number = "x"): RecordStream.PutEntry => ({
  partitionKey,
  data: typeof data === "number" ? new Uint8Array(data) : new TextEncoder().encode(data)
})

const stored = (outcomes: ReadonlyArray<RecordStream.PutOutcome>) =>
  outcomes.flatMap((outcome) => (outcome._tag === "Stored" ? [outcome] : []))
const failed = (outcomes: ReadonlyArray<RecordStream.PutOutcome>) =>
  outcomes.flatMap((outcome) => (outcome._tag === "Failed" ? [outcome] : []))

/** Expected routing computed independently of the module: node's MD5, and boundaries from arithmetic. */
const md5 = (key: string) => BigInt(`0x${createHash("md5").update(Buffer.from(key, "utf8")).digest("hex")}`)
const expectedShard = (key: string, shardCount: number) => {
  const width = 2n ** 128n / BigInt(shardCount)
  const index = Number(md5(key) / width)
  return `shardId-${String(Math.min(index, shardCount - 1)).padStart(12, "0")}`
}

/** Finds a partition key that routes to `shardId`, so tests can aim at one shard. */
const keyFor = (shardId: string, shardCount: number, prefix = "key") => {
  for (let i = 0; ; i++) if (expectedShard(`${prefix}-${i}`, shardCount) === shardId) return `${prefix}-${i}`
}

const reasonOf = <A>(result: Result.Result<A, RecordStream.RecordStreamError>) =>
  Result.isFailure(result) ? result.failure.reason : "succeeded"

describe("MemoryStream routing", () => {
  it("splits the hash space exactly as the Kinesis docs show for two shards", () => {
    expect(MemoryStream.describeShards(2)).toEqual([
      {
        shardId: "shardId-000000000000",
        startingHashKey: "0",
        endingHashKey: "170141183460469231731687303715884105727"
      },
      {
        shardId: "shardId-000000000001",
        startingHashKey: "170141183460469231731687303715884105728",
        endingHashKey: "340282366920938463463374607431768211455"
      }
    ])
    const three = MemoryStream.describeShards(3)
    expect(three.at(-1)?.endingHashKey).toBe((2n ** 128n - 1n).toString())
    for (let i = 1; i < three.length; i++) {
      expect(BigInt(three[i]!.startingHashKey)).toBe(BigInt(three[i - 1]!.endingHashKey) + 1n)
    }
  })

  it("hashes the partition key's UTF-8 bytes with MD5, big-endian", () => {
    expect(MemoryStream.hashKeyOf("a")).toBe(BigInt("0x0cc175b9c0f1b6a831c399e269772661"))
    for (const key of ["", "user-1", "é", "日本語", "🚀 rocket", "x".repeat(256)]) {
      expect(MemoryStream.hashKeyOf(key)).toBe(md5(key))
    }
  })

  it.effect("routes each record to the shard whose range holds its key's hash", () =>
    Effect.gen(function* () {
      for (const shardCount of [1, 2, 4, 7]) {
        const stream = yield* MemoryStream.make({ shardCount })
        const keys = Array.from({ length: 300 }, (_, i) => `device-${i}-${"é".repeat(i % 3)}`)
        const outcomes = yield* stream.putRecords(keys.map((key) => entry(key)))
        expect(stored(outcomes).map((outcome) => outcome.shardId)).toEqual(
          keys.map((key) => expectedShard(key, shardCount))
        )
      }
      // "a" hashes below 2^127 and so lands on the first of two shards; check against the doc's boundary.
      const two = yield* MemoryStream.make({ shardCount: 2 })
      const [a] = yield* two.putRecords([entry("a")])
      expect(md5("a") <= 170141183460469231731687303715884105727n).toBe(true)
      expect(a).toMatchObject({ _tag: "Stored", shardId: "shardId-000000000000" })
    })
  )

  it.effect("names the stream by ARN", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({
        streamName: "events",
        region: "eu-west-1",
        accountId: "111122223333"
      })
      expect(stream.streamArn).toBe("arn:aws:kinesis:eu-west-1:111122223333:stream/events")
      expect(stream.shardIds).toEqual([
        "shardId-000000000000",
        "shardId-000000000001",
        "shardId-000000000002",
        "shardId-000000000003"
      ])
    })
  )
})

describe("MemoryStream ordering", () => {
  it.effect("keeps per-shard order with strictly increasing, realistic sequence numbers", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 3 })
      const keys = ["alpha", "beta", "gamma", "delta", "epsilon"]
      for (let call = 0; call < 10; call++) {
        yield* stream.putRecords(keys.map((key) => entry(key, `${key}:${call}`)))
        yield* TestClock.adjust("100 millis")
      }
      const records = yield* stream.records
      expect(records).toHaveLength(50)
      for (const shardId of stream.shardIds) {
        const shard = records.filter((record) => record.shardId === shardId)
        const sequences = shard.map((record) => BigInt(record.sequenceNumber))
        for (let i = 1; i < sequences.length; i++) expect(sequences[i]! > sequences[i - 1]!).toBe(true)
        for (const record of shard) expect(record.sequenceNumber).toMatch(/^[1-9]\d{55}$/)
      }
      // Per key, records come back in the order they were written.
      for (const key of keys) {
        const payloads = records
          .filter((record) => record.partitionKey === key)
          .map((record) => new TextDecoder().decode(record.data))
        expect(payloads).toEqual(Array.from({ length: 10 }, (_, call) => `${key}:${call}`))
      }
    })
  )

  it.effect("stamps records with the Clock's time and copies their bytes", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      yield* TestClock.adjust("1234 millis")
      const data = new TextEncoder().encode("original")
      yield* stream.putRecords([{ partitionKey: "k", data }])
      data.fill(0)
      const [record] = yield* stream.records
      expect(record?.approximateArrivalTimestamp).toBe(1234)
      expect(new TextDecoder().decode(record?.data)).toBe("original")
    })
  )
})

describe("MemoryStream whole-call limits", () => {
  it.effect("refuses calls that break the PutRecords limits, as InvalidRequest", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      const attempt = (entries: ReadonlyArray<RecordStream.PutEntry>) =>
        Effect.result(stream.putRecords(entries)).pipe(Effect.map(reasonOf))
      expect(yield* attempt([])).toBe("InvalidRequest")
      expect(yield* attempt(Array.from({ length: 501 }, (_, i) => entry(`k${i}`)))).toBe("InvalidRequest")
      expect(yield* attempt([entry("k", 1024 * 1024)])).toBe("InvalidRequest") // data + 1 key byte > 1 MiB
      expect(yield* attempt(Array.from({ length: 6 }, (_, i) => entry(`k${i}`, 1_000_000)))).toBe(
        "InvalidRequest"
      )
      expect(yield* attempt([entry("")])).toBe("InvalidRequest")
      expect(yield* attempt([entry("k".repeat(257))])).toBe("InvalidRequest")
      expect(yield* stream.recordCount).toBe(0)
      // The boundaries themselves are accepted.
      expect(yield* attempt(Array.from({ length: 500 }, (_, i) => entry(`k${i}`)))).toBe("succeeded")
      expect(yield* attempt([entry("k".repeat(256)), entry("k", 1024 * 1024 - 1)])).toBe("succeeded")
      const error = yield* Effect.flip(stream.putRecords([]))
      expect(error.isRetryable).toBe(false)
    })
  )

  it.effect("uses the configured limits", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({
        limits: { maxEntriesPerCall: 2, maxBytesPerCall: 100, maxBytesPerRecord: 60 }
      })
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("a"), entry("b"), entry("c")])))).toBe(
        "InvalidRequest"
      )
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("a", 59), entry("b", 59)])))).toBe(
        "InvalidRequest"
      )
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("a", 59)])))).toBe("succeeded")
    })
  )
})

describe("MemoryStream per-shard throughput", () => {
  it.effect("fails entries beyond 1,000 records/s to one shard and recovers the next second", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 2 })
      const hot = keyFor("shardId-000000000000", 2)
      const cold = keyFor("shardId-000000000001", 2)
      const first = yield* stream.putRecords(Array.from({ length: 500 }, () => entry(hot)))
      const second = yield* stream.putRecords(Array.from({ length: 500 }, () => entry(hot)))
      expect(failed([...first, ...second])).toHaveLength(0)
      // The 1,001st record this second fails; the other shard, in the same call, does not care.
      const third = yield* stream.putRecords([entry(hot), entry(cold), entry(hot)])
      expect(third.map((outcome) => outcome._tag)).toEqual(["Failed", "Stored", "Failed"])
      expect(failed(third)[0]?.errorCode).toBe("ProvisionedThroughputExceededException")
      expect(failed(third)[0]?.message).toContain("shardId-000000000000")
      expect((yield* stream.stats).throttledEntries).toBe(2)
      yield* TestClock.adjust("1 second")
      const later = yield* stream.putRecords([entry(hot), entry(hot)])
      expect(failed(later)).toHaveLength(0)
      expect(yield* stream.recordCount).toBe(1003)
    })
  )

  it.effect("fails entries beyond 1 MiB/s to one shard, counting partition key bytes", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const key = "k"
      // (600,000 + 1) + (448,574 + 1) bytes, the key byte counted each time, is exactly the 1 MiB budget.
      const full = yield* stream.putRecords([entry(key, 600_000), entry(key, 448_574)])
      expect(failed(full)).toHaveLength(0)
      const over = yield* stream.putRecords([entry(key, 1)])
      expect(over[0]).toMatchObject({ _tag: "Failed", errorCode: "ProvisionedThroughputExceededException" })
      yield* TestClock.adjust("1 second")
      const next = yield* stream.putRecords([entry(key, 700_000), entry(key, 700_000)])
      expect(next.map((outcome) => outcome._tag)).toEqual(["Stored", "Failed"])
    })
  )
})

describe("MemoryStream fault injection", () => {
  it.effect("fails a random fraction of entries, and the failed outcomes are exactly the injected ones", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      yield* stream.failRandomEntries(0.2)
      let failures = 0
      for (let call = 0; call < 10; call++) {
        const outcomes = yield* stream.putRecords(
          Array.from({ length: 100 }, (_, i) => entry(`k${call}-${i}`))
        )
        failures += failed(outcomes).length
        for (const outcome of failed(outcomes)) expect(outcome.errorCode).toBe("InternalFailure")
      }
      const stats = yield* stream.stats
      expect(stats.injectedEntryFailures).toBe(failures)
      expect(failures).toBeGreaterThan(100)
      expect(failures).toBeLessThan(300)
      expect(yield* stream.recordCount).toBe(1000 - failures)
    }).pipe(Random.withSeed("memory-stream-seed"))
  )

  it.effect("applies an injector function per entry, in request order", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      yield* stream.injectEntryFailures((_, index) =>
        index % 3 === 1 ? "ProvisionedThroughputExceededException" : undefined
      )
      const outcomes = yield* stream.putRecords(Array.from({ length: 6 }, (_, i) => entry(`k${i}`)))
      expect(outcomes.map((outcome) => outcome._tag)).toEqual([
        "Stored",
        "Failed",
        "Stored",
        "Stored",
        "Failed",
        "Stored"
      ])
      yield* stream.clearFaults
      expect(failed(yield* stream.putRecords([entry("a"), entry("b")]))).toHaveLength(0)
      expect((yield* stream.stats).injectedEntryFailures).toBe(2)
    })
  )

  it.effect("fails every call during an outage window, then recovers", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      yield* stream.putRecords([entry("before")])
      yield* stream.startOutage({ for: "10 seconds" })
      const error = yield* Effect.flip(stream.putRecords([entry("k")]))
      expect(error.reason).toBe("Unavailable")
      expect(error.isRetryable).toBe(true)
      const [record] = yield* stream.records
      const range = {
        shardId: record!.shardId,
        startSequenceNumber: "0",
        endSequenceNumber: record!.sequenceNumber
      }
      expect(reasonOf(yield* Effect.result(stream.readRange(range)))).toBe("Unavailable")
      expect(reasonOf(yield* Effect.result(stream.getRecords(record!.shardId, { limit: 10 })))).toBe(
        "Unavailable"
      )
      yield* TestClock.adjust("9999 millis")
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("k")])))).toBe("Unavailable")
      yield* TestClock.adjust("1 millis")
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("k")])))).toBe("succeeded")

      // Without an end, the outage lasts until cleared.
      yield* stream.startOutage()
      yield* TestClock.adjust("1 hour")
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("k")])))).toBe("Unavailable")
      yield* stream.clearFaults
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("k")])))).toBe("succeeded")
      expect((yield* stream.stats).rejectedCalls).toBe(5)
      expect(yield* stream.recordCount).toBe(3)
    })
  )

  it.effect("throttles whole calls until a given time", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      yield* stream.startThrottling({ until: 5000 })
      const error = yield* Effect.flip(stream.putRecords([entry("k")]))
      expect(error.reason).toBe("Throttled")
      expect(error.isRetryable).toBe(true)
      yield* TestClock.adjust("5 seconds")
      expect(reasonOf(yield* Effect.result(stream.putRecords([entry("k")])))).toBe("succeeded")
    })
  )
})

describe("MemoryStream reads and retention", () => {
  it.effect("reads an inclusive range by sequence number", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const outcomes = stored(
        yield* stream.putRecords(Array.from({ length: 10 }, (_, i) => entry("k", `r${i}`)))
      )
      const shardId = "shardId-000000000000"
      const range = yield* stream.readRange({
        shardId,
        startSequenceNumber: outcomes[2]!.sequenceNumber,
        endSequenceNumber: outcomes[5]!.sequenceNumber
      })
      expect(range.map((record) => new TextDecoder().decode(record.data))).toEqual(["r2", "r3", "r4", "r5"])
      const single = yield* stream.readRange({
        shardId,
        startSequenceNumber: outcomes[7]!.sequenceNumber,
        endSequenceNumber: outcomes[7]!.sequenceNumber
      })
      expect(single.map((record) => record.sequenceNumber)).toEqual([outcomes[7]!.sequenceNumber])
      const unknown = yield* Effect.result(
        stream.readRange({
          shardId: "shardId-000000000009",
          startSequenceNumber: "0",
          endSequenceNumber: "1"
        })
      )
      expect(reasonOf(unknown)).toBe("NotFound")
      const malformed = yield* Effect.result(
        stream.readRange({ shardId, startSequenceNumber: "01", endSequenceNumber: "5" })
      )
      expect(reasonOf(malformed)).toBe("InvalidRequest")
    })
  )

  it.effect("pages through a shard with getRecords and reports how far behind the tip a read is", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1 })
      const shardId = "shardId-000000000000"
      yield* stream.putRecords(Array.from({ length: 5 }, (_, i) => entry("k", `r${i}`)))
      yield* TestClock.adjust("3 seconds")
      const first = yield* stream.getRecords(shardId, { limit: 3 })
      expect(first.records).toHaveLength(3)
      expect(first.millisBehindLatest).toBe(3000)
      const rest = yield* stream.getRecords(shardId, { after: first.records[2]!.sequenceNumber, limit: 10 })
      expect(rest.records.map((record) => new TextDecoder().decode(record.data))).toEqual(["r3", "r4"])
      expect(rest.millisBehindLatest).toBe(0)
      expect((yield* stream.shardTips)[shardId]).toBe(rest.records[1]!.sequenceNumber)
      expect(reasonOf(yield* Effect.result(stream.getRecords(shardId, { limit: 10_001 })))).toBe(
        "InvalidRequest"
      )
    })
  )

  it.effect("trims records older than the retention period; reading them fails TrimmedByRetention", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ shardCount: 1, retentionHours: 24 })
      const shardId = "shardId-000000000000"
      const old = stored(yield* stream.putRecords([entry("k", "old-1"), entry("k", "old-2")]))
      yield* TestClock.adjust("2 hours")
      const recent = stored(yield* stream.putRecords([entry("k", "recent")]))
      const whole = {
        shardId,
        startSequenceNumber: old[0]!.sequenceNumber,
        endSequenceNumber: recent[0]!.sequenceNumber
      }
      expect(yield* stream.readRange(whole)).toHaveLength(3)
      yield* TestClock.adjust("22 hours")
      expect(yield* stream.readRange(whole)).toHaveLength(3) // exactly 24 h old is still retained
      yield* TestClock.adjust("1 millis")
      const trimmed = yield* Effect.flip(stream.readRange(whole))
      expect(trimmed.reason).toBe("TrimmedByRetention")
      expect(trimmed.isRetryable).toBe(false)
      expect(
        reasonOf(
          yield* Effect.result(stream.readRange({ ...whole, startSequenceNumber: old[1]!.sequenceNumber }))
        )
      ).toBe("TrimmedByRetention")
      const kept = yield* stream.readRange({ ...whole, startSequenceNumber: recent[0]!.sequenceNumber })
      expect(kept.map((record) => new TextDecoder().decode(record.data))).toEqual(["recent"])
      const fromHorizon = yield* stream.getRecords(shardId, { limit: 10 })
      expect(fromHorizon.records.map((record) => record.sequenceNumber)).toEqual([recent[0]!.sequenceNumber])
      yield* TestClock.adjust("2 hours")
      expect(yield* stream.recordCount).toBe(0)
      expect((yield* stream.shardTips)[shardId]).toBeUndefined()
    })
  )
})

describe("MemoryStream layer", () => {
  it.effect("serves one stream behind both RecordStream and MemoryStream", () =>
    Effect.gen(function* () {
      const producer = yield* RecordStream.RecordStream
      const control = yield* MemoryStream.MemoryStream
      yield* producer.putRecords([entry("k")])
      expect(yield* control.recordCount).toBe(1)
      expect(producer.streamArn).toBe("arn:aws:kinesis:us-east-1:123456789012:stream/orders")
    }).pipe(Effect.provide(MemoryStream.layerMemory({ streamName: "orders" })))
  )

  it.effect("refuses nonsense options with a defect naming the option", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(MemoryStream.make({ shardCount: 0 }))
      expect(String(exit)).toContain("shardCount")
      expect(exit._tag).toBe("Failure")
    })
  )
})
