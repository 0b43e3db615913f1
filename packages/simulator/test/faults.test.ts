/**
 * Delay under faults, held to the performance issue's targets on small runs (the bench
 * `bench/faults.bench.ts` prints the larger ones):
 *
 * - kinesis-outage: records parked while the stream is out come back within seconds of its
 *   recovery (the redriver holds a refused message back a second, or 2% of how long it has been
 *   parked, instead of the queue's 30 s visibility timeout): p99 ≤ the outage's length + 5 s,
 *   nothing lost;
 * - black-friday: the 10× spike (3,000 records/s) on the scenario's one provisioned shard parks
 *   records and its p99 grows with the spike; on 4 shards or on-demand capacity (4,000 records/s
 *   from the start) nothing is throttled and p99 stays under 5 s.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Scenario, Simulation } from "../src/index.js"

const outage = Scenario.scenarios["kinesis-outage"].faults[0]!

describe("delay under faults", () => {
  it.effect(
    "kinesis-outage: p99 within the outage's length + 5 s on seeds 1–3, nothing lost",
    () =>
      Effect.gen(function* () {
        for (const seed of [1, 2, 3]) {
          const report = yield* Simulation.runScenario("kinesis-outage", { seed, records: 3000 })
          const outageMillis = (outage.to - outage.from) * report.trafficSeconds * 1000
          expect(report.faults.streamRejectedCalls, `seed ${seed}`).toBeGreaterThan(0)
          expect(report.fallbackParked, `seed ${seed}`).toBeGreaterThan(0)
          expect(report.delayMs.p99, `seed ${seed}`).toBeLessThanOrEqual(outageMillis + 5000)
          expect(report.records.lost, `seed ${seed}`).toBe(0)
          expect(report.integrity.deadLettered, `seed ${seed}`).toBe(0)
        }
      }),
    60_000
  )

  it.effect(
    "black-friday: one shard parks the spike and its p99 passes 5 s; 4 shards or on-demand keep it under 5 s",
    () =>
      Effect.gen(function* () {
        const options = { seed: 5, records: 10_000 }
        const oneShard = yield* Simulation.runScenario("black-friday", options)
        expect(oneShard.stream).toBeUndefined()
        expect(oneShard.fallbackParked).toBeGreaterThan(0)
        expect(oneShard.delayMs.p99).toBeGreaterThan(5000)
        for (const stream of [
          { mode: "provisioned", shards: 4 },
          { mode: "onDemand" }
        ] satisfies ReadonlyArray<Simulation.StreamCapacity>) {
          const report = yield* Simulation.runScenario("black-friday", { ...options, stream })
          expect(report.stream, stream.mode).toEqual({ mode: stream.mode, shards: 4 })
          expect(report.faults.streamThrottledEntries, stream.mode).toBe(0)
          expect(report.fallbackParked, stream.mode).toBe(0)
          expect(report.delayMs.p99, stream.mode).toBeLessThan(5000)
          expect(report.records.lost, stream.mode).toBe(0)
          expect(report.records.indexed, stream.mode).toBe(report.records.accepted)
        }
      }),
    60_000
  )

  it.effect("refuses a shard count outside 1–1,000", () =>
    Effect.gen(function* () {
      for (const shards of [0, 1.5, 1001]) {
        const error = yield* Simulation.runScenario("steady", {
          seed: 1,
          records: 10,
          stream: { mode: "provisioned", shards }
        }).pipe(Effect.flip)
        expect(error.reason).toBe("InvalidOptions")
        expect(error.message).toContain("shards")
      }
    })
  )
})
