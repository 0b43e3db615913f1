/**
 * Delay under faults, on the simulator, against the performance issue's targets:
 *
 * - kinesis-outage: p99 ≤ the outage's length + 5 s, nothing lost, over seeds 1–`SEEDS`, at the
 *   default 5,000 records (a 5.8 s outage) and at `OUTAGE_RECORDS` (longer outages), on the
 *   scenario's one shard and on two;
 * - black-friday (the 10× spike, seed 5 as in the issue): p99 and what was parked, by stream
 *   capacity — 1 to 5 provisioned shards and on-demand — at `SPIKE_RECORDS` records; target
 *   p99 < 5 s through the spike, nothing lost.
 *
 *   npm run bench:faults        (also a part of `npm run bench`)
 *   SEEDS=10 OUTAGE_RECORDS=5000,20000,50000,100000 SPIKE_RECORDS=25000 npm run bench:faults
 *
 * Defaults: seeds 1–3, outages at 5,000, 20,000 and 50,000 records (5.8, 23.3 and 58.3 s),
 * spikes at 25,000, 50,000 and 100,000. Takes several minutes on two cores (the 100,000-record
 * spike on one shard is the long one). With `BENCH_JSON=<file>` it also writes its rows there.
 */
import { writeFileSync } from "node:fs"
import { Effect } from "effect"
import { Scenario, Simulation } from "../src/index.js"

const list = (name: string, fallback: string) =>
  (process.env[name] ?? fallback).split(",").map((n) => {
    const value = Number(n)
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`${name} must list positive integers, got ${n}`)
    return value
  })
const seeds = list("SEEDS", "3")[0]!
const outageRecords = list("OUTAGE_RECORDS", "5000,20000,50000")
const spikeRecords = list("SPIKE_RECORDS", "25000,50000,100000")

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const run = (name: Scenario.ScenarioName, options: Simulation.RunOptions) =>
  Effect.runPromise(Simulation.runScenario(name, options))

const outage = Scenario.scenarios["kinesis-outage"].faults[0]!
const outageRows: Array<Record<string, unknown>> = []
const spikeRows: Array<Record<string, unknown>> = []
console.log("kinesis-outage: p99 against the outage's length + 5 s")
console.log("records | shards | outage | bound  | p99 by seed                              | lost | target")
for (const records of outageRecords) {
  for (const shards of [1, 2]) {
    const p99s: Array<number> = []
    let lost = 0
    let bound = 0
    let length = 0
    for (let seed = 1; seed <= seeds; seed++) {
      const report = await run("kinesis-outage", {
        seed,
        records,
        ...(shards === 1 ? {} : { stream: { mode: "provisioned", shards } })
      })
      length = (outage.to - outage.from) * report.trafficSeconds * 1000
      bound = length + 5000
      p99s.push(report.delayMs.p99)
      lost += report.records.lost
    }
    const met = p99s.every((p99) => p99 <= bound) && lost === 0
    outageRows.push({ records, shards, outageMs: length, boundMs: bound, p99Ms: p99s, lost, met })
    console.log(
      `${String(records).padStart(7)} | ${String(shards).padStart(6)} | ${seconds(length).padStart(6)} | ${seconds(bound).padStart(6)} | ${p99s.map(seconds).join(", ").padEnd(40)} | ${String(lost).padStart(4)} | ${met ? "met" : "missed"}`
    )
  }
}

console.log("")
console.log(
  "black-friday (seed 5): p99 through the 10× spike by stream capacity; target p99 < 5 s, nothing lost"
)
console.log("records | stream      | p99     | avg     | parked | lost | target")
const capacities: ReadonlyArray<{ readonly label: string; readonly stream?: Simulation.StreamCapacity }> = [
  { label: "1 shard" },
  ...[2, 3, 4, 5].map((shards) => ({
    label: `${shards} shards`,
    stream: { mode: "provisioned" as const, shards }
  })),
  { label: "on-demand", stream: { mode: "onDemand" as const } }
]
for (const records of spikeRecords) {
  for (const capacity of capacities) {
    const report = await run("black-friday", {
      seed: 5,
      records,
      ...(capacity.stream === undefined ? {} : { stream: capacity.stream })
    })
    const met = report.delayMs.p99 < 5000 && report.records.lost === 0
    spikeRows.push({
      records,
      stream: capacity.label,
      p99Ms: report.delayMs.p99,
      avgMs: report.delayMs.avg,
      parked: report.fallbackParked,
      lost: report.records.lost,
      met
    })
    console.log(
      `${String(records).padStart(7)} | ${capacity.label.padEnd(11)} | ${seconds(report.delayMs.p99).padStart(7)} | ${seconds(report.delayMs.avg).padStart(7)} | ${String(report.fallbackParked).padStart(6)} | ${String(report.records.lost).padStart(4)} | ${met ? "met" : "missed"}`
    )
  }
}

if (process.env.BENCH_JSON !== undefined) {
  writeFileSync(process.env.BENCH_JSON, JSON.stringify({ seeds, outage: outageRows, spike: spikeRows }))
}
