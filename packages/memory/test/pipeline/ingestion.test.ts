/**
 * The foundation's promises, end to end on the memory backends, with time moving only through
 * TestClock: throttling and outages lose nothing, and every record is indexed exactly once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import { apiKey, indexReport, records, settle } from "./harness.js"

describe("ingestion under stream faults", () => {
  it.effect(
    "throttled PutRecords entries go to the fallback queue, are redriven, and are indexed exactly once",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* MemoryPipeline.make({ stream: { shardCount: 2 } })
        // Throttle every third entry of the collector's calls.
        yield* pipeline.stream.injectEntryFailures((_entry, index) =>
          index % 3 === 0 ? "ProvisionedThroughputExceededException" : undefined
        )
        const sent = records(1500)
        const results = yield* Effect.forEach([0, 500, 1000], (from) =>
          pipeline.collect(apiKey, sent.slice(from, from + 500))
        )
        yield* pipeline.stream.injectEntryFailures(undefined)

        expect(results.map((r) => r.accepted)).toEqual([500, 500, 500])
        expect(results.reduce((n, r) => n + r.parked, 0)).toBe(501)
        expect(results.every((r) => r.unavailable.length === 0 && r.rejected.length === 0)).toBe(true)

        yield* settle(pipeline)
        const report = yield* indexReport(
          pipeline,
          sent.map((r) => r.id)
        )
        expect(report).toEqual({ count: 1500, missing: [], writtenMoreThanOnce: [] })
        expect((yield* pipeline.queue.stats).total).toBe(0)
        expect((yield* pipeline.deadLetterQueue.stats).total).toBe(0)
      })
  )

  it.effect("a stream outage during collection loses nothing: everything is indexed after it ends", () =>
    Effect.gen(function* () {
      const pipeline = yield* MemoryPipeline.make()
      yield* pipeline.stream.startOutage({ for: "2 minutes" })
      const sent = records(2000)
      for (let i = 0; i < 2000; i += 250) {
        const result = yield* pipeline.collect(apiKey, sent.slice(i, i + 250))
        expect(result).toMatchObject({ accepted: 250, stored: 0, parked: 250, unavailable: [] })
      }
      // While the stream is down, the redriver keeps failing and the records stay parked.
      yield* settle(pipeline, { max: "1 minute" }).pipe(Effect.flip)
      expect(yield* pipeline.index.count).toBe(0)
      expect((yield* pipeline.queue.stats).total).toBeGreaterThan(0)

      yield* settle(pipeline)
      const report = yield* indexReport(
        pipeline,
        sent.map((r) => r.id)
      )
      expect(report).toEqual({ count: 2000, missing: [], writtenMoreThanOnce: [] })
      expect((yield* pipeline.deadLetterQueue.stats).total).toBe(0)
    })
  )

  it.effect(
    "when neither the stream nor the fallback queue takes records, the collector says so per record",
    () =>
      Effect.gen(function* () {
        const pipeline = yield* MemoryPipeline.make()
        yield* pipeline.stream.startOutage()
        yield* pipeline.queue.startOutage()
        const result = yield* pipeline.collect(apiKey, records(3)).pipe(Effect.forkChild)
        yield* settle(pipeline, { max: "5 seconds" }).pipe(Effect.ignore)
        const answered = yield* Fiber.await(result)
        expect(answered._tag).toBe("Success")
        if (answered._tag === "Success") {
          expect(answered.value.accepted).toBe(0)
          expect(answered.value.unavailable.map((u) => u.index)).toEqual([0, 1, 2])
          expect(answered.value.unavailable[0]?.reason).toContain("unavailable")
        }
      })
  )
})
