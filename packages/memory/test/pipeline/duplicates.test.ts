/**
 * Duplicates and transient sink failures: the cache skips what was already written (and counts
 * it), the index holds one document per id, re-delivery after eviction is an idempotent
 * overwrite, and OpenSearch 429 bursts are retried until every record is indexed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Metrics } from "@spillway/core"
import { Effect, Metric } from "effect"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import { apiKey, indexReport, records, settle } from "./harness.js"

const skippedSoFar = Metric.value(Metrics.duplicatesSkipped).pipe(Effect.map((s) => s.count))
const retriesSoFar = Metric.value(Metrics.sinkRetries).pipe(Effect.map((s) => s.count))

describe("duplicates", () => {
  it.effect("are skipped by the cache and counted; the index holds one document per id", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make()
      const sent = records(1000)
      yield* pipeline.collect(apiKey, sent)
      yield* settle(pipeline)
      const before = yield* skippedSoFar

      // A producer (or a replay) writes the first 300 records to the stream again, byte for byte.
      const copies = (yield* pipeline.stream.records).slice(0, 300)
      yield* pipeline.stream.putRecords(copies.map((r) => ({ partitionKey: r.partitionKey, data: r.data })))
      // And the same again, twice within one put, to see in-batch duplicates counted too.
      const twice = copies.slice(0, 50).flatMap((r) => [r, r])
      yield* pipeline.stream.putRecords(twice.map((r) => ({ partitionKey: r.partitionKey, data: r.data })))
      yield* settle(pipeline)

      expect((yield* skippedSoFar) - before).toBe(400)
      const report = yield* indexReport(
        pipeline,
        sent.map((r) => r.id)
      )
      expect(report).toEqual({ count: 1000, missing: [], writtenMoreThanOnce: [] })
    })
  )

  it.effect("after eviction, a re-delivered id is written again idempotently: the same single document", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make({ dedup: { capacity: 100, evictionBatch: 10 } })
      const sent = records(300)
      yield* pipeline.collect(apiKey, sent)
      yield* settle(pipeline)
      const stats = yield* pipeline.cache.stats
      expect(stats.size).toBeLessThanOrEqual(100)
      expect(stats.evicted).toBeGreaterThanOrEqual(200)
      const original = yield* pipeline.index.get("r-0")

      const first = (yield* pipeline.stream.records).find((r) => r.partitionKey === "r-0")!
      yield* pipeline.stream.putRecords([{ partitionKey: first.partitionKey, data: first.data }])
      yield* settle(pipeline)

      expect(yield* pipeline.index.writes("r-0")).toBe(2)
      expect(yield* pipeline.index.count).toBe(300)
      expect((yield* pipeline.index.get("r-0"))?.source).toEqual(original?.source)
    })
  )
})

describe("OpenSearch rejections", () => {
  it.effect("429 bursts are retried with backoff and every record ends indexed", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make()
      const retriesBefore = yield* retriesSoFar
      // The next 1,500 items are refused with 429, and a fifth of everything after that.
      yield* pipeline.index.rejectNext(1500)
      yield* pipeline.index.setRejectionRate(0.2)
      const sent = records(2000)
      for (let i = 0; i < sent.length; i += 500) yield* pipeline.collect(apiKey, sent.slice(i, i + 500))
      yield* settle(pipeline)

      const report = yield* indexReport(
        pipeline,
        sent.map((r) => r.id)
      )
      expect(report).toEqual({ count: 2000, missing: [], writtenMoreThanOnce: [] })
      expect((yield* retriesSoFar) - retriesBefore).toBeGreaterThan(3)
      expect((yield* pipeline.index.stats).rejections).toBeGreaterThanOrEqual(1500)
      expect(yield* pipeline.failures.records).toEqual([])
    })
  )
})
