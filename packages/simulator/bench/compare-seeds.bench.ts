/**
 * The `--compare` model across seeds: what it was calibrated on, and how far each column lands
 * from the published figures on average. One seed is one sample of a process that swings (the
 * "before" column sits near a tipping point), so the calibration is judged on the mean.
 *
 *   npm run bench:compare            (seeds 1–10, about 10 s a seed)
 *   SEEDS=20 npm run bench:compare
 *
 * Prints one row per seed, then the mean, the range and the error of the mean against the
 * published before (4.4 s / 23.3 s) and after (1.3 s / 3.9 s). The spillway and fanOut columns
 * (Spillway's design on the standard iterator and on an enhanced fan-out consumer) have nothing
 * published to compare with; fanOut is held to the issue's target for the delay floor instead
 * (avg ≤ 0.4 s, p99 ≤ 1.0 s), printed as met or missed.
 */
import { writeFileSync } from "node:fs"
import { Effect } from "effect"
import { Comparison } from "../src/index.js"

const { columnNames, model, published, runComparison } = Comparison
type ColumnName = Comparison.ColumnName

const seeds = Number(process.env.SEEDS ?? 10)
if (!Number.isInteger(seeds) || seeds < 1)
  throw new Error(`SEEDS must be a positive integer, got ${process.env.SEEDS}`)

const seconds = (ms: number) => (ms / 1000).toFixed(2).padStart(6)
const rows: Array<{ readonly [K in ColumnName]: { readonly avg: number; readonly p99: number } }> = []

console.log(
  `--compare model over seeds 1–${seeds}: ${model.records} records, ${model.shards} shards, ${model.records / model.recordsPerSecond} s of traffic`
)
console.log(`seed | ${columnNames.map((name) => name.padStart(15)).join(" | ")} | lost | wall`)
console.log(`     | ${columnNames.map(() => "avg s / p99 s".padStart(15)).join(" | ")} |      |`)
for (let seed = 1; seed <= seeds; seed++) {
  const started = performance.now()
  const c = await Effect.runPromise(runComparison(seed))
  const lost = columnNames.reduce((n, name) => n + c.columns[name].records.lost, 0)
  rows.push({
    before: c.columns.before.delayMs,
    after: c.columns.after.delayMs,
    spillway: c.columns.spillway.delayMs,
    fanOut: c.columns.fanOut.delayMs
  })
  console.log(
    `${String(seed).padStart(4)} | ${columnNames.map((name) => `${seconds(c.columns[name].delayMs.avg)} / ${seconds(c.columns[name].delayMs.p99)}`).join(" | ")} | ${String(lost).padStart(4)} | ${((performance.now() - started) / 1000).toFixed(1)} s`
  )
}

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
const pct = (value: number, reference: number) => {
  const e = ((value - reference) / reference) * 100
  return `${e >= 0 ? "+" : ""}${e.toFixed(1)}%`
}
console.log("")
for (const name of columnNames) {
  const avgs = rows.map((r) => r[name].avg)
  const p99s = rows.map((r) => r[name].p99)
  const line = `${name.padEnd(8)} mean ${seconds(mean(avgs))} s / ${seconds(mean(p99s))} s   range avg ${seconds(Math.min(...avgs))}–${seconds(Math.max(...avgs)).trim()} s, p99 ${seconds(Math.min(...p99s))}–${seconds(Math.max(...p99s)).trim()} s`
  const reference = name === "before" || name === "after" ? published[name] : undefined
  console.log(
    reference === undefined
      ? line
      : `${line}   error of the mean vs published ${seconds(reference.avgMs).trim()} / ${seconds(reference.p99Ms).trim()} s: ${pct(mean(avgs), reference.avgMs)} / ${pct(mean(p99s), reference.p99Ms)}`
  )
}
const floor = { avgMs: 400, p99Ms: 1000 }
const fanOutAvg = mean(rows.map((r) => r.fanOut.avg))
const fanOutP99 = mean(rows.map((r) => r.fanOut.p99))
console.log(
  `fanOut target (avg ≤ ${floor.avgMs / 1000} s, p99 ≤ ${floor.p99Ms / 1000} s): avg ${fanOutAvg <= floor.avgMs ? "met" : "missed"}, p99 ${fanOutP99 <= floor.p99Ms ? "met" : "missed"} (worst seed p99 ${seconds(Math.max(...rows.map((r) => r.fanOut.p99))).trim()} s)`
)

// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) {
  writeFileSync(
    process.env.BENCH_JSON,
    JSON.stringify({
      bench: "compare",
      node: process.version,
      seeds,
      published,
      rows: columnNames.map((name) => {
        const avgs = rows.map((r) => r[name].avg)
        const p99s = rows.map((r) => r[name].p99)
        return {
          name,
          avgMs: mean(avgs),
          p99Ms: mean(p99s),
          avgRange: [Math.min(...avgs), Math.max(...avgs)],
          p99Range: [Math.min(...p99s), Math.max(...p99s)]
        }
      })
    })
  )
}
