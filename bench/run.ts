/**
 * `npm run bench`: every benchmark, one after the other, in one run, each printing its own
 * figures as it goes; then `bench/RESULTS.md` (a table per benchmark, each target met or not,
 * with the machine and the command) and `bench/results.json` (the raw figures) from that run.
 *
 * Each benchmark is an npm script that, given `BENCH_JSON=<file>`, also writes its figures there
 * as JSON. `BENCH=processor,collector npm run bench` runs some of them (RESULTS.md then holds
 * only those). `BENCH_RENDER=1 npm run bench` runs nothing: it writes RESULTS.md again from the
 * figures in `bench/results.json` (after a change to how they are shown). Figures only: nothing
 * here fails on a missed target.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

type Figures = Record<string, unknown> & { readonly rows?: ReadonlyArray<Record<string, unknown>> }

interface Bench {
  readonly name: string
  readonly script: string
  readonly title: string
  readonly render: (figures: Figures) => ReadonlyArray<string>
}

const n = (value: unknown, digits = 0) =>
  typeof value === "number"
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : String(value)
const rowsOf = (figures: Figures) => figures.rows ?? []
const rowNamed = (figures: Figures, name: string) => rowsOf(figures).find((r) => r.name === name)
const verdict = (met: boolean) => (met ? "**met**" : "**not met**")

const benches: ReadonlyArray<Bench> = [
  {
    name: "processor",
    script: "bench:processor",
    title: "Processor hot path",
    render: (f) => {
      const spillway = rowNamed(f, "spillway")
      const ratio = Number(spillway?.ratioToPlainLoop)
      return [
        `${n(f.records)} Kinesis records of ~${n(f.averageRecordBytes)} bytes, ${String(f.duplicates)}, a sink that only serializes the \`_bulk\` body; median of ${n(f.rounds)} interleaved rounds, each on a fresh dedup cache.`,
        "",
        "| | µs per record | × plain loop | bytes allocated per record |",
        "|---|---:|---:|---:|",
        ...rowsOf(f).map(
          (r) =>
            `| ${String(r.name)} | ${n(r.usPerRecord, 2)} | ${n(r.ratioToPlainLoop, 2)} | ${n(r.bytesAllocatedPerRecord)} |`
        ),
        "",
        `Target: Spillway ≤ 1.15× the plain loop — ${verdict(ratio <= 1.15)} (${n(ratio, 2)}×).`
      ]
    }
  },
  {
    name: "collector",
    script: "bench:collector",
    title: "Collector",
    render: (f) => {
      const spillway = rowNamed(f, "spillway")
      const ratio = Number(spillway?.ratioToPlain)
      return [
        `${n(f.recordsPerBody)}-record bodies (${n(f.bodyBytes)} bytes), \`wrk -t1 -c${n(f.connections)} -d${n(f.durationSeconds)}s\` from a second process on loopback, both servers putting into the same memory stream (64 shards, no throughput limit).`,
        "",
        "| | requests/s | records/s | × plain | server CPU µs per record | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
        ...rowsOf(f).map(
          (r) =>
            `| ${String(r.name)} | ${n(r.requestsPerSecond)} | ${n(r.recordsPerSecond)} | ${n(r.ratioToPlain, 2)} | ${n(r.cpuMicrosPerRecord, 2)} | ${n(r.p99Ms, 1)} | ${n(r.non2xx)} |`
        ),
        "",
        `Target: Spillway ≥ 0.7× the plain server's records/s — ${verdict(ratio >= 0.7)} (${n(ratio, 2)}×).`
      ]
    }
  },
  {
    name: "e2e",
    script: "bench:e2e",
    title: "End to end: spillway dev",
    render: (f) => [
      `\`spillway dev --records ${n(f.records)} --shards ${n(f.shards)}\`: the whole pipeline in memory in real time in one process (collector on HTTP, demo traffic, stream, mapping emulation, processor, index, backup), on this machine's cores. First as fast as the collector takes the traffic (the throughput; the delay then is the backlog), then at 80% of that rate (the delay of the pipeline itself).`,
      "",
      "| run | seconds | records/s | indexed | lost | delay avg ms | p50 ms | p99 ms | max ms | peak memory MiB |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...rowsOf(f).map((r) => {
        const delay = (r.delayMs ?? {}) as Record<string, number>
        return `| ${String(r.name)} | ${n(r.seconds, 1)} | ${n(r.recordsPerSecond)} | ${n(r.indexed)} | ${n(r.lost)} | ${n(delay.avg)} | ${n(delay.p50)} | ${n(delay.p99)} | ${n(delay.max)} | ${n(r.peakRssMiB)} |`
      })
    ]
  },
  {
    name: "bundles",
    script: "bench:lambdas",
    title: "Lambda bundles: size and cold start",
    render: (f) => {
      const functions = rowsOf(f).filter((r) => !String(r.name).includes("baseline"))
      const sizeMet = functions.every((r) => Number(r.bytes) <= 1024 * 1024)
      const coldMet = functions.every((r) => Number(r.coldMs) <= 150)
      return [
        `Under AWS's runtime client (\`aws-lambda-ric\`), spawn to first invocation answered, median of ${n(f.runs)} runs; every endpoint a closed loopback port.`,
        "",
        "| bundle | raw bytes | gzip bytes | cold start ms | of which init ms | warm ms |",
        "|---|---:|---:|---:|---:|---:|",
        ...rowsOf(f).map(
          (r) =>
            `| ${String(r.name)} | ${n(r.bytes)} | ${n(r.gzipBytes)} | ${n(r.coldMs)} | ${n(r.initMs)} | ${n(r.warmMs)} |`
        ),
        "",
        `Targets: every bundle ≤ 1 MiB — ${verdict(sizeMet)}; cold start ≤ 150 ms — ${verdict(coldMet)}.`,
        ...(coldMet
          ? []
          : [
              "",
              "The cold-start gap, its profile and what would close it: README, *Bundle sizes and cold starts*."
            ])
      ]
    }
  },
  {
    name: "compare",
    script: "bench:compare",
    title: "The delay floor: `simulate --compare` over seeds",
    render: (f) => {
      const sec = (ms: unknown) => n(Number(ms) / 1000, 2)
      const published = (f.published ?? {}) as Record<string, { avgMs: number; p99Ms: number }>
      const fanOut = rowNamed(f, "fanOut")
      return [
        `The published before/after experiment on virtual time, seeds 1–${n(f.seeds)}: the mean (and range) of each column's delay. \`fanOut\` is Spillway's design as the production stages deploy it: an enhanced fan-out consumer (push ~70 ms after arrival, no poll interval), two batches in flight per shard.`,
        "",
        "| column | delay avg s | range | delay p99 s | range | published avg / p99 s |",
        "|---|---:|---|---:|---|---|",
        ...rowsOf(f).map((r) => {
          const a = r.avgRange as [number, number]
          const p = r.p99Range as [number, number]
          const ref = published[String(r.name)]
          return `| ${String(r.name)} | ${sec(r.avgMs)} | ${sec(a[0])}–${sec(a[1])} | ${sec(r.p99Ms)} | ${sec(p[0])}–${sec(p[1])} | ${ref === undefined ? "–" : `${sec(ref.avgMs)} / ${sec(ref.p99Ms)}`} |`
        }),
        "",
        `Target for the fan-out column: avg ≤ 0.4 s — ${verdict(Number(fanOut?.avgMs) <= 400)} (${sec(fanOut?.avgMs)} s); p99 ≤ 1.0 s — ${verdict(Number(fanOut?.p99Ms) <= 1000)} (${sec(fanOut?.p99Ms)} s on average, worst seed ${sec((fanOut?.p99Range as [number, number] | undefined)?.[1])} s). The fan-out column is the production stages' mapping: an enhanced fan-out consumer and two batches in flight per shard (ParallelizationFactor 2), so a sticky record's retries hold up half a shard, not all of it.`
      ]
    }
  },
  {
    name: "faults",
    script: "bench:faults",
    title: "Delay under faults",
    render: (f) => {
      const sec = (ms: unknown) => `${n(Number(ms) / 1000, 1)} s`
      const outage = (f.outage ?? []) as ReadonlyArray<Record<string, unknown>>
      const spike = (f.spike ?? []) as ReadonlyArray<Record<string, unknown>>
      return [
        `\`kinesis-outage\` (the stream refuses every call for 35% of the traffic time), seeds 1–${n(f.seeds)}: target p99 ≤ the outage's length + 5 s, nothing lost.`,
        "",
        "| records | shards | outage | bound | p99 by seed | lost | target |",
        "|---:|---:|---:|---:|---|---:|---|",
        ...outage.map(
          (r) =>
            `| ${n(r.records)} | ${n(r.shards)} | ${sec(r.outageMs)} | ${sec(r.boundMs)} | ${(r.p99Ms as ReadonlyArray<number>).map(sec).join(", ")} | ${n(r.lost)} | ${verdict(r.met === true)} |`
        ),
        "",
        "`black-friday` (a 10× spike, 3,000 records/s ±20%), seed 5, by stream capacity: target p99 < 5 s through the spike, nothing lost, with the recommended configuration (4 provisioned shards or on-demand; the scenario's 1 and 2 shards show what too little capacity does).",
        "",
        "| records | stream | p99 | avg | parked | lost | target |",
        "|---:|---|---:|---:|---:|---:|---|",
        ...spike.map(
          (r) =>
            `| ${n(r.records)} | ${String(r.stream)} | ${sec(r.p99Ms)} | ${sec(r.avgMs)} | ${n(r.parked)} | ${n(r.lost)} | ${r.met === true ? "p99 < 5 s" : "p99 ≥ 5 s"} |`
        )
      ]
    }
  },
  {
    name: "simulator",
    script: "bench:simulator",
    title: "What a simulation costs",
    render: (f) => [
      `Runs of the simulator (seed ${n(f.seed)}) in one process, one after the other.`,
      "",
      "| run | records | wall s | CPU s | µs per record | peak memory MiB | KiB per record | delay p99 ms | parked | lost |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...rowsOf(f).map((r) => {
        const delay = (r.delayMs ?? {}) as Record<string, number>
        return `| ${String(r.name ?? r.scenario)} | ${n(r.records)} | ${n(r.wallSeconds, 1)} | ${n(r.cpuSeconds, 1)} | ${n(r.usPerRecord, 1)} | ${n(r.peakRssMiB)} | ${n(r.kibPerRecord, 2)} | ${n(delay.p99)} | ${n(r.parked)} | ${n(r.lost)} |`
      }),
      "",
      `Target: a 1,000,000-record run in a few minutes and under 4 GB — ${verdict(rowsOf(f).every((r) => Number(r.peakRssMiB) < 4096 && Number(r.wallSeconds) <= 300))}.`
    ]
  },
  {
    name: "clickstream",
    script: "bench:clickstream",
    title: "Clickstream: clean + derive, and the forwarder",
    render: (f) => {
      const ms = (f.cleanDeriveMs ?? {}) as Record<string, number>
      return [
        `clean + derive for a 200-event batch (${n(f.batches)} batches): p50 ${n(ms.p50, 1)} ms, p99 ${n(ms.p99, 1)} ms, max ${n(ms.max, 1)} ms — next to the original function's 70–120 ms (before its 100–200 ms Datadog call).`,
        "",
        "| forwarder, 5,000-line deliveries into the in-memory intake | lines | points | lines/s | points/s |",
        "|---|---:|---:|---:|---:|",
        ...rowsOf(f).map(
          (r) =>
            `| ${String(r.name)} | ${n(r.lines)} | ${n(r.points)} | ${n(r.linesPerSecond)} | ${n(r.pointsPerSecond)} |`
        )
      ]
    }
  },
  {
    name: "virtual-time",
    script: "bench:virtual-time",
    title: "Virtual time (the simulator's clock)",
    render: (f) => [
      `One fiber, ${n(f.sleeps)} sleeps of 1 s, 5 runs each.`,
      "",
      "| | median ms | range ms | µs per wake-up |",
      "|---|---:|---:|---:|",
      ...rowsOf(f).map(
        (r) =>
          `| ${String(r.name)} | ${n(r.medianMs)} | ${n(r.minMs)}–${n(r.maxMs)} | ${n(r.microsPerWake, 1)} |`
      )
    ]
  },
  {
    name: "cache",
    script: "bench:cache",
    title: "Dedup cache",
    render: (f) => [
      `${n(f.ids)} UUID-shaped ids.`,
      "",
      "| structure | bytes per entry | inserts/s | lookups/s (50% hits) | false positives |",
      "|---|---:|---:|---:|---:|",
      ...rowsOf(f).map(
        (r) =>
          `| ${String(r.name)} | ${n(Number(r.bytes) / Number(f.ids), 1)} | ${n(r.insertsPerSec)} | ${n(r.lookupsPerSec)} | ${n(r.falsePositives)} |`
      )
    ]
  }
]

interface Stored {
  readonly started: string
  readonly machine: string
  readonly node: string
  readonly commit: string
  readonly loadAverage?: ReadonlyArray<number>
  readonly command?: string
  readonly results: ReadonlyArray<{
    bench: string
    seconds: number
    exitCode: number | null
    figures: Figures | undefined
  }>
}

const wanted = process.env.BENCH?.split(",").map((s) => s.trim())
const renderOnly = process.env.BENCH_RENDER === "1"
const readStored = (): Stored => {
  const file = join(root, "bench/results.json")
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Stored
  } catch (error) {
    console.error(
      `BENCH_RENDER=1: cannot read ${file} (${error instanceof Error ? error.message : String(error)}); run npm run bench first`
    )
    process.exit(2)
  }
}
const stored: Stored | undefined = renderOnly ? readStored() : undefined
const chosen = benches.filter((b) => wanted === undefined || wanted.includes(b.name))
const started = stored === undefined ? new Date() : new Date(stored.started)
const loadBefore = stored?.loadAverage ?? loadavg()
const results: Array<{
  bench: Bench
  figures: Figures | undefined
  seconds: number
  exitCode: number | null
}> = []
if (stored !== undefined) {
  for (const result of stored.results) {
    const bench = benches.find((b) => b.name === result.bench)
    if (bench !== undefined) results.push({ ...result, bench })
  }
} else {
  const scratch = mkdtempSync(join(tmpdir(), "spillway-bench-"))
  try {
    for (const bench of chosen) {
      console.log(`\n== npm run ${bench.script}\n`)
      const file = join(scratch, `${bench.name}.json`)
      const t0 = performance.now()
      const run = spawnSync("npm", ["run", "-s", bench.script], {
        cwd: root,
        stdio: "inherit",
        env: { ...process.env, BENCH_JSON: file }
      })
      let figures: Figures | undefined
      try {
        figures = JSON.parse(readFileSync(file, "utf8")) as Figures
      } catch {
        figures = undefined
      }
      results.push({ bench, figures, seconds: (performance.now() - t0) / 1000, exitCode: run.status })
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

let node = stored?.node ?? "unknown"
let commit = stored?.commit ?? "unknown"
if (stored === undefined) {
  node = execFileSync(join(root, "node_modules/node/bin/node"), ["--version"]).toString().trim()
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root }).toString().trim()
  } catch {}
}
const machine =
  stored?.machine ??
  `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${n(totalmem() / 2 ** 30, 1)} GiB`
const command =
  stored?.command ?? (wanted === undefined ? "npm run bench" : `BENCH=${wanted.join(",")} npm run bench`)
const lines = [
  "# Benchmark results",
  "",
  `Written by \`npm run bench\` (\`bench/run.ts\`) on ${started.toISOString()}; raw figures in \`bench/results.json\`.`,
  "",
  `- Machine: ${machine}; load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")} at the start`,
  `- Node ${node}; commit ${commit}`,
  `- Command: \`${command}\``,
  ""
]
for (const { bench, figures, seconds, exitCode } of results) {
  lines.push(`## ${bench.title}`, "", `\`npm run ${bench.script}\`, ${seconds.toFixed(0)} s.`, "")
  if (figures === undefined) lines.push(`No figures: the benchmark exited with ${String(exitCode)}.`, "")
  else lines.push(...bench.render(figures), "")
}
writeFileSync(join(root, "bench/RESULTS.md"), lines.join("\n"))
if (stored === undefined) {
  writeFileSync(
    join(root, "bench/results.json"),
    `${JSON.stringify({ started: started.toISOString(), machine, node, commit, loadAverage: loadBefore, command, results: results.map((r) => ({ bench: r.bench.name, seconds: r.seconds, exitCode: r.exitCode, figures: r.figures })) }, null, 2)}\n`
  )
}
console.log(
  stored === undefined
    ? "\nwrote bench/RESULTS.md and bench/results.json"
    : "\nwrote bench/RESULTS.md from bench/results.json"
)
