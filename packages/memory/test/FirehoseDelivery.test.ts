/**
 * The Firehose emulation (docs/aws-behaviour.md §5.2–5.5, §5.8) over a `MemoryStream` and a `MemoryArchive`,
 * on TestClock: buffering by interval and size, every record delivered once in shard order,
 * retries through archive and stream outages, `flush` and `isCaughtUp`, and the backup of the
 * whole in-memory pipeline.
 */
import { describe, expect, it } from "@effect/vitest"
import { Archive, type RecordStream, Telemetry } from "@spillway/core"
import { Arbitrary, Clock, Effect, Fiber, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as FirehoseDelivery from "../src/FirehoseDelivery.js"
import * as MemoryArchive from "../src/MemoryArchive.js"
import * as MemoryPipeline from "../src/MemoryPipeline.js"
import * as MemoryStream from "../src/MemoryStream.js"
import { apiKey, records as clientRecords, settle } from "./pipeline/harness.js"

const encoder = new TextEncoder()
const text = (data: Uint8Array) => new TextDecoder().decode(data)

/** Integers from `min` to `max`, both included. */
const integerIn = (min: number, max: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: min, maximum: max })))

/** A payload that starts with `id` and is `size` bytes long (at least the id). */
const payload = (id: string, size = id.length) => `${id}${"x".repeat(Math.max(0, size - id.length))}`

interface Written {
  readonly at: number
  readonly records: ReadonlyArray<Archive.ArchivedRecord>
}

/**
 * A stream, an archive and a delivery between them. The archive is wrapped so the test sees every
 * write in order (successful ones with their time, failed ones counted). Starts the delivery and
 * lets its first (empty) poll run, so records put afterwards wait for the next poll.
 */
const setup = (
  config: FirehoseDelivery.Config,
  options: { readonly stream?: MemoryStream.Options; readonly archive?: MemoryArchive.Options } = {}
) =>
  Effect.gen(function* () {
    const stream = yield* MemoryStream.make({ shardCount: 2, ...options.stream })
    const archive = yield* MemoryArchive.make(options.archive)
    const written: Array<Written> = []
    let failedWrites = 0
    const recording: Archive.Service = {
      bucket: archive.bucket,
      list: archive.list,
      read: archive.read,
      write: (records) =>
        archive.write(records).pipe(
          Effect.tap(() =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => written.push({ at, records })))
          ),
          Effect.tapError(() => Effect.sync(() => failedWrites++))
        )
    }
    const delivery = yield* FirehoseDelivery.start(stream, recording, config)
    yield* TestClock.adjust(500)
    return { stream, archive, delivery, written, failedWrites: () => failedWrites }
  })

/** Puts `payloads` in calls of at most 500, spreading them over partition keys; every entry must be stored. */
const put = (stream: MemoryStream.Service, payloads: ReadonlyArray<string>, keys = 16) =>
  Effect.gen(function* () {
    for (let i = 0; i < payloads.length; i += 500) {
      const entries = payloads
        .slice(i, i + 500)
        .map((p, j) => ({ partitionKey: `device-${(i + j) % keys}`, data: encoder.encode(p) }))
      const outcomes = yield* stream.putRecords(entries)
      const failed = outcomes.filter(
        (o): o is RecordStream.PutOutcome & { _tag: "Failed" } => o._tag === "Failed"
      )
      if (failed.length > 0)
        return yield* Effect.die(new Error(`test setup: ${failed.length} entries not stored`))
    }
  })

/** The records of every archived object, decoded from the stored bytes, in key order. */
const archivedObjects = (archive: MemoryArchive.Handle) =>
  Effect.map(archive.objects, (objects) =>
    objects.map(({ key, bytes }) => ({
      key,
      size: bytes.length,
      records: Archive.decodeObject(bytes).map(text)
    }))
  )

const archivedTexts = (archive: MemoryArchive.Handle) =>
  Effect.map(archivedObjects(archive), (objects) => objects.flatMap((o) => o.records))

/** How often each payload occurs. */
const tally = (values: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  return counts
}

const expectEachOnce = (archived: ReadonlyArray<string>, sent: ReadonlyArray<string>) => {
  const counts = tally(archived)
  expect(sent.filter((p) => counts.get(p) !== 1)).toEqual([])
  expect(archived.length).toBe(sent.length)
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe("FirehoseDelivery buffering", () => {
  it.effect("delivers nothing before the buffering interval, then one object once it elapses", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery, written } = yield* setup({ bufferingIntervalSeconds: 60 })
      const putAt = yield* Clock.currentTimeMillis
      const sent = ids("r", 10)
      yield* put(stream, sent)

      // Read at the next poll, then held.
      yield* TestClock.adjust("58 seconds")
      expect(yield* archive.objects).toEqual([])
      expect(yield* delivery.counters).toMatchObject({ recordsRead: 10, buffered: 10, objectsDelivered: 0 })

      yield* TestClock.adjust("4 seconds")
      const objects = yield* archivedObjects(archive)
      expect(objects).toHaveLength(1)
      expect(objects[0]!.records.sort()).toEqual([...sent].sort())
      // Not before the interval counted from the put, at most one poll after it counted from the read.
      expect(written[0]!.at - putAt).toBeGreaterThanOrEqual(60_000)
      expect(written[0]!.at - putAt).toBeLessThanOrEqual(61_000 + 500)
      expect(yield* delivery.counters).toMatchObject({
        recordsRead: 10,
        recordsDelivered: 10,
        objectsDelivered: 1,
        bytesDelivered: sent.reduce((n, p) => n + p.length, 0),
        buffered: 0,
        readErrors: 0,
        deliveryErrors: 0
      })

      // An empty buffer is never delivered.
      yield* TestClock.adjust("3 minutes")
      expect(yield* archive.objects).toHaveLength(1)
    })
  )

  it.effect("files an object holding records of two hours under the hour of its oldest record", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.parse("2026-11-24T10:59:30.000Z"))
      const { stream, archive } = yield* setup({ bufferingIntervalSeconds: 60 })
      yield* put(stream, ["a"])
      yield* TestClock.adjust("30 seconds")
      yield* put(stream, ["b"])
      yield* TestClock.adjust("40 seconds")
      const [object, ...others] = yield* archivedObjects(archive)
      expect(others).toEqual([])
      expect(object!.records).toEqual(["a", "b"])
      expect(object!.key.startsWith("2026/11/24/10/spillway-backup-1-2026-11-24-10-59-30-")).toBe(true)
    })
  )

  it.effect("with a zero interval delivers at the next poll", () =>
    Effect.gen(function* () {
      const { stream, archive } = yield* setup({ bufferingIntervalSeconds: 0 })
      yield* put(stream, ["a", "b"])
      yield* TestClock.adjust("1 second")
      expect(yield* archivedTexts(archive)).toHaveLength(2)
    })
  )

  it.effect("delivers when the buffer reaches bufferingSizeBytes, long before the interval", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery } = yield* setup({
        bufferingIntervalSeconds: 120,
        bufferingSizeBytes: 2000
      })
      const big = ids("big", 30).map((id) => payload(id, 100))
      yield* put(stream, big)
      yield* TestClock.adjust("1 second")
      expectEachOnce(yield* archivedTexts(archive), big)
      expect((yield* delivery.counters).buffered).toBe(0)

      // Below the threshold, records wait for the interval.
      const small = ids("small", 5).map((id) => payload(id, 100))
      yield* put(stream, small)
      yield* TestClock.adjust("100 seconds")
      expect(yield* archivedTexts(archive)).toHaveLength(30)
      expect((yield* delivery.counters).buffered).toBe(5)
      yield* TestClock.adjust("30 seconds")
      expectEachOnce(yield* archivedTexts(archive), [...big, ...small])
    })
  )

  it.effect("keeps objects within bufferingSizeBytes, records and their newlines counted", () =>
    Effect.gen(function* () {
      const { stream, archive } = yield* setup({ bufferingIntervalSeconds: 900, bufferingSizeBytes: 1000 })
      // Ten 100-byte records hold exactly 1,000 bytes of data, and 1,010 once each ends with a newline.
      const sent = ids("r", 25).map((id) => payload(id, 100))
      yield* put(stream, sent)
      yield* TestClock.adjust("1 second")
      const objects = yield* archivedObjects(archive)
      expectEachOnce(
        objects.flatMap((o) => o.records),
        sent
      )
      expect(objects.map((o) => o.size).filter((size) => size > 1000)).toEqual([])
    })
  )

  it.effect.prop(
    "cuts any buffer into objects within bufferingSizeBytes, a larger record alone, each record once in order",
    {
      // Mostly small records (four in five), so objects fill up to within a few bytes of the limit.
      sizes: Arbitrary.array(
        Arbitrary.flatMap(integerIn(1, 5), (pick) => (pick <= 4 ? integerIn(1, 20) : integerIn(1, 1500))),
        { minLength: 1, maxLength: 80 }
      ),
      limit: integerIn(1, 2000)
    },
    ({ sizes, limit }) =>
      Effect.gen(function* () {
        const { stream, archive, delivery, written } = yield* setup(
          { bufferingIntervalSeconds: 900, bufferingSizeBytes: limit },
          { stream: { shardCount: 1 } }
        )
        const sent = sizes.map((size, i) => payload(`r${i}-`, size))
        yield* put(stream, sent)
        yield* delivery.flush

        const objects = yield* archivedObjects(archive)
        for (const object of objects) {
          if (object.records.length > 1) expect(object.size).toBeLessThanOrEqual(limit)
        }
        // One shard: the write order is the stream's order.
        expect(written.flatMap((w) => w.records.map((r) => text(r.data)))).toEqual(sent)
        expectEachOnce(
          objects.flatMap((o) => o.records),
          sent
        )
      }),
    { arbitrary: { runs: 40 } }
  )
})

describe("FirehoseDelivery completeness and order", () => {
  it.effect("delivers every record of several shards exactly once, in sequence order per shard", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery, written } = yield* setup(
        { bufferingIntervalSeconds: 5, bufferingSizeBytes: 4096 },
        { stream: { shardCount: 4 } }
      )
      const sent: Array<string> = []
      for (let second = 0; second < 6; second++) {
        const batch = ids(`s${second}`, 500)
        sent.push(...batch)
        yield* put(stream, batch, 37)
        yield* TestClock.adjust("1 second")
      }
      yield* TestClock.adjust("10 seconds")

      const stored = yield* stream.records
      expect(stored).toHaveLength(3000)
      expect(new Set(stored.map((r) => r.shardId)).size).toBe(4)
      const origin = new Map(stored.map((r) => [text(r.data), r]))

      expectEachOnce(yield* archivedTexts(archive), sent)
      // What the archive holds is what the delivery wrote: no object lost or added on the way.
      expect((yield* archive.objects).length).toBe(written.length)
      expect(written.length).toBeGreaterThan(1)

      // Within each object and across objects in write order, each shard's records come in sequence order.
      const lastOfShard = new Map<string, bigint>()
      for (const { records } of written) {
        const inObject = new Map<string, bigint>()
        for (const record of records) {
          const source = origin.get(text(record.data))!
          const sequence = BigInt(source.sequenceNumber)
          expect(record.arrivedAt).toBe(source.approximateArrivalTimestamp)
          expect(sequence > (inObject.get(source.shardId) ?? -1n)).toBe(true)
          expect(sequence > (lastOfShard.get(source.shardId) ?? -1n)).toBe(true)
          inObject.set(source.shardId, sequence)
          lastOfShard.set(source.shardId, sequence)
        }
      }

      expect(yield* delivery.isCaughtUp).toBe(true)
      expect(yield* delivery.counters).toMatchObject({
        recordsRead: 3000,
        recordsDelivered: 3000,
        objectsDelivered: written.length,
        buffered: 0,
        readErrors: 0,
        deliveryErrors: 0
      })
    })
  )
})

describe("FirehoseDelivery under faults", () => {
  it.effect("retries through an archive outage, reading nothing meanwhile; nothing lost or duplicated", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery, failedWrites } = yield* setup({
        bufferingIntervalSeconds: 10,
        retryDelayMillis: 1000
      })
      yield* archive.startOutage()
      const before = ids("before", 200)
      yield* put(stream, before)
      yield* TestClock.adjust("30 seconds")

      const during = yield* delivery.counters
      expect(during.deliveryErrors).toBeGreaterThanOrEqual(10)
      expect(during.deliveryErrors).toBe(failedWrites())
      expect(during).toMatchObject({ recordsRead: 200, recordsDelivered: 0, objectsDelivered: 0 })
      expect(yield* archive.objects).toEqual([])

      // While a delivery is being retried, the stream keeps the new records.
      const later = ids("later", 100)
      yield* put(stream, later)
      yield* TestClock.adjust("10 seconds")
      expect((yield* delivery.counters).recordsRead).toBe(200)
      expect(yield* delivery.isCaughtUp).toBe(false)

      yield* archive.endOutage
      yield* TestClock.adjust("30 seconds")
      expectEachOnce(yield* archivedTexts(archive), [...before, ...later])
      const after = yield* delivery.counters
      expect(after).toMatchObject({ recordsRead: 300, recordsDelivered: 300, buffered: 0 })
      expect(after.deliveryErrors).toBe(failedWrites())
      expect(yield* delivery.isCaughtUp).toBe(true)
    })
  )

  it.effect("a timed archive outage ends by itself, and the delivery resumes", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery } = yield* setup({ bufferingIntervalSeconds: 0 })
      const now = yield* Clock.currentTimeMillis
      yield* archive.startOutage({ until: now + 20_000 })
      const sent = ids("r", 50)
      yield* put(stream, sent)
      yield* TestClock.adjust("10 seconds")
      expect(yield* archive.objects).toEqual([])
      yield* TestClock.adjust("15 seconds")
      expectEachOnce(yield* archivedTexts(archive), sent)
      expect((yield* delivery.counters).deliveryErrors).toBeGreaterThan(0)
    })
  )

  it.effect("counts failed reads during a stream outage, then catches up and delivers everything once", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery } = yield* setup(
        { bufferingIntervalSeconds: 60 },
        { stream: { shardCount: 2 } }
      )
      const sent = ids("r", 50)
      yield* put(stream, sent)
      yield* stream.startOutage({ for: "10 seconds" })

      yield* TestClock.adjust("5 seconds")
      const during = yield* delivery.counters
      // Every poll fails on both shards.
      expect(during.readErrors).toBeGreaterThanOrEqual(2 * 4)
      expect(during.recordsRead).toBe(0)
      expect(yield* delivery.isCaughtUp).toBe(false)

      yield* TestClock.adjust("7 seconds")
      expect(yield* delivery.isCaughtUp).toBe(true)
      const caughtUp = yield* delivery.counters
      expect(caughtUp.recordsRead).toBe(50)
      yield* TestClock.adjust("1 minute")
      expect((yield* delivery.counters).readErrors).toBe(caughtUp.readErrors)
      expectEachOnce(yield* archivedTexts(archive), sent)
    })
  )
})

describe("FirehoseDelivery when delivery is cut short or refused for good", () => {
  it.effect(
    "a flush interrupted between objects writes nothing twice; the next flush delivers the rest",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const archive = yield* MemoryArchive.make()
        // Each write takes a second, so an interruption lands between objects.
        const slow: Archive.Service = {
          ...archive,
          write: (records) => Effect.andThen(Effect.sleep("1 second"), archive.write(records))
        }
        const delivery = yield* FirehoseDelivery.start(stream, slow, {
          bufferingIntervalSeconds: 900,
          bufferingSizeBytes: 1000
        })
        const sent = ids("cut", 100).map((id) => payload(id, 95))
        yield* put(stream, sent, 1)

        const flushing = yield* Effect.forkChild(delivery.flush)
        yield* TestClock.adjust("3500 millis")
        yield* Fiber.interrupt(flushing)
        const cut = yield* delivery.counters
        expect(cut.objectsDelivered).toBeGreaterThan(0)
        expect(cut.buffered).toBe(100 - cut.recordsDelivered)

        const finishing = yield* Effect.forkChild(delivery.flush)
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(finishing)
        const done = yield* delivery.counters
        expect(done.recordsDelivered).toBe(100)
        expect(done.buffered).toBe(0)
        expectEachOnce(yield* archivedTexts(archive), sent)
      })
  )

  it.effect(
    "after a permanent refusal it stops reading, says why, and resumes once the archive accepts",
    () =>
      Effect.gen(function* () {
        const stream = yield* MemoryStream.make({ shardCount: 1 })
        const archive = yield* MemoryArchive.make()
        let bucketExists = false
        const missingBucket: Archive.Service = {
          ...archive,
          write: (records) =>
            bucketExists
              ? archive.write(records)
              : Effect.fail(
                  new Archive.ArchiveError({ reason: "NotFound", message: "NoSuchBucket: spillway-backup" })
                )
        }
        const delivery = yield* FirehoseDelivery.start(stream, missingBucket, { bufferingIntervalSeconds: 5 })
        yield* put(stream, ids("a", 10), 1)
        yield* TestClock.adjust("10 seconds")
        const blocked = yield* delivery.counters
        expect(blocked.recordsRead).toBe(10)
        expect(blocked.recordsDelivered).toBe(0)
        expect(blocked.deliveryErrors).toBeGreaterThan(0)
        expect(blocked.lastError).toBe("delivery: NoSuchBucket: spillway-backup")

        // Blocked: later records stay in the stream, not in a growing buffer.
        yield* put(stream, ids("b", 10), 1)
        yield* TestClock.adjust("10 seconds")
        expect((yield* delivery.counters).recordsRead).toBe(10)
        expect(yield* delivery.isCaughtUp).toBe(false)

        bucketExists = true
        yield* TestClock.adjust("15 seconds")
        expect(yield* delivery.isCaughtUp).toBe(true)
        expect((yield* delivery.counters).recordsDelivered).toBe(20)
        expectEachOnce(yield* archivedTexts(archive), [...ids("a", 10), ...ids("b", 10)])
      })
  )
})

describe("FirehoseDelivery and records the framing cannot hold", () => {
  it.effect(
    "sets an empty record and one with a newline aside, with where they are, and archives the rest",
    () =>
      Effect.gen(function* () {
        const { stream, archive, delivery } = yield* setup(
          { bufferingIntervalSeconds: 10 },
          { stream: { shardCount: 1 } }
        )
        const good = ids("ok", 20)
        yield* put(stream, [...good.slice(0, 10), "", "two\nlines", ...good.slice(10)], 1)

        yield* TestClock.adjust("15 seconds")
        const counters = yield* delivery.counters
        expect(counters.recordsRead).toBe(22)
        expect(counters.recordsRefused).toBe(2)
        expect(counters.recordsDelivered).toBe(20)
        expect(counters.buffered).toBe(0)
        const refused = yield* delivery.refused
        expect(refused.map((r) => r.reason)).toEqual([
          "the record is empty and would not be read back",
          "the record contains a newline and could not be read back whole"
        ])
        const inStream = yield* stream.records
        expect(refused.map((r) => r.sequenceNumber)).toEqual([
          inStream[10]!.sequenceNumber,
          inStream[11]!.sequenceNumber
        ])
        expect(refused.every((r) => r.shardId === inStream[0]!.shardId)).toBe(true)
        // The backup is not blocked: later records keep being delivered.
        yield* put(stream, ["later"], 1)
        yield* TestClock.adjust("15 seconds")
        expectEachOnce(yield* archivedTexts(archive), [...good, "later"])
      })
  )
})

describe("FirehoseDelivery flush and isCaughtUp", () => {
  it.effect("flush reads to the tip and delivers the buffer at once, without waiting", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery } = yield* setup({ bufferingIntervalSeconds: 900 })
      const read = ids("read", 20)
      yield* put(stream, read)
      yield* TestClock.adjust("2 seconds")
      expect(yield* delivery.counters).toMatchObject({ buffered: 20, objectsDelivered: 0 })

      // Not yet read by any poll: flush reads them too.
      const unread = ids("unread", 5)
      yield* put(stream, unread)
      const before = yield* Clock.currentTimeMillis
      yield* delivery.flush
      expect(yield* Clock.currentTimeMillis).toBe(before)
      expectEachOnce(yield* archivedTexts(archive), [...read, ...unread])
      expect(yield* delivery.counters).toMatchObject({
        buffered: 0,
        recordsDelivered: 25,
        objectsDelivered: 1
      })

      // Nothing buffered: nothing written.
      yield* delivery.flush
      expect(yield* archive.objects).toHaveLength(1)
    })
  )

  it.effect("flush reads past GetRecords' 10,000-record page to the tip of a shard", () =>
    Effect.gen(function* () {
      const { stream, archive, delivery } = yield* setup(
        { bufferingIntervalSeconds: 900 },
        { stream: { shardCount: 1, recordsPerSecondPerShard: 50_000 } }
      )
      const sent = ids("r", 12_345)
      yield* put(stream, sent)
      yield* delivery.flush
      expect(yield* delivery.isCaughtUp).toBe(true)
      expectEachOnce(yield* archivedTexts(archive), sent)
    })
  )

  it.effect("isCaughtUp is true for an empty stream, false while records are unread, true once read", () =>
    Effect.gen(function* () {
      const { stream, delivery } = yield* setup(
        { bufferingIntervalSeconds: 900 },
        { stream: { shardCount: 3 } }
      )
      expect(yield* delivery.isCaughtUp).toBe(true)
      yield* put(stream, ids("r", 30))
      expect(yield* delivery.isCaughtUp).toBe(false)
      yield* TestClock.adjust("1 second")
      // Read, though still buffered.
      expect(yield* delivery.isCaughtUp).toBe(true)
      expect((yield* delivery.counters).buffered).toBe(30)
      yield* put(stream, ["one-more"])
      expect(yield* delivery.isCaughtUp).toBe(false)
      yield* delivery.flush
      expect(yield* delivery.isCaughtUp).toBe(true)
    })
  )
})

describe("FirehoseDelivery configuration", () => {
  const start = (config: FirehoseDelivery.Config) =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make()
      const archive = yield* MemoryArchive.make()
      return yield* FirehoseDelivery.start(stream, archive, config)
    })

  it.effect.each<[FirehoseDelivery.Config, string]>([
    [{ bufferingIntervalSeconds: 901 }, "bufferingIntervalSeconds"],
    [{ bufferingIntervalSeconds: -1 }, "bufferingIntervalSeconds"],
    [{ bufferingIntervalSeconds: Number.NaN }, "bufferingIntervalSeconds"],
    [{ bufferingSizeBytes: 0 }, "bufferingSizeBytes"],
    [{ bufferingSizeBytes: 128 * 1024 * 1024 + 1 }, "bufferingSizeBytes"],
    [{ pollIntervalMillis: 0 }, "pollIntervalMillis"],
    [{ retryDelayMillis: 0 }, "retryDelayMillis"]
  ])("refuses %j with InvalidConfig naming %s", ([config, option]) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(start(config))
      expect(error).toBeInstanceOf(FirehoseDelivery.InvalidConfig)
      expect(error.option).toBe(option)
      expect(error.message).toContain(option)
    })
  )

  it.effect("accepts the ends of Firehose's ranges", () =>
    Effect.gen(function* () {
      yield* start({ bufferingIntervalSeconds: 0, bufferingSizeBytes: 128 * 1024 * 1024 })
      yield* start({ bufferingIntervalSeconds: 900, bufferingSizeBytes: 1 })
    })
  )
})

describe("FirehoseDelivery in MemoryPipeline", () => {
  it.effect(
    "backs up every accepted record exactly once, including those that went through the fallback queue",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 2 } })
        expect(pipeline.backup).toBeDefined()
        // Throttle every fifth entry: those records reach the stream later, through the redriver.
        yield* pipeline.stream.injectEntryFailures((_entry, index) =>
          index % 5 === 0 ? "ProvisionedThroughputExceededException" : undefined
        )
        const sent = clientRecords(2000, "backup")
        let accepted = 0
        let parked = 0
        for (let i = 0; i < sent.length; i += 500) {
          const result = yield* pipeline.collect(apiKey, sent.slice(i, i + 500))
          accepted += result.accepted
          parked += result.parked
        }
        yield* pipeline.stream.injectEntryFailures(undefined)
        expect(accepted).toBe(2000)
        expect(parked).toBe(400)

        yield* settle(pipeline)
        yield* pipeline.backup!.flush
        const now = yield* Clock.currentTimeMillis
        const keys = yield* pipeline.archive.list({ from: 0, to: now })
        expect(keys.length).toBeGreaterThan(0)

        const archivedIds: Array<string> = []
        for (const key of keys) {
          for (const data of yield* pipeline.archive.read(key)) {
            const envelope = Telemetry.decodeEnvelope(data)
            if (Result.isFailure(envelope)) return yield* Effect.die(new Error(envelope.failure.reason))
            expect(envelope.success.tenant).toBe("demo")
            archivedIds.push(envelope.success.record.id)
          }
        }
        expectEachOnce(
          archivedIds,
          sent.map((r) => r.id)
        )
        expect(yield* pipeline.backup!.counters).toMatchObject({ recordsDelivered: 2000, buffered: 0 })
      })
  )
})
