/**
 * The disaster-recovery program on hand-made services: an archive over a map (Firehose's layout,
 * built with `Archive.encodeObject` / `objectKey`), a sink that records what it was asked to write
 * and answers from a script, and a real dedup cache.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import * as Archive from "../src/Archive.js"
import * as DedupCache from "../src/DedupCache.js"
import * as DocumentSink from "../src/DocumentSink.js"
import * as Metrics from "../src/Metrics.js"
import type * as Restore from "../src/stages/restore.js"
import { restore } from "../src/stages/restore.js"
import * as Telemetry from "../src/Telemetry.js"

const hour = Date.parse("2026-11-24T10:00:00.000Z")
const range: Archive.Range = { from: hour, to: hour + Archive.hourMillis - 1 }
const layout: Archive.Layout = { deliveryStreamName: "backup" }

const envelope = (id: string, payload: Record<string, unknown> = { value: 1 }, receivedAt = hour) =>
  new Telemetry.TelemetryEnvelope({
    tenant: "demo",
    receivedAt,
    record: new Telemetry.TelemetryRecord({
      id: Telemetry.RecordId.make(id),
      type: "cpu",
      timestamp: "2026-11-24T10:00:00.000Z",
      payload
    })
  })

const envelopes = (n: number, prefix = "r") => Array.from({ length: n }, (_, i) => envelope(`${prefix}-${i}`))

/** An S3 bucket as a map from key to bytes; `failures` scripts errors for the next list/read calls. */
const makeArchive = () => {
  const objects = new Map<string, Uint8Array>()
  const calls = { list: 0, read: 0 }
  const failures = { list: [] as Array<Archive.ArchiveError>, read: [] as Array<Archive.ArchiveError> }
  let written = 0
  const nextFailure = (call: "list" | "read") =>
    Effect.suspend(() => {
      const error = failures[call].shift()
      return error === undefined ? Effect.void : Effect.fail(error)
    })
  const service: Archive.Service = {
    bucket: "test-bucket",
    write: (records) =>
      Effect.map(Effect.fromResult(Archive.encodeObject(records)), (bytes) => {
        written++
        const uuid = `00000000-0000-4000-8000-${written.toString(16).padStart(12, "0")}`
        const key = Archive.objectKey(layout, Archive.oldestArrival(records), uuid)
        objects.set(key, bytes)
        return key
      }),
    list: (r) =>
      Effect.suspend(() => {
        calls.list++
        return Effect.andThen(
          nextFailure("list"),
          Effect.map(Effect.fromResult(Archive.hourPrefixes(r)), (prefixes) =>
            [...objects.keys()].filter((key) => prefixes.some((p) => key.startsWith(p))).sort()
          )
        )
      }),
    read: (key) =>
      Effect.suspend(() => {
        calls.read++
        const bytes = objects.get(key)
        return Effect.andThen(
          nextFailure("read"),
          bytes === undefined
            ? Effect.fail(new Archive.ArchiveError({ reason: "NotFound", message: key }))
            : Effect.succeed(Archive.decodeObject(bytes))
        )
      })
  }
  /** Files one object holding the given envelopes (or raw lines), arrived at `arrivedAt`. */
  const put = (items: ReadonlyArray<Telemetry.TelemetryEnvelope | string>, arrivedAt = hour) =>
    service.write(
      items.map((item) => ({
        data: typeof item === "string" ? new TextEncoder().encode(item) : Telemetry.encodeEnvelope(item),
        arrivedAt
      }))
    )
  return { service, put, calls, failures }
}

type Answer = (document: DocumentSink.Document, call: number) => DocumentSink.WriteOutcome

/** A sink that records every write and answers each document from `answer` (by default Written). */
const makeSink = (answer: Answer = () => DocumentSink.written) => {
  const writes: Array<ReadonlyArray<DocumentSink.Document>> = []
  const service: DocumentSink.Service = {
    name: "recording",
    write: (documents) =>
      Effect.sync(() => {
        writes.push(documents)
        return documents.map((d) => answer(d, writes.length))
      })
  }
  return { service, writes }
}

const run = (
  archive: Archive.Service,
  sink: DocumentSink.Service,
  cache: DedupCache.Service,
  options?: Parameters<typeof restore>[1]
) =>
  restore(range, options).pipe(
    Effect.provideService(Archive.Archive, archive),
    Effect.provideService(DocumentSink.DocumentSink, sink),
    Effect.provideService(DedupCache.DedupCache, cache)
  )

/** Runs `effect` in a fiber while the test clock moves in `step`s (retries sleep on the clock). */
const whileClockRuns = <A, E>(effect: Effect.Effect<A, E>, step: Duration.Input = "100 millis") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < 10_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(step)
    return yield* Fiber.join(fiber)
  })

const delaysRecorded = Metric.value(Metrics.endToEndDelay).pipe(Effect.map((s) => s.count))

describe("Restore.restore", () => {
  it.effect("writes every record of the range once, past the cache, and marks the ids in it", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      const sink = makeSink()
      const cache = DedupCache.make({ capacity: 1000 })
      const first = envelopes(3, "a")
      const second = envelopes(2, "b")
      yield* archive.put(first)
      yield* archive.put(second, hour + 60_000)
      // Filed under the next hour: outside the range.
      yield* archive.put([envelope("later")], hour + Archive.hourMillis)
      // The cache remembers ids the lost index held: they are exactly what must be written again.
      yield* cache.markProcessed(["a-0", "b-1"])

      const result = yield* run(archive.service, sink.service, cache)

      expect(result).toEqual({
        objects: 2,
        read: 5,
        beforeRange: 0,
        distinct: 5,
        written: 5,
        failed: [],
        undecodable: [],
        unreadable: []
      })
      expect(sink.writes.flat().map((d) => d.id)).toEqual(["a-0", "a-1", "a-2", "b-0", "b-1"])
      expect(yield* cache.seen(["a-0", "a-1", "a-2", "b-0", "b-1", "later"])).toEqual([
        true,
        true,
        true,
        true,
        true,
        false
      ])
    })
  )

  it.effect(
    "keeps the first copy of a duplicated id: the one the live pipeline wrote, its cache skipped the rest",
    () =>
      Effect.gen(function* () {
        const archive = makeArchive()
        const sink = makeSink()
        yield* archive.put([envelope("x", { value: 1 }), envelope("y")])
        // A client's re-send of x: a later receivedAt, in a later object.
        yield* archive.put([envelope("x", { value: 2 }, hour + 65_000), envelope("z")], hour + 60_000)

        const result = yield* run(archive.service, sink.service, DedupCache.make({ capacity: 100 }))

        expect(result).toMatchObject({ objects: 2, read: 4, distinct: 3, written: 3, failed: [] })
        // One write per id, in the order of the copies kept.
        expect(sink.writes.flat().map((d) => d.id)).toEqual(["x", "y", "z"])
        expect(sink.writes.flat()[0]?.body).toMatchObject({
          payload: { value: 1 },
          receivedAt: new Date(hour).toISOString()
        })
      })
  )

  it.effect("keeps the copy received first even when a later copy sits in an object listed earlier", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      const sink = makeSink()
      // The re-send (received later) is filed under an earlier-named object than the original.
      yield* archive.put([envelope("w", { value: 2 }, hour + 30_000)], hour + 1_000)
      yield* archive.put([envelope("w", { value: 1 }, hour + 10_000)], hour + 2_000)
      const result = yield* run(archive.service, sink.service, DedupCache.make({ capacity: 100 }))
      expect(result).toMatchObject({ read: 2, distinct: 1, written: 1 })
      expect(sink.writes.flat()[0]?.body).toMatchObject({ payload: { value: 1 } })
    })
  )

  it.effect("skips records received before the range: the restored snapshot has them", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      const sink = makeSink()
      yield* archive.put(
        [envelope("old", {}, hour + 1_000), envelope("new", {}, hour + 50_000)],
        hour + 1_000
      )
      const result = yield* restore({ from: hour + 40_000, to: hour + 3_000_000 }).pipe(
        Effect.provideService(Archive.Archive, archive.service),
        Effect.provideService(DocumentSink.DocumentSink, sink.service),
        Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 100 }))
      )
      expect(result).toMatchObject({ read: 2, beforeRange: 1, distinct: 1, written: 1 })
      expect(sink.writes.flat().map((d) => d.id)).toEqual(["new"])
    })
  )

  it.effect("writes in batches of at most batchSize documents", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(25))
      const sink = makeSink()
      const result = yield* run(archive.service, sink.service, DedupCache.make({ capacity: 100 }), {
        batchSize: 10
      })
      expect(result.written).toBe(25)
      expect(sink.writes.map((w) => w.length)).toEqual([10, 10, 5])

      // The default is 500 per bulk write.
      const big = makeArchive()
      yield* big.put(envelopes(1200))
      const defaultSink = makeSink()
      yield* run(big.service, defaultSink.service, DedupCache.make({ capacity: 2000 }))
      expect(defaultSink.writes.map((w) => w.length)).toEqual([500, 500, 200])
    })
  )

  it.effect("refuses a batchSize that is not a positive integer, before reading anything", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(3))
      const sink = makeSink()
      for (const batchSize of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(
          run(archive.service, sink.service, DedupCache.make({ capacity: 100 }), { batchSize })
        )
        expect(error).toBeInstanceOf(Archive.ArchiveError)
        expect(error).toMatchObject({ reason: "InvalidRequest" })
        expect(error.message).toContain("batchSize")
        expect(error.isRetryable).toBe(false)
      }
      expect(archive.calls).toEqual({ list: 0, read: 0 })
      expect(sink.writes).toEqual([])
    })
  )

  it.effect("reports a record that is not an envelope with its object and index, and writes the rest", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      const key = yield* archive.put([envelope("a"), "not json", envelope("b"), '{"tenant":"demo"}'])
      yield* archive.put([envelope("c")], hour + 1_000)
      const sink = makeSink()

      const result = yield* run(archive.service, sink.service, DedupCache.make({ capacity: 100 }))

      expect(result).toMatchObject({ objects: 2, read: 5, distinct: 3, written: 3, failed: [] })
      expect(result.undecodable).toHaveLength(2)
      expect(result.undecodable[0]).toMatchObject({ key, index: 1 })
      expect(result.undecodable[1]).toMatchObject({ key, index: 3 })
      expect(result.undecodable[1]?.reason).toContain("receivedAt")
      expect(sink.writes.flat().map((d) => d.id)).toEqual(["a", "b", "c"])
    })
  )

  it.effect("retries an item the sink answered Retryable and counts it written once it lands", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(3))
      const sink = makeSink((document, call) =>
        document.id === "r-1" && call === 1
          ? { _tag: "Retryable", reason: "429 too many requests" }
          : DocumentSink.written
      )
      const cache = DedupCache.make({ capacity: 100 })

      const result = yield* whileClockRuns(run(archive.service, sink.service, cache))

      expect(result).toMatchObject({ read: 3, distinct: 3, written: 3, failed: [] })
      // Only the pending item is written again.
      expect(sink.writes.map((w) => w.map((d) => d.id))).toEqual([["r-0", "r-1", "r-2"], ["r-1"]])
      expect(yield* cache.seen(["r-0", "r-1", "r-2"])).toEqual([true, true, true])
    })
  )

  it.effect("reports an item still Retryable when the sink write budget ends as failed, retryable", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(2))
      const sink = makeSink((document) =>
        document.id === "r-0" ? { _tag: "Retryable", reason: "503 circuit breaker" } : DocumentSink.written
      )
      const cache = DedupCache.make({ capacity: 100 })

      const result = yield* whileClockRuns(run(archive.service, sink.service, cache), "1 second")

      expect(result.written).toBe(1)
      expect(result.failed).toEqual([{ recordId: "r-0", reason: "503 circuit breaker", retryable: true }])
      expect(sink.writes.length).toBeGreaterThan(3)
      expect(yield* cache.seen(["r-0", "r-1"])).toEqual([false, true])
    })
  )

  it.effect("reports an item the sink Rejected as failed, not retryable, with the reason, and goes on", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(4))
      const reason = "400 mapper_parsing_exception: failed to parse field [payload.value] of type [long]"
      const sink = makeSink((document) =>
        document.id === "r-2" ? { _tag: "Rejected", reason } : DocumentSink.written
      )
      const cache = DedupCache.make({ capacity: 100 })

      const result = yield* run(archive.service, sink.service, cache, { batchSize: 2 })

      expect(result.written).toBe(3)
      expect(result.failed).toEqual([{ recordId: "r-2", reason, retryable: false }])
      // A rejection is not retried: one write per batch.
      expect(sink.writes.map((w) => w.length)).toEqual([2, 2])
      expect(yield* cache.seen(["r-2", "r-3"])).toEqual([false, true])
    })
  )

  it.effect("reports every item of a write that failed whole and cannot be retried", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(2))
      const sink: DocumentSink.Service = {
        name: "refusing",
        write: () =>
          Effect.fail(
            new DocumentSink.DocumentSinkError({ sink: "refusing", reason: "AccessDenied", message: "403" })
          )
      }
      const result = yield* run(archive.service, sink, DedupCache.make({ capacity: 100 }))
      expect(result.written).toBe(0)
      expect(result.failed).toEqual([
        { recordId: "r-0", reason: "403", retryable: false },
        { recordId: "r-1", reason: "403", retryable: false }
      ])
    })
  )

  it.effect("records no end-to-end delay: the records were delivered once already", () =>
    Effect.gen(function* () {
      const archive = makeArchive()
      yield* archive.put(envelopes(50))
      const before = yield* delaysRecorded
      const result = yield* run(archive.service, makeSink().service, DedupCache.make({ capacity: 100 }))
      expect(result.written).toBe(50)
      expect(yield* delaysRecorded).toBe(before)
    })
  )

  it.effect(
    "retries archive calls that may succeed later, reports objects it cannot read, fails on a refused listing",
    () =>
      Effect.gen(function* () {
        const archive = makeArchive()
        yield* archive.put(envelopes(2))
        yield* archive.put(envelopes(2, "s"), hour + 1_000)
        archive.failures.list.push(new Archive.ArchiveError({ reason: "Throttled", message: "503 SlowDown" }))
        archive.failures.read.push(
          ...[undefined, undefined].map(
            () => new Archive.ArchiveError({ reason: "Unavailable", message: "503" })
          )
        )
        const result = yield* whileClockRuns(
          run(archive.service, makeSink().service, DedupCache.make({ capacity: 100 }))
        )
        expect(result).toMatchObject({ objects: 2, read: 4, written: 4, failed: [], unreadable: [] })
        // The list failed once, then the first read twice: each call is retried on its own.
        // Each object is read twice (to choose the copies, then to write them); each call retried on its own.
        expect(archive.calls).toEqual({ list: 2, read: 6 })

        // An object that cannot be read is reported by key; the others are restored.
        const gone = makeArchive()
        const missingKey = yield* gone.put(envelopes(2))
        yield* gone.put(envelopes(3, "t"), hour + 1_000)
        gone.failures.read.push(
          new Archive.ArchiveError({ reason: "NotFound", message: `NoSuchKey: ${missingKey}` })
        )
        const partial = yield* run(gone.service, makeSink().service, DedupCache.make({ capacity: 100 }))
        expect(partial).toMatchObject({ objects: 2, read: 3, written: 3, failed: [] })
        expect(partial.unreadable).toEqual([
          { key: missingKey, reason: `NoSuchKey: ${missingKey}`, retryable: false }
        ])

        const denied = makeArchive()
        yield* denied.put(envelopes(2))
        denied.failures.list.push(
          new Archive.ArchiveError({ reason: "AccessDenied", message: "403 AccessDenied" })
        )
        const sink = makeSink()
        const error = yield* Effect.flip(
          run(denied.service, sink.service, DedupCache.make({ capacity: 100 }))
        )
        expect(error).toMatchObject({ _tag: "ArchiveError", reason: "AccessDenied" })
        expect(denied.calls.list).toBe(1)
        expect(sink.writes).toEqual([])
      })
  )

  it.effect(
    "tells its progress after every object of each pass, the last one after its documents are written",
    () =>
      Effect.gen(function* () {
        const archive = makeArchive()
        yield* archive.put(envelopes(3, "a"), hour + 1_000)
        yield* archive.put(envelopes(2, "b"), hour + 2_000)
        yield* archive.put(envelopes(4, "c"), hour + 3_000)
        const seen: Array<Restore.RestoreProgress> = []
        const result = yield* run(archive.service, makeSink().service, DedupCache.make({ capacity: 100 }), {
          batchSize: 4,
          onProgress: (progress) => Effect.sync(() => seen.push(progress))
        })
        expect(result.written).toBe(9)
        expect(seen).toEqual([
          { pass: "choosing", objectsDone: 1, objects: 3, read: 3, written: 0 },
          { pass: "choosing", objectsDone: 2, objects: 3, read: 5, written: 0 },
          { pass: "choosing", objectsDone: 3, objects: 3, read: 9, written: 0 },
          // Batches of 4: the first batch (a-0..a-2, b-0) is written while the second object is read.
          { pass: "writing", objectsDone: 1, objects: 3, read: 9, written: 0 },
          { pass: "writing", objectsDone: 2, objects: 3, read: 9, written: 4 },
          { pass: "writing", objectsDone: 3, objects: 3, read: 9, written: 9 }
        ])
      })
  )

  it.effect("writes nothing for an empty range", () =>
    Effect.gen(function* () {
      const sink = makeSink()
      const result = yield* run(makeArchive().service, sink.service, DedupCache.make({ capacity: 100 }))
      expect(result).toEqual({
        objects: 0,
        read: 0,
        beforeRange: 0,
        distinct: 0,
        written: 0,
        failed: [],
        undecodable: [],
        unreadable: []
      })
      expect(sink.writes).toEqual([])
    })
  )
})
