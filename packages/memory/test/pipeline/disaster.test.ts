/**
 * Disaster recovery, end to end: the index is lost, restored from its last snapshot, and the
 * records that arrived since are written again from the Firehose backup archive, so that the index
 * ends with every record, each as the live pipeline wrote it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Metrics } from "@spillway/core"
import { Clock, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import type * as MemoryIndex from "../../src/MemoryIndex.js"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import { apiKey, record, records, settle, whileClockRuns } from "./harness.js"

/** A realistic start, a minute before an hour ends, so the backup files objects under two hours. */
const start = Date.parse("2026-11-24T10:59:00.000Z")
const hour = 3_600_000

/** Collects `batch` in requests of at most 1,000 records (the collector's limit), all into the stream. */
const collectAll = (pipeline: MemoryPipeline.Pipeline, batch: ReadonlyArray<ReturnType<typeof record>>) =>
  Effect.gen(function* () {
    for (let i = 0; i < batch.length; i += 1000) {
      const result = yield* pipeline.collect(apiKey, batch.slice(i, i + 1000))
      expect(result.stored).toBe(Math.min(1000, batch.length - i))
    }
  })

/** A pipeline whose records have all reached the index and, flushed, the archive. */
const backedUp = (batch: ReadonlyArray<ReturnType<typeof record>>) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(start)
    // One shard: fewer pollers to wake while the clock runs through minutes of retries.
    const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 1 } })
    yield* collectAll(pipeline, batch)
    yield* settle(pipeline)
    yield* pipeline.backup!.flush
    return pipeline
  })

const allRange = (now: number) => ({ from: now - hour, to: now })

const delaysRecorded = Metric.value(Metrics.endToEndDelay).pipe(Effect.map((s) => s.count))

describe("disaster recovery", () => {
  it.effect(
    "snapshot + archive restore brings back every record, as the live pipeline wrote it, idempotently",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const pipeline = yield* MemoryPipeline.make()
        const beforeSnapshot = records(3000, "before")
        const betweenSnapshotAndLoss = records(2000, "between")
        const afterLoss = records(1000, "after")
        const all = [...beforeSnapshot, ...betweenSnapshotAndLoss, ...afterLoss]
        const ids = all.map((r) => r.id)
        // A sample from every phase, to compare bodies with what the live pipeline wrote.
        // The re-sent ones (below) are in it: the index must hold their first copy, as the live one did.
        const sample = [...ids.filter((_, i) => i % 97 === 0), "before-3", "before-9"]

        yield* collectAll(pipeline, beforeSnapshot)
        yield* settle(pipeline)
        const snapshot = yield* pipeline.index.takeSnapshot
        expect(snapshot.documents).toBe(3000)
        // A minute passes: Firehose delivers what it buffered (its oldest record waited 60 s), and
        // what comes next arrives in the next hour.
        yield* TestClock.adjust("1 minute")

        yield* collectAll(pipeline, betweenSnapshotAndLoss)
        // A client re-sends ten records it had sent before the snapshot: the cache skips them, so the
        // index keeps their first copy; the archive holds both.
        yield* collectAll(pipeline, beforeSnapshot.slice(0, 10))
        yield* settle(pipeline)
        expect(yield* pipeline.index.count).toBe(5000)

        const live = new Map<string, unknown>()
        for (const id of sample) live.set(id, (yield* pipeline.index.get(id))?.source)

        // The disaster: the index is deleted; the pipeline goes on and recreates it.
        yield* pipeline.index.deleteIndex
        yield* collectAll(pipeline, afterLoss)
        yield* settle(pipeline)
        yield* pipeline.backup!.flush
        for (const id of sample.filter((id) => id.startsWith("after"))) {
          live.set(id, (yield* pipeline.index.get(id))?.source)
        }
        expect([...live.values()].every((source) => source !== undefined)).toBe(true)

        // The loss is real: the first 5,000 are gone, the last 1,000 are there.
        expect(yield* pipeline.index.count).toBe(1000)
        for (const id of ids.slice(0, 5000)) expect(yield* pipeline.index.get(id)).toBeUndefined()
        for (const id of ids.slice(5000)) expect(yield* pipeline.index.get(id)).toBeDefined()

        // Step 1: the snapshot. OpenSearch restores only over a deleted (or closed) index, so the
        // index the pipeline recreated goes first, with the post-loss records in it.
        const refused = yield* Effect.flip(pipeline.index.restoreSnapshot(snapshot.name))
        expect(refused._tag).toBe("IndexExists")
        yield* pipeline.index.deleteIndex
        yield* pipeline.index.restoreSnapshot(snapshot.name)
        expect(yield* pipeline.index.count).toBe(3000)
        for (const r of beforeSnapshot) expect(yield* pipeline.index.get(r.id)).toBeDefined()
        for (const r of [...betweenSnapshotAndLoss, ...afterLoss]) {
          expect(yield* pipeline.index.get(r.id)).toBeUndefined()
        }

        // Step 2: the archive, from the snapshot on. In production the range starts a little before
        // it (the processing lag allowed for); here the pipeline had settled when it was taken.
        // Every id is in the cache: the restore must write past it.
        expect((yield* pipeline.cache.seen(ids)).every(Boolean)).toBe(true)
        const writesBefore = yield* pipeline.index.writes("between-0")
        const delaysBefore = yield* delaysRecorded
        const now = yield* Clock.currentTimeMillis
        const range = { from: snapshot.takenAt, to: now }
        const objects = (yield* pipeline.archive.objects).length
        expect(objects).toBeGreaterThan(1)
        expect(new Set((yield* pipeline.archive.objects).map((o) => o.key.slice(0, 14))).size).toBe(2)

        const result = yield* pipeline.restoreFromArchive(range)

        expect(result).toEqual({
          objects,
          read: 6010,
          // In the snapshot already; the ten re-sent after it included (their first copy stays).
          beforeRange: 3000,
          distinct: 3000,
          written: 3000,
          failed: [],
          undecodable: [],
          unreadable: []
        })
        expect(yield* pipeline.index.writes("between-0")).toBe(writesBefore + 1)
        expect(yield* pipeline.index.count).toBe(6000)
        for (const id of ids) expect(yield* pipeline.index.get(id)).toBeDefined()
        for (const id of sample) expect((yield* pipeline.index.get(id))?.source).toEqual(live.get(id))
        expect(yield* delaysRecorded).toBe(delaysBefore)

        // Running it again changes nothing but the versions.
        const documentsBefore = yield* pipeline.index.documents
        const again = yield* pipeline.restoreFromArchive(range)
        expect(again).toEqual(result)
        const documentsAfter = yield* pipeline.index.documents
        expect(documentsAfter).toHaveLength(6000)
        expect(new Map(documentsAfter.map((d) => [d.id, d.source]))).toEqual(
          new Map(documentsBefore.map((d) => [d.id, d.source]))
        )
        // Written again: the records since the snapshot; untouched: the snapshot's own.
        const versionsBefore = new Map(documentsBefore.map((d) => [d.id, d.version]))
        const bumped = (d: { readonly id: string; readonly version: number }) =>
          d.version === (versionsBefore.get(d.id) ?? 0) + 1
        expect(documentsAfter.filter((d) => d.id.startsWith("before")).every((d) => !bumped(d))).toBe(true)
        expect(documentsAfter.filter((d) => !d.id.startsWith("before")).every(bumped)).toBe(true)

        // The pipeline goes on: a record sent after the restore is indexed, once.
        yield* collectAll(pipeline, [record("afterwards")])
        yield* settle(pipeline)
        expect(yield* pipeline.index.count).toBe(6001)
      })
  )

  it.effect(
    "the snapshot must be the last one before the loss: one taken after it leaves records missing",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 1 } })
        yield* collectAll(pipeline, records(300, "early"))
        yield* settle(pipeline)
        const beforeLoss = yield* pipeline.index.takeSnapshot
        yield* TestClock.adjust("10 seconds")
        yield* collectAll(pipeline, records(200, "late"))
        yield* settle(pipeline)
        yield* pipeline.index.deleteIndex
        yield* TestClock.adjust("10 seconds")
        yield* collectAll(pipeline, records(100, "post"))
        yield* settle(pipeline)
        // The automated snapshots go on after the loss: this one holds only what came since.
        const afterLoss = yield* pipeline.index.takeSnapshot
        yield* pipeline.backup!.flush
        const now = yield* Clock.currentTimeMillis

        const recoverFrom = (snapshot: MemoryIndex.Snapshot) =>
          Effect.gen(function* () {
            yield* pipeline.index.deleteIndex
            yield* pipeline.index.restoreSnapshot(snapshot.name)
            yield* pipeline.restoreFromArchive({ from: snapshot.takenAt, to: now })
            return (yield* pipeline.index.documents).map((d) => d.id)
          })

        // The wrong one: everything indexed before the loss is gone for good.
        const wrong = new Set(yield* recoverFrom(afterLoss))
        expect(wrong.size).toBe(100)
        expect([...records(300, "early"), ...records(200, "late")].some((r) => wrong.has(r.id))).toBe(false)
        // The right one: all 600.
        expect(yield* recoverFrom(beforeLoss)).toHaveLength(600)
      })
  )

  it.effect("a record the index refuses is reported with the reason, not retried, and the rest written", () =>
    Effect.gen(function* () {
      const batch = records(200)
      // `payload.value` is mapped as a number by the first documents: a string there is refused (400).
      batch[150] = record("poison", { value: "not a number" })
      const pipeline = yield* backedUp(batch)
      expect(yield* pipeline.index.get("poison")).toBeUndefined()
      expect(yield* pipeline.index.count).toBe(199)
      yield* pipeline.index.deleteIndex
      const parseErrors = (yield* pipeline.index.stats).parseErrors

      // The archive holds the records in arrival order (one shard): `r-0` maps the field first again.
      const now = yield* Clock.currentTimeMillis
      const result = yield* pipeline.restoreFromArchive(allRange(now), { batchSize: 64 })

      expect(result).toMatchObject({ read: 200, distinct: 200, written: 199, undecodable: [] })
      expect(result.failed).toEqual([
        { recordId: "poison", reason: expect.stringContaining("mapper_parsing_exception"), retryable: false }
      ])
      expect(result.failed[0]?.reason).toContain("[payload.value] of type [long]")
      // Refused once: a rejection is not retried.
      expect((yield* pipeline.index.stats).parseErrors - parseErrors).toBe(1)
      expect(yield* pipeline.index.writes("poison")).toBe(0)
      expect(yield* pipeline.index.count).toBe(199)
      // The written ids are marked in the cache; the refused one is not.
      expect(yield* pipeline.cache.seen(["r-0", "r-199", "poison"])).toEqual([true, true, false])
    })
  )

  it.effect("an archive outage during the restore is retried until it ends", () =>
    Effect.gen(function* () {
      const batch = records(500)
      const pipeline = yield* backedUp(batch)
      yield* pipeline.index.deleteIndex
      const now = yield* Clock.currentTimeMillis
      yield* pipeline.archive.startOutage({ until: now + 45_000 })

      const fiber = yield* Effect.forkChild(pipeline.restoreFromArchive(allRange(now)))
      yield* TestClock.adjust("30 seconds")
      // Still waiting on the archive: nothing written yet.
      expect(fiber.pollUnsafe()).toBeUndefined()
      expect(yield* pipeline.index.count).toBe(0)
      const result = yield* whileClockRuns(Fiber.join(fiber), "1 second")

      expect(result).toMatchObject({ read: 500, distinct: 500, written: 500, failed: [] })
      expect(yield* pipeline.index.count).toBe(500)
      // It started the read again soon after the outage ended: the retry spacing is at most 12 s.
      expect((yield* Clock.currentTimeMillis) - now).toBeLessThan(45_000 + 12_000 + 1_000)
    })
  )

  it.effect("an archive outage longer than the two-minute read budget fails the restore with it", () =>
    Effect.gen(function* () {
      const pipeline = yield* backedUp(records(100))
      yield* pipeline.index.deleteIndex
      const now = yield* Clock.currentTimeMillis
      yield* pipeline.archive.startOutage({ until: now + 10 * 60_000 })

      const error = yield* whileClockRuns(Effect.flip(pipeline.restoreFromArchive(allRange(now))), "1 second")

      expect(error).toMatchObject({ _tag: "ArchiveError", reason: "Unavailable" })
      expect(error.isRetryable).toBe(true)
      const waited = (yield* Clock.currentTimeMillis) - now
      expect(waited).toBeGreaterThanOrEqual(120_000)
      expect(waited).toBeLessThanOrEqual(133_000)
      expect(yield* pipeline.index.count).toBe(0)
    })
  )
})
