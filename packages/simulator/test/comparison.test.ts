/**
 * The fourth `--compare` column: Spillway's configuration as the production stages deploy it, on
 * an enhanced fan-out consumer with two batches in flight per shard. It changes only how records
 * reach the function (pushed `fanOutPropagationMillis` after they are written, no poll interval,
 * each partition key in one of two lanes), so the half second a record waits on average for the
 * next poll is gone, a retried batch holds up half a shard, and what remains is the propagation,
 * the function's time and the faults.
 *
 * Runs on 100 s of the model's traffic (8,000 records) to stay quick; the seeds 1–10 figures are
 * `npm run bench:compare`'s.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Comparison } from "../src/index.js"

const { columnConfigs, columnNames, model, runComparisonWith } = Comparison
const short = { ...model, records: 8000 }
const run = (m: Comparison.Model) => Effect.promise(() => Effect.runPromise(runComparisonWith(1, m)))

describe("--compare, the fan-out column", () => {
  it("is Spillway's configuration with only the consumer and the batches per shard changed", () => {
    const { enhancedFanOut, parallelizationFactor, ...fanOut } = columnConfigs.fanOut
    const { enhancedFanOut: polled, parallelizationFactor: single, ...spillway } = columnConfigs.spillway
    expect(fanOut).toEqual(spillway)
    expect([enhancedFanOut, polled]).toEqual([true, false])
    expect([parallelizationFactor, single]).toEqual([2, 1])
    expect(columnNames.filter((name) => columnConfigs[name].enhancedFanOut)).toEqual(["fanOut"])
  })

  it.effect(
    "under the seed's fault mix: under 0.4 s on average, the poll wait gone, nothing lost",
    () =>
      Effect.gen(function* () {
        const { columns } = yield* run(short)
        const { spillway, fanOut } = columns
        expect(fanOut.delayMs.avg).toBeLessThanOrEqual(400)
        // Polling costs half the poll interval on average; the push costs the propagation.
        expect(spillway.delayMs.avg - fanOut.delayMs.avg).toBeGreaterThan(
          model.pollIntervalMillis / 2 - model.fanOutPropagationMillis
        )
        expect(fanOut.delayMs.p99).toBeLessThan(spillway.delayMs.p99)
        for (const name of columnNames) {
          expect(columns[name].records.lost, name).toBe(0)
          expect(columns[name].records.indexed, name).toBe(short.records)
        }
        expect(fanOut.functionErrors).toBe(0)
      }),
    60_000
  )

  it.effect(
    "without faults, every record is written within the push and about one write: the delay floor",
    () =>
      Effect.gen(function* () {
        const calm = { ...short, throttleRate: 0, overloadThrottleRate: 0, stickyRate: 0 }
        const { columns } = yield* run(calm)
        const write = calm.writeOverheadMillis + calm.perDocumentMillis * 10
        const fanOut = columns.fanOut.delayMs
        // Pushed after the propagation, then written: never sooner than that.
        expect(fanOut.p50).toBeGreaterThanOrEqual(calm.fanOutPropagationMillis + calm.writeOverheadMillis)
        // At worst behind the shard's previous batch, which takes about one write.
        expect(fanOut.max).toBeLessThanOrEqual(calm.fanOutPropagationMillis + 2 * write)
        // The standard iterator's records wait for the next poll.
        expect(columns.spillway.delayMs.max).toBeGreaterThan(calm.pollIntervalMillis)
        expect(columns.spillway.delayMs.p50).toBeGreaterThan(fanOut.p50 + calm.pollIntervalMillis / 4)
      }),
    60_000
  )
})
