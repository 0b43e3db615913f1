/**
 * End-to-end delay (indexed − receivedAt) is recorded as an Effect metric from which avg, p50,
 * p99 and max can be read. This file is the only one in its worker that writes records, so the
 * process-global metric holds exactly this run's samples.
 */
import { describe, expect, it } from "@effect/vitest"
import { Metrics } from "@spillway/core"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryPipeline from "../../src/MemoryPipeline.js"
import { apiKey, records, settle } from "./harness.js"

describe("end-to-end delay", () => {
  it.effect("is recorded per written record and readable as avg / p50 / p99 / max", () =>
    Effect.gen(function* () {
      // Lambda polls each shard about once a second; each bulk request takes 200 ms.
      const pipeline = yield* MemoryPipeline.make({ index: { bulkLatency: "200 millis" } })
      for (let i = 0; i < 10; i++) {
        yield* pipeline.collect(apiKey, records(100, `batch${i}`))
        yield* TestClock.adjust("370 millis")
      }
      yield* settle(pipeline)

      const delay = yield* Metrics.readDelay
      expect(delay.count).toBe(1000)
      // Every record waits for the bulk request (200 ms) and at most one poll interval (1 s) before it.
      expect(delay.avg).toBeGreaterThanOrEqual(200)
      expect(delay.max).toBeLessThanOrEqual(1200 + 250)
      expect(delay.p50).toBeGreaterThanOrEqual(200)
      expect(delay.p50).toBeLessThanOrEqual(delay.p99)
      expect(delay.p99).toBeLessThanOrEqual(delay.max)
    })
  )
})
