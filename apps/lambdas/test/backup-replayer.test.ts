/**
 * The backup replayer function over a memory pipeline's archive and stream: the archive filled in
 * Firehose's hourly layout, the function invoked with `{ from, to, checkpoint? }` as an operator
 * would, and what it put read back from the stream.
 */
import { describe, expect, it } from "@effect/vitest"
import { Archive, RecordStream, Telemetry } from "@spillway/core"
import { MemoryPipeline, type MemoryStream } from "@spillway/memory"
import { Harness } from "@spillway/testing"
import { Effect, Fiber, Layer, Result } from "effect"
import * as BackupReplayer from "../src/functions/BackupReplayer.js"
import { capture, context, invocationError, invoke, onTestClock, scriptedContext } from "./fixtures/Events.js"

const hour10 = Date.parse("2026-11-24T10:00:00.000Z")
const minute = 60_000

const envelopeBytes = (id: string, receivedAt: number) => {
  const record = Telemetry.decodeRecord(Harness.record(id))
  if (Result.isFailure(record)) throw new Error(record.failure.reason)
  return Telemetry.encodeEnvelope(
    new Telemetry.TelemetryEnvelope({ tenant: "acme", receivedAt, record: record.success })
  )
}

/** Writes one archive object of records `ids`, arrived from `at` on; its key. */
const archiveObject = (archive: Archive.Service, ids: ReadonlyArray<string>, at: number) =>
  archive.write(ids.map((id, i) => ({ data: envelopeBytes(id, at + i), arrivedAt: at + i })))

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

const setup = (
  options: {
    readonly pipeline?: MemoryPipeline.Options
    readonly stream?: (stream: RecordStream.Service) => RecordStream.Service
  } = {}
) =>
  Effect.gen(function* () {
    const pipeline = yield* MemoryPipeline.make({
      backup: false,
      processor: { pollIntervalMillis: 3_600_000 },
      ...options.pipeline
    })
    // Three objects in the window (two filed under 10:00, one under 11:00), one after it.
    const keys = [
      yield* archiveObject(pipeline.archive, ids("a", 5), hour10 + 5 * minute),
      yield* archiveObject(pipeline.archive, ids("b", 5), hour10 + 30 * minute),
      yield* archiveObject(pipeline.archive, ids("c", 5), hour10 + 70 * minute),
      yield* archiveObject(pipeline.archive, ids("d", 5), hour10 + 130 * minute)
    ]
    const layer =
      options.stream === undefined
        ? pipeline.layers.backupReplayer
        : Layer.mergeAll(
            Layer.succeed(Archive.Archive, pipeline.archive),
            Layer.succeed(RecordStream.RecordStream, options.stream(pipeline.stream))
          )
    const out = capture()
    const handler = BackupReplayer.make(yield* onTestClock(layer), {
      output: out.output,
      shutdown: false,
      env: {}
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
    return { pipeline, handler, out, keys }
  })

const window = { from: "2026-11-24T10:00:00Z", to: hour10 + 2 * 60 * minute - 1 }

const streamIds = (stream: MemoryStream.Service) =>
  Effect.map(stream.records, (records) =>
    records.map((r) => {
      const decoded = Telemetry.decodeEnvelope(r.data)
      if (Result.isFailure(decoded)) throw new Error(decoded.failure.reason)
      expect(r.partitionKey).toBe(decoded.success.record.id)
      return decoded.success.record.id
    })
  )

describe("backup replayer function", () => {
  it.effect("puts every record filed under the window's hours into the stream, as archived", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const response = yield* invoke(handler, window, yield* context())
      expect(response).toEqual({
        done: true,
        window: { from: "2026-11-24T10:00:00.000Z", to: "2026-11-24T11:59:59.999Z" },
        objects: 3,
        read: 15,
        put: 15,
        undecodable: [],
        unreadable: []
      })
      expect((yield* streamIds(pipeline.stream)).sort()).toEqual(
        [...ids("a", 5), ...ids("b", 5), ...ids("c", 5)].sort()
      )
      // The bytes the collector wrote, unchanged.
      const archived = (yield* pipeline.archive.read(
        (yield* pipeline.archive.list({ from: hour10, to: hour10 }))[0]!
      ))[0]!
      expect((yield* pipeline.stream.records).map((r) => Buffer.from(r.data).toString())).toContain(
        Buffer.from(archived).toString()
      )
    })
  )

  it.effect(
    "stops at the deadline with a checkpoint; invoked with `next`, it finishes without putting a record twice",
    () =>
      Effect.gen(function* () {
        let remaining = 10_000
        const { pipeline, handler, keys } = yield* setup({
          // Every PutRecords call costs 4.5 s of the invocation's 10 s (margin 1 s).
          stream: (stream) => ({
            ...stream,
            putRecords: (entries) =>
              Effect.andThen(
                Effect.sync(() => (remaining -= 4500)),
                stream.putRecords(entries)
              )
          })
        })
        const first = yield* invoke(handler, window, yield* scriptedContext(() => remaining))
        expect(first).toMatchObject({
          done: false,
          put: 10,
          stopped: { reason: "Deadline" },
          next: {
            from: "2026-11-24T10:00:00.000Z",
            to: "2026-11-24T11:59:59.999Z",
            checkpoint: { key: keys[2], index: 0 }
          }
        })
        remaining = 10_000
        const second = yield* invoke(handler, first.next, yield* scriptedContext(() => remaining))
        expect(second).toMatchObject({ done: true, read: 5, put: 5 })
        expect(second.next).toBeUndefined()
        const putIds = yield* streamIds(pipeline.stream)
        expect(putIds).toHaveLength(15)
        expect(new Set(putIds).size).toBe(15)
      })
  )

  it.effect("cut off in the middle of a call, it answers the last checkpoint the stream confirmed", () =>
    Effect.gen(function* () {
      let calls = 0
      const { pipeline, handler, keys } = yield* setup({
        stream: (stream) => ({
          ...stream,
          putRecords: (entries) => (++calls === 1 ? stream.putRecords(entries) : Effect.never)
        })
      })
      const fiber = yield* Effect.forkChild(invoke(handler, window, yield* context({ timeout: "5 seconds" })))
      yield* Harness.whileClockRuns(Fiber.join(fiber), "500 millis")
      const response = yield* Fiber.join(fiber)
      expect(response).toMatchObject({
        done: false,
        objects: 3,
        put: 5,
        next: { checkpoint: { key: keys[0], index: 5 } }
      })
      expect(yield* pipeline.stream.recordCount).toBe(5)
    })
  )

  it.effect("replaying a window twice leaves the index as the first replay made it", () =>
    Effect.gen(function* () {
      // The pipeline's processor runs here: what is put into the stream ends in the index.
      const { pipeline, handler } = yield* setup({ pipeline: { processor: {} } })
      const ctx = yield* context({ timeout: "1 hour" })
      yield* invoke(handler, window, ctx)
      yield* Harness.settle(pipeline)
      expect(yield* pipeline.index.count).toBe(15)
      yield* invoke(handler, window, ctx)
      yield* Harness.settle(pipeline)
      expect(yield* pipeline.index.count).toBe(15)
      expect(yield* pipeline.stream.recordCount).toBe(30)
      for (const id of [...ids("a", 5), ...ids("c", 5)]) expect(yield* pipeline.index.writes(id)).toBe(1)
    })
  )

  it.effect("a stream that keeps refusing: it stops after backing off, at the first record not stored", () =>
    Effect.gen(function* () {
      const { pipeline, handler, keys } = yield* setup()
      yield* pipeline.stream.startOutage()
      const fiber = yield* Effect.forkChild(invoke(handler, window, yield* context()))
      yield* Harness.whileClockRuns(Fiber.join(fiber), "5 seconds")
      const response = yield* Fiber.join(fiber)
      expect(response).toMatchObject({
        done: false,
        put: 0,
        stopped: { reason: "StreamRefused" },
        next: { checkpoint: { key: keys[0], index: 0 } }
      })
      expect(response.stopped?.message).toContain("still refused 5 of 5 records")
    })
  )

  it.effect("records that are not envelopes are reported with their object and skipped", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const key = yield* pipeline.archive.write([
        { data: new TextEncoder().encode("not an envelope"), arrivedAt: hour10 + 50 * minute },
        { data: envelopeBytes("e-0", hour10), arrivedAt: hour10 + 50 * minute }
      ])
      const response = yield* invoke(handler, window, yield* context())
      expect(response).toMatchObject({ done: true, objects: 4, read: 17, put: 16 })
      expect(response.undecodable).toEqual([{ key, index: 0, reason: expect.stringContaining("JSON") }])
    })
  )

  it.effect("a window it cannot read fails the invocation, saying what is wrong", () =>
    Effect.gen(function* () {
      const { handler } = yield* setup()
      const ctx = yield* context()
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ from: "yesterday", to: window.to }, "from"],
        [{ from: 1_795_514_400, to: window.to }, "this looks like epoch seconds"],
        [{ from: window.to, to: hour10 }, "must have `to` at or after `from`"],
        [{ from: window.from }, "to: is missing"],
        [{ ...window, checkpoint: { key: "", index: -1 } }, "checkpoint.key: must not be empty"]
      ]
      for (const [event, problem] of cases) {
        const error = yield* invocationError(handler, event, ctx)
        expect(error.name).toBe("InvalidEvent")
        expect(error.message).toContain("backup-replayer takes a replay window")
        expect(error.message).toContain(problem)
      }
      const tooLong = yield* invocationError(
        handler,
        { from: 0 + hour10, to: hour10 + 400 * 24 * 60 * minute },
        ctx
      )
      expect(tooLong.name).toBe("ArchiveError")
      expect(tooLong.message).toContain("at most 8784")
    })
  )

  it.effect("a window inside one hour replays the objects filed under that hour only", () =>
    Effect.gen(function* () {
      const { pipeline, handler } = yield* setup()
      const response = yield* invoke(
        handler,
        { from: hour10 + 60 * minute, to: hour10 + 60 * minute },
        yield* context()
      )
      expect(response).toMatchObject({ done: true, objects: 1, put: 5 })
      expect((yield* streamIds(pipeline.stream)).sort()).toEqual(ids("c", 5))
    })
  )
})
