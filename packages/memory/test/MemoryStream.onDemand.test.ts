/**
 * A memory stream in on-demand capacity mode, held to the documented figures: a new stream takes
 * 4,000 records and 4 MB a second, double the previous peak from the start, and double a new peak
 * once that peak is 15 minutes old; past its capacity it throttles entries as a provisioned one.
 */
import { describe, expect, it } from "@effect/vitest"
import type { RecordStream } from "@spillway/core"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryStream from "../src/MemoryStream.js"

let serial = 0
/** Puts `count` small records with fresh keys in calls of 500, all in the current second; answers how many were stored. */
const putMany = (stream: MemoryStream.Service, count: number, bytes = 10) =>
  Effect.gen(function* () {
    let stored = 0
    for (let from = 0; from < count; from += 500) {
      const entries: Array<RecordStream.PutEntry> = Array.from(
        { length: Math.min(500, count - from) },
        () => ({
          partitionKey: `key-${serial++}`,
          data: new Uint8Array(bytes)
        })
      )
      const outcomes = yield* stream.putRecords(entries)
      stored += outcomes.filter((o) => o._tag === "Stored").length
      for (const outcome of outcomes) {
        if (outcome._tag === "Failed")
          expect(outcome.errorCode).toBe("ProvisionedThroughputExceededException")
      }
    }
    return stored
  })

describe("MemoryStream, on-demand capacity", () => {
  it.effect(
    "a new stream takes 4,000 records a second whatever the shard, where 4 provisioned shards throttle",
    () =>
      Effect.gen(function* () {
        const onDemand = yield* MemoryStream.make({ capacity: { mode: "onDemand" } })
        const provisioned = yield* MemoryStream.make({ shardCount: 4 })
        expect(yield* onDemand.writeCapacity).toEqual({
          mode: "onDemand",
          recordsPerSecond: 4000,
          bytesPerSecond: 4 * 1_048_576
        })
        expect((yield* provisioned.writeCapacity).recordsPerSecond).toBe(4000)
        expect(yield* putMany(onDemand, 4000)).toBe(4000)
        // Random keys do not split evenly over 4 shards of 1,000 records a second each.
        expect(yield* putMany(provisioned, 4000)).toBeLessThan(4000)
        expect(yield* putMany(onDemand, 1)).toBe(0)
        expect((yield* onDemand.stats).throttledEntries).toBe(1)
        yield* TestClock.adjust("1 second")
        expect(yield* putMany(onDemand, 4000)).toBe(4000)
      })
  )

  it.effect("and 4 MB a second", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ capacity: { mode: "onDemand" } })
      // 100 KiB records (key bytes aside): 40 fit in 4 MiB, the 41st does not.
      expect(yield* putMany(stream, 41, 102_400)).toBe(40)
    })
  )

  it.effect("takes double the previous 30 days' peak from the start", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({
        capacity: { mode: "onDemand", previousPeakRecordsPerSecond: 3000 }
      })
      expect((yield* stream.writeCapacity).recordsPerSecond).toBe(6000)
      expect(yield* putMany(stream, 6001)).toBe(6000)
    })
  )

  it.effect("scales to double a new peak only once that peak is 15 minutes old", () =>
    Effect.gen(function* () {
      const stream = yield* MemoryStream.make({ capacity: { mode: "onDemand" } })
      expect(yield* putMany(stream, 3500)).toBe(3500)
      // A minute later, a spike past 4,000 a second is throttled: the 3,500 peak is not old enough.
      yield* TestClock.adjust("1 minute")
      expect(yield* putMany(stream, 5000)).toBe(4000)
      // The 3,500 second ended at 1 s; 15 minutes on (at 901 s), the stream takes double it.
      yield* TestClock.adjust("840999 millis")
      expect((yield* stream.writeCapacity).recordsPerSecond).toBe(4000)
      yield* TestClock.adjust("1 millis")
      expect((yield* stream.writeCapacity).recordsPerSecond).toBe(7000)
      expect(yield* putMany(stream, 7001)).toBe(7000)
      // The 4,000 written at 60 s count from 961 s, the 7,000 from 1,802 s.
      yield* TestClock.adjust("60 seconds")
      expect((yield* stream.writeCapacity).recordsPerSecond).toBe(8000)
      yield* TestClock.adjust("841 seconds")
      expect((yield* stream.writeCapacity).recordsPerSecond).toBe(14_000)
    })
  )
})
