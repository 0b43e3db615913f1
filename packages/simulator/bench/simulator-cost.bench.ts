/**
 * What a simulation costs in real time and memory: a 1,000,000-record run, by default the
 * black-friday spike on its one provisioned shard (seed 5) — the heaviest scenario, since more
 * than half the records are parked and redriven many times while the shard drains. The performance
 * issue's target: a million records in a few minutes and under 4 GB.
 *
 *   npm run bench:simulator
 *   RUNS=black-friday:1000000,steady:1000000,black-friday:1000000:on-demand npm run bench:simulator
 *
 * `RUNS` lists `scenario:records[:shards|on-demand]`. Prints, per run, the wall and CPU time,
 * microseconds and peak resident bytes per record, the peak heap, and the run's own figures
 * (delay, parked, lost), in one process, one run after the other; with `BENCH_JSON=<file>` it
 * also writes them there (`npm run bench`).
 */
import { writeFileSync } from "node:fs"
import { getHeapStatistics } from "node:v8"
import { Effect } from "effect"
import { Scenario, Simulation } from "../src/index.js"

interface Run {
  readonly scenario: Scenario.ScenarioName
  readonly records: number
  readonly stream?: Simulation.StreamCapacity
  readonly label: string
}

const parseRun = (text: string): Run => {
  const [name = "", records = "", capacity] = text.split(":")
  if (!Scenario.isScenarioName(name)) throw new Error(`RUNS: unknown scenario ${JSON.stringify(name)}`)
  const count = Number(records)
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`RUNS: records must be a positive integer, got ${records}`)
  if (capacity === undefined) return { scenario: name, records: count, label: "scenario's shards" }
  if (capacity === "on-demand")
    return { scenario: name, records: count, stream: { mode: "onDemand" }, label: "on-demand" }
  const shards = Number(capacity)
  if (!Number.isInteger(shards) || shards < 1)
    throw new Error(`RUNS: shards must be a positive integer or on-demand, got ${capacity}`)
  return {
    scenario: name,
    records: count,
    stream: { mode: "provisioned", shards },
    label: `${shards} shards`
  }
}

const runs = (process.env.RUNS ?? "black-friday:1000000").split(",").map((s) => parseRun(s.trim()))
const seed = Number(process.env.SEED ?? 5)
const mib = (bytes: number) => bytes / 1_048_576

const rows: Array<Record<string, unknown>> = []
console.log(`simulator cost, seed ${seed}, Node ${process.version}`)
console.log(
  "scenario       | records   | stream            | wall s | CPU s | µs/record | peak RSS MiB | KiB/record | peak heap MiB | p99 s   | parked  | lost"
)
for (const run of runs) {
  let peakRss = process.memoryUsage().rss
  let peakHeap = getHeapStatistics().used_heap_size
  const sample = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
    peakHeap = Math.max(peakHeap, getHeapStatistics().used_heap_size)
  }, 100)
  const cpu = process.cpuUsage()
  const started = performance.now()
  const report = await Effect.runPromise(
    Simulation.runScenario(run.scenario, {
      seed,
      records: run.records,
      ...(run.stream === undefined ? {} : { stream: run.stream })
    })
  )
  const wall = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  clearInterval(sample)
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  const row = {
    name: `${run.scenario} ${run.records} ${run.label}`,
    scenario: run.scenario,
    records: run.records,
    stream: run.label,
    wallSeconds: Math.round(wall * 10) / 10,
    cpuSeconds: Math.round((used.user + used.system) / 1e5) / 10,
    usPerRecord: Math.round((wall * 1e6) / run.records),
    peakRssMiB: Math.round(mib(peakRss)),
    kibPerRecord: Math.round(((peakRss / 1024) * 10) / run.records) / 10,
    peakHeapMiB: Math.round(mib(peakHeap)),
    delayMs: report.delayMs,
    parked: report.fallbackParked,
    lost: report.records.lost,
    simulatedSeconds: report.simulatedSeconds
  }
  rows.push(row)
  console.log(
    `${run.scenario.padEnd(14)} | ${String(run.records).padStart(9)} | ${run.label.padEnd(17)} | ${row.wallSeconds.toFixed(1).padStart(6)} | ${row.cpuSeconds.toFixed(1).padStart(5)} | ${String(row.usPerRecord).padStart(9)} | ${String(row.peakRssMiB).padStart(12)} | ${row.kibPerRecord.toFixed(1).padStart(10)} | ${String(row.peakHeapMiB).padStart(13)} | ${(report.delayMs.p99 / 1000).toFixed(1).padStart(7)} | ${String(report.fallbackParked).padStart(7)} | ${report.records.lost}`
  )
}
const worst = rows.reduce((a, r) => Math.max(a, Number(r.wallSeconds)), 0)
const heaviest = rows.reduce((a, r) => Math.max(a, Number(r.peakRssMiB)), 0)
console.log(
  `target: a million records in a few minutes (≤ 300 s here) and under 4 GB — slowest ${worst.toFixed(1)} s, largest ${heaviest} MiB: ${worst <= 300 && heaviest < 4096 ? "met" : "not met"}`
)
if (process.env.BENCH_JSON !== undefined)
  writeFileSync(process.env.BENCH_JSON, JSON.stringify({ seed, rows }))
