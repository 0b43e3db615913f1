/**
 * `npm run bench:lambdas`: per Lambda bundle, its size (raw and gzip) and its cold start under
 * AWS's runtime client: process spawn → first invocation answered (median of `RUNS`, default 5),
 * with the init part (spawn → the runtime asks for its first event: Lambda's `Init Duration`) and
 * a warm invocation after it. Next to them, a Powertools batch processor
 * (`powertools-processor.ts`) bundled the same way, as a baseline. Figures only, no assertions.
 *
 * It runs `npm run build` first (so `dist/` holds what it measured) and takes whichever entry
 * files exist. The functions on an event source mapping get an empty batch (`{ Records: [] }`),
 * the collector and the backup replayer `{}`, which they refuse. Each function gets a
 * deployment's variables with every endpoint on a closed loopback port (`Deployment.unreachable`),
 * so nothing leaves the machine. Cold starts here leave out what Lambda adds (sandbox creation,
 * code download) and run on this machine's CPU, not a 128 MB–1 GB share of one: compare the rows
 * with each other, not with Lambda's REPORT lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  type BuiltBundle,
  buildBundles,
  customSinkExample,
  discoverFunctions,
  functionNames
} from "../scripts/bundles.js"
import * as Deployment from "../test/support/Deployment.js"
import * as LambdaProcess from "../test/support/LambdaProcess.js"

const runs = Number(process.env.RUNS ?? 5)

/** An empty batch for the functions on an event source mapping (Kinesis or SQS: `Records`), else `{}`. */
const batchFunctions = new Set([
  "processor",
  "redriver",
  "failure-reprocessor",
  "custom-sink-processor",
  "powertools-processor"
])
const eventFor = (name: string): unknown => (batchFunctions.has(name) ? { Records: [] } : {})

interface Run {
  readonly coldMs: number
  readonly initMs: number
  readonly warmMs: number
  readonly answer: string
}

const coldStart = async (bundle: BuiltBundle): Promise<Run> => {
  const fn = await LambdaProcess.start({
    bundleDir: bundle.dir,
    memoryMb: 1024,
    timeoutSeconds: 30,
    env: Deployment.unreachable
  })
  try {
    const started = performance.now()
    const first = await fn.invoke(eventFor(bundle.name))
    const coldMs = performance.now() - started
    const warm = await fn.invoke(eventFor(bundle.name))
    const body = JSON.stringify(first.body) ?? "undefined"
    return {
      coldMs,
      initMs: first.initDurationMs ?? Number.NaN,
      warmMs: warm.durationMs,
      answer: `${first.kind} ${body.length > 70 ? `${body.slice(0, 67)}...` : body}`
    }
  } finally {
    await fn.close()
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const ms = (value: number) => value.toFixed(0)

const baselineDir = mkdtempSync(join(tmpdir(), "spillway-bench-baseline-"))
try {
  const built = await buildBundles(discoverFunctions(), { clean: [...functionNames, customSinkExample.name] })
  const baseline = await buildBundles(
    [
      {
        name: "powertools-processor",
        entry: fileURLToPath(new URL("./powertools-processor.ts", import.meta.url))
      }
    ],
    { outdir: baselineDir }
  )
  const bundles = [...built.bundles, ...baseline.bundles]
  const missing = functionNames.filter((name) => !built.bundles.some((b) => b.name === name))
  if (missing.length > 0) console.log(`not measured (no entry file yet): ${missing.join(", ")}`)
  console.log(
    `cold starts: median of ${runs} runs each, interleaved; node ${process.version}, aws-lambda-ric\n`
  )

  const results = new Map<string, Array<Run>>(bundles.map((b) => [b.name, []]))
  for (let run = 0; run < runs; run++) {
    for (const bundle of bundles) results.get(bundle.name)!.push(await coldStart(bundle))
  }

  const label = (bundle: BuiltBundle) =>
    baseline.bundles.includes(bundle) ? `${bundle.name} (baseline)` : bundle.name
  const width = Math.max(...bundles.map((b) => label(b).length))
  console.log(
    `${"bundle".padEnd(width)}  ${"raw bytes".padStart(10)}  ${"gzip bytes".padStart(10)}  ${"cold ms".padStart(7)}  ${"(min–max)".padEnd(11)}  ${"init ms".padStart(7)}  ${"warm ms".padStart(7)}  first answer`
  )
  for (const bundle of bundles) {
    const measured = results.get(bundle.name)!
    const cold = measured.map((r) => r.coldMs)
    console.log(
      [
        label(bundle).padEnd(width),
        String(bundle.bytes).padStart(10),
        String(bundle.gzipBytes).padStart(10),
        ms(median(cold)).padStart(7),
        `(${ms(Math.min(...cold))}–${ms(Math.max(...cold))})`.padEnd(11),
        ms(median(measured.map((r) => r.initMs))).padStart(7),
        ms(median(measured.map((r) => r.warmMs))).padStart(7),
        measured[0]!.answer
      ].join("  ")
    )
  }
  // `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
  if (process.env.BENCH_JSON !== undefined) {
    writeFileSync(
      process.env.BENCH_JSON,
      JSON.stringify({
        bench: "bundles",
        node: process.version,
        runs,
        rows: bundles.map((bundle) => {
          const measured = results.get(bundle.name)!
          return {
            name: label(bundle),
            bytes: bundle.bytes,
            gzipBytes: bundle.gzipBytes,
            coldMs: Math.round(median(measured.map((r) => r.coldMs))),
            initMs: Math.round(median(measured.map((r) => r.initMs))),
            warmMs: Math.round(median(measured.map((r) => r.warmMs)))
          }
        })
      })
    )
  }
} finally {
  rmSync(baselineDir, { recursive: true, force: true })
}
