/**
 * The recovery commands' programs in this process, on memory backends and `TestClock`: the cases
 * the end-to-end runs do not reach — what is left and how it is told (exit 1), and the refusals
 * that must come before anything changes (exit 2).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Archive, DedupCache, DocumentSink, FallbackQueue, RecordStream } from "@spillway/core"
import { MemoryPipeline, MemoryQueue } from "@spillway/memory"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import type * as OpenSearchIndex from "../src/backends/OpenSearchIndex.js"
import * as Progress from "../src/backends/Progress.js"
import * as Rehearsal from "../src/backends/Rehearsal.js"
import * as SinkAsStream from "../src/backends/SinkAsStream.js"
import { Refused } from "../src/Refusal.js"
import * as Checkpoint from "../src/replay/Checkpoint.js"
import * as ReplayWindow from "../src/replay/ReplayWindow.js"
import * as ReprocessFailures from "../src/reprocess-failures/ReprocessFailures.js"
import * as RestoreIndex from "../src/restore/RestoreIndex.js"

const start = Date.parse("2026-11-24T09:00:00.000Z")
const minute = 60_000
const silent = Progress.make({ command: "test", silent: true })
const apiKey = MemoryPipeline.defaultApiKeys[0].key

const settle = (pipeline: MemoryPipeline.Pipeline) =>
  Effect.gen(function* () {
    let idle = 0
    for (let i = 0; i < 600 && idle < 2; i++) {
      yield* TestClock.adjust("1 second")
      idle = (yield* pipeline.isIdle) ? idle + 1 : 0
    }
    expect(idle).toBe(2)
  })

const records = (prefix: string, n: number, at: number, value: (i: number) => unknown = (i) => i) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    type: "cpu",
    timestamp: new Date(at).toISOString(),
    payload: { value: value(i) }
  }))

describe("restore", () => {
  /** A pipeline with a snapshot, then a poison record (the index maps `value` as a number), then the loss. */
  const lostIndex = Effect.gen(function* () {
    yield* TestClock.setTime(start)
    const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 1 } })
    yield* pipeline.collect(apiKey, records("before", 50, start))
    yield* settle(pipeline)
    yield* TestClock.adjust("10 minutes")
    const snapshot = yield* pipeline.index.takeSnapshot
    yield* TestClock.adjust("10 minutes")
    yield* pipeline.collect(apiKey, [
      ...records("between", 30, start),
      ...records("poison", 1, start, () => "high")
    ])
    yield* settle(pipeline)
    yield* pipeline.backup!.flush
    const lostAt = start + 30 * minute
    yield* TestClock.setTime(lostAt)
    yield* pipeline.index.deleteIndex
    const marks = new Map<string, OpenSearchIndex.RestoreMark>()
    const world: RestoreIndex.World = {
      store: Rehearsal.snapshotStore(pipeline.index, marks),
      index: Rehearsal.probe(pipeline.index, marks)
    }
    const restore = (options: Partial<RestoreIndex.Options>) =>
      Effect.flatMap(silent, (progress) =>
        RestoreIndex.run(
          world,
          {
            choice: { _tag: "Before", time: lostAt },
            replace: false,
            lookbackMillis: 60 * minute,
            skipUnreadable: false,
            ...options
          },
          progress
        )
      ).pipe(
        Effect.provideService(Archive.Archive, pipeline.archive),
        Effect.provideService(DocumentSink.DocumentSink, pipeline.index.sink),
        Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 1000 }))
      )
    return { pipeline, snapshot, restore }
  })

  it.effect("a record the index refuses is named as missing, and the exit code says partial", () =>
    Effect.gen(function* () {
      const { pipeline, restore } = yield* lostIndex
      expect((yield* pipeline.failures.records).length).toBe(1)
      const outcome = yield* restore({})
      expect(outcome._tag).toBe("Restored")
      if (outcome._tag !== "Restored") return
      expect(outcome.archive.failed.map((f) => f.recordId)).toEqual(["poison-0"])
      expect(outcome.verification).toMatchObject({ missing: 1, missingIds: ["poison-0"] })
      expect(RestoreIndex.exitCode(outcome)).toBe(1)
      const text = RestoreIndex.format(outcome, "memory")
      expect(text).toMatch(/ {2}failed {5}1 record:\n {4}poison-0: /)
      expect(text).toMatch(/MISSING 1$/m)
      expect(text).toContain("  missing    1 id archived but not in the index, such as poison-0")
      expect(text.split("\n").at(-1)).toMatch(/^partial \(exit 1\)/)
      // Everything else is back.
      expect(yield* pipeline.index.count).toBe(80)
    })
  )

  it.effect("refuses, changing nothing: an unknown snapshot, a loss before every snapshot", () =>
    Effect.gen(function* () {
      const { pipeline, restore } = yield* lostIndex
      const unknown = yield* Effect.flip(restore({ choice: { _tag: "Named", name: "hourly-0" } }))
      expect(unknown).toBeInstanceOf(Refused)
      expect(unknown.message).toBe(
        "there is no snapshot named hourly-0 in the in-memory index (1 snapshot: `spillway restore` without --snapshot or --before lists them)"
      )
      const early = yield* Effect.flip(restore({ choice: { _tag: "Before", time: start } }))
      expect(early).toBeInstanceOf(Refused)
      expect(early.message).toBe(
        "no successful snapshot in the in-memory index started before 2026-11-24T09:00:00Z (1 snapshot in all)"
      )
      expect(yield* pipeline.index.count).toBe(0)
    })
  )
})

describe("replay", () => {
  const world = Effect.gen(function* () {
    yield* TestClock.setTime(start)
    const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 1 } })
    yield* pipeline.collect(apiKey, [
      ...records("kept", 20, start),
      ...records("poison", 1, start, () => "high")
    ])
    yield* settle(pipeline)
    yield* pipeline.backup!.flush
    yield* pipeline.index.deleteIndex
    return pipeline
  })
  const dir = () => mkdtempSync(join(tmpdir(), "spillway-replay-test-"))
  const window = { from: start, to: start + 60 * minute - 1000 }
  const options = (checkpointFile: string, target: string): ReplayWindow.Options => ({
    window,
    dryRun: false,
    ratePerSecond: undefined,
    target,
    checkpointFile,
    restart: false,
    skipUnreadable: false
  })

  it.effect("refuses a checkpoint file of another window or target, before anything is put", () =>
    Effect.gen(function* () {
      const pipeline = yield* world
      const folder = dir()
      const file = join(folder, "c.json")
      const other = Checkpoint.fresh({ from: window.from, to: window.to + 1 }, "stream:x", start)
      writeFileSync(file, JSON.stringify(other))
      const replay = (target: string) =>
        Effect.flatMap(silent, (progress) =>
          ReplayWindow.run(options(file, target), { index: undefined }, progress)
        ).pipe(
          Effect.provideService(Archive.Archive, pipeline.archive),
          Effect.provideService(RecordStream.RecordStream, pipeline.stream)
        )
      const otherWindow = yield* Effect.flip(replay("stream:x"))
      expect(otherWindow).toBeInstanceOf(Refused)
      expect(otherWindow.message).toMatch(
        /c\.json is the checkpoint of another window \(2026-11-24T09:00:00Z to 2026-11-24T09:59:59\.001Z\): give that window/
      )
      writeFileSync(file, JSON.stringify(Checkpoint.fresh(window, "sink:elsewhere", start)))
      const otherTarget = yield* Effect.flip(replay("stream:x"))
      expect(otherTarget.message).toMatch(/is the checkpoint of a replay into sink:elsewhere, not stream:x/)
      expect(yield* pipeline.stream.recordCount).toBe(21)
      rmSync(folder, { recursive: true, force: true })
    })
  )

  it.effect(
    "--to-sink: through the processor's stage into the index; a record it refuses is listed (exit 1)",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* world
        const folder = dir()
        const into = yield* SinkAsStream.make("telemetry").pipe(
          Effect.provideService(DocumentSink.DocumentSink, pipeline.index.sink),
          Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 1000 }))
        )
        const outcome = yield* Effect.flatMap(silent, (progress) =>
          ReplayWindow.run(
            options(join(folder, "c.json"), "sink:telemetry"),
            { index: undefined, rejected: into.rejected },
            progress
          )
        ).pipe(
          Effect.provideService(Archive.Archive, pipeline.archive),
          Effect.provideService(RecordStream.RecordStream, into.stream)
        )
        expect(outcome).toMatchObject({ _tag: "Replayed", put: 21, toPut: 21 })
        if (outcome._tag !== "Replayed") return
        expect(outcome.rejected.map((r) => r.recordId)).toEqual(["poison-0"])
        expect(ReplayWindow.exitCode(outcome)).toBe(1)
        expect(ReplayWindow.format(outcome, "memory")).toContain(
          "  rejected   1 record the index refuses: poison-0: "
        )
        expect(yield* pipeline.index.count).toBe(20)
        rmSync(folder, { recursive: true, force: true })
      })
  )
})

describe("reprocess-failures", () => {
  it.effect(
    "keeps a message that is not an on-failure record, and one whose range is in another stream, saying why",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 1 }, backup: false })
        const queue = yield* MemoryQueue.make({ queueName: "on-failure" })
        const elsewhere = JSON.stringify({
          requestContext: {
            requestId: "r-1",
            functionArn: "arn:aws:lambda:us-east-1:123456789012:function:p",
            condition: "RetryAttemptsExhausted",
            approximateInvokeCount: 2
          },
          responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
          version: "1.0",
          timestamp: "2026-11-24T09:00:00.000Z",
          KinesisBatchInfo: {
            shardId: "shardId-000000000000",
            startSequenceNumber: "1",
            endSequenceNumber: "2",
            approximateArrivalOfFirstRecord: "2026-11-24T09:00:00.000Z",
            approximateArrivalOfLastRecord: "2026-11-24T09:00:00.000Z",
            batchSize: 2,
            streamArn: "arn:aws:kinesis:us-east-1:123456789012:stream/other"
          }
        })
        yield* queue.send([
          { id: "a", body: "{not json" },
          { id: "b", body: elsewhere }
        ])
        const outcome = yield* Effect.flatMap(silent, (progress) =>
          ReprocessFailures.run(
            { ...queue, name: "on-failure", depth: Effect.map(queue.stats, (s) => s.visible + s.inFlight) },
            { dryRun: false, visibilityTimeoutSeconds: 300 },
            progress
          )
        ).pipe(
          Effect.provide(
            Layer.mergeAll(
              Layer.succeed(RecordStream.RecordStream, pipeline.stream),
              Layer.succeed(DedupCache.DedupCache, DedupCache.make({ capacity: 100 })),
              Layer.succeed(DocumentSink.DocumentSink, pipeline.index.sink),
              Layer.succeed(FallbackQueue.FallbackQueue, queue)
            )
          )
        )
        expect(outcome.received).toBe(2)
        expect(outcome.reprocessed).toEqual([])
        expect(outcome.kept.map((k) => k.reason)).toEqual([
          expect.stringMatching(/^not an on-failure record: /),
          `its range is in stream arn:aws:kinesis:us-east-1:123456789012:stream/other, not ${pipeline.stream.streamArn}: reprocess it with --stream set to that one`
        ])
        expect(ReprocessFailures.exitCode(outcome)).toBe(1)
        // Both are visible again for whoever comes next; neither was deleted.
        expect((yield* queue.stats).visible).toBe(2)
      })
  )
})
