/**
 * End to end: `spillway dev --records N --shards S` (the whole pipeline in memory, in real time:
 * the collector on HTTP taking the demo traffic as fast as it accepts, the stream, the Lambda
 * mapping emulation, the processor, the index, the backup), with enough shards that the stream is
 * not the limit. Prints records/s over the whole run (start to summary), the end-to-end delay
 * (collector receipt to indexed) and the child's peak memory.
 *
 *   npm run bench:e2e          (RECORDS, default 1,000,000; SHARDS, default 16)
 */
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const records = Number(process.env.RECORDS ?? 1_000_000)
const shards = Number(process.env.SHARDS ?? 16)
const root = fileURLToPath(new URL("../../../", import.meta.url))

const started = performance.now()
const child = spawn(
  "/usr/bin/time",
  [
    "-f",
    "peak-rss-kb %M",
    process.execPath,
    "apps/cli/bin/spillway.js",
    "dev",
    "--port",
    "0",
    "--records",
    String(records),
    "--shards",
    String(shards)
  ],
  { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }
)
let output = ""
child.stdout.on("data", (chunk: Buffer) => {
  output += chunk.toString("utf8")
})
child.stderr.on("data", (chunk: Buffer) => {
  output += chunk.toString("utf8")
})
const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
const seconds = (performance.now() - started) / 1000

const figure = (label: string): number => {
  const match = new RegExp(`^\\s*${label}\\s+([\\d,]+)`, "m").exec(output)
  return match === null ? Number.NaN : Number(match[1]!.replaceAll(",", ""))
}
const delay = /delay \(ms\)\s+avg ([\d,.]+)\s+p50 ([\d,.]+)\s+p99 ([\d,.]+)\s+max ([\d,.]+)/.exec(output)
const ms = (i: number) => (delay === null ? Number.NaN : Number(delay[i]!.replaceAll(",", "")))
const rss = /peak-rss-kb (\d+)/.exec(output)

const report = {
  bench: "end to end",
  node: process.version,
  records,
  shards,
  exitCode: code,
  seconds: Number(seconds.toFixed(1)),
  indexed: figure("indexed"),
  lost: figure("lost"),
  recordsPerSecond: Math.round(records / seconds),
  delayMs: { avg: ms(1), p50: ms(2), p99: ms(3), max: ms(4) },
  peakRssMiB: rss === null ? Number.NaN : Math.round(Number(rss[1]) / 1024)
}

if (process.env.BENCH_JSON !== undefined) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report))
console.log(
  `spillway dev --records ${records.toLocaleString("en-US")} --shards ${shards}: ${report.seconds} s, ${report.recordsPerSecond.toLocaleString("en-US")} records/s, indexed ${report.indexed.toLocaleString("en-US")}, lost ${report.lost}, delay avg ${report.delayMs.avg} ms p50 ${report.delayMs.p50} ms p99 ${report.delayMs.p99} ms max ${report.delayMs.max} ms, peak memory ${report.peakRssMiB} MiB (exit ${code})`
)
if (code !== 0) console.log(output.split("\n").slice(-30).join("\n"))
