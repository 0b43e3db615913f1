/**
 * End to end: `spillway dev --records N --shards S` (the whole pipeline in memory, in real time:
 * the collector on HTTP taking the demo traffic as fast as it accepts, the stream, the Lambda
 * mapping emulation, the processor, the index, the backup), with enough shards that the stream is
 * not the limit: first as fast as the collector takes the demo traffic (the throughput), then at
 * 80% of that rate (the delay the pipeline itself adds). Prints records/s over each run (start to
 * summary), the end-to-end delay (collector receipt to indexed) and the child's peak memory.
 *
 *   npm run bench:e2e          (RECORDS, default 1,000,000; SHARDS, default 16)
 */
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const records = Number(process.env.RECORDS ?? 1_000_000)
const shards = Number(process.env.SHARDS ?? 16)
const root = fileURLToPath(new URL("../../../", import.meta.url))

const run = async (rate: number | undefined) => {
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
      String(shards),
      ...(rate === undefined ? [] : ["--rate", String(rate)])
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
  const row = {
    name:
      rate === undefined
        ? "as fast as the collector takes it"
        : `at ${rate.toLocaleString("en-US")} records/s`,
    rate: rate ?? null,
    exitCode: code,
    seconds: Number(seconds.toFixed(1)),
    indexed: figure("indexed"),
    lost: figure("lost"),
    recordsPerSecond: Math.round(records / seconds),
    delayMs: { avg: ms(1), p50: ms(2), p99: ms(3), max: ms(4) },
    peakRssMiB: rss === null ? Number.NaN : Math.round(Number(rss[1]) / 1024)
  }
  console.log(
    `spillway dev --records ${records.toLocaleString("en-US")} --shards ${shards}${rate === undefined ? "" : ` --rate ${rate}`}: ${row.seconds} s, ${row.recordsPerSecond.toLocaleString("en-US")} records/s, indexed ${row.indexed.toLocaleString("en-US")}, lost ${row.lost}, delay avg ${row.delayMs.avg} ms p50 ${row.delayMs.p50} ms p99 ${row.delayMs.p99} ms max ${row.delayMs.max} ms, peak memory ${row.peakRssMiB} MiB (exit ${code})`
  )
  if (code !== 0) console.log(output.split("\n").slice(-30).join("\n"))
  return row
}

// First as fast as the collector takes the demo traffic: the pipeline's throughput (the delay then
// measures the backlog that builds up). Then at 80% of that rate, which the pipeline sustains:
// the delay of the pipeline itself.
const flat = await run(undefined)
const sustained = await run(Math.max(1, Math.floor((flat.recordsPerSecond * 0.8) / 100) * 100))
const report = { bench: "end to end", node: process.version, records, shards, rows: [flat, sustained] }

if (process.env.BENCH_JSON !== undefined) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report))
