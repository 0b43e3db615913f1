/**
 * FingerprintSet against a `Set<string>` baseline at the production capacity (10M UUID ids).
 *
 *   npm run bench      (node --expose-gc --max-old-space-size=8192 --import tsx …)
 *
 * Ids are UUID-v4-shaped strings derived from a counter (a bijective 32-bit mix, so all distinct),
 * made as flat one-byte strings like those JSON.parse yields. They are generated in chunks outside
 * the timed loops, and dropped after each chunk: FingerprintSet keeps no strings, while the Set
 * keeps them, so its bytes per entry include the strings, as they would in production.
 * Memory is `heapUsed + arrayBuffers` after a full GC, minus the same before the structure was made.
 */

import { writeFileSync } from "node:fs"
import { availableParallelism, loadavg } from "node:os"
import { FingerprintSet } from "../src/internal/FingerprintSet.js"

const N = 10_000_000
const CHUNK = 500_000
/** Ids added after the set is full, to measure eviction. */
const EXTRA = 2_000_000

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  throw new Error("run with node --expose-gc (npm run bench does)")
}

const fullGc = (): void => {
  gc()
  gc()
}

const memory = (): number => {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

// ---------------------------------------------------------------------------------------------
// Deterministic UUID-like ids

const HEX = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0))
const buf = Buffer.alloc(36)

/** A 32-bit bijective mixer (lowbias32-style constants). */
const mix = (input: number): number => {
  let x = input | 0
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad)
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97)
  return (x ^ (x >>> 15)) >>> 0
}

const put = (word: number, at: number, digits: number): void => {
  let w = word
  for (let d = digits - 1; d >= 0; d--) {
    buf[at + d] = HEX[w & 15]!
    w >>>= 4
  }
}

/** The i-th id, e.g. "3d5f0c1e-8a42-4b7c-9f10-5e2a6b7c8d9e"; distinct for distinct i < 2^32. */
const uuid = (i: number): string => {
  const a = mix(i ^ 0x5bd1e995)
  const b = mix(a ^ 0x9e3779b9)
  const c = mix(b + 0x632be5ab)
  const d = mix(c ^ i)
  put(a, 0, 8)
  buf[8] = 45
  put(b >>> 16, 9, 4)
  buf[13] = 45
  put((b & 0x0fff) | 0x4000, 14, 4)
  buf[18] = 45
  put(((c >>> 16) & 0x3fff) | 0x8000, 19, 4)
  buf[23] = 45
  put(c & 0xffff, 24, 4)
  put(d, 28, 8)
  return buf.toString("latin1", 0, 36)
}

/** Ids `start`, …, `start + count - 1`. */
const idsFrom = (start: number, count: number): Array<string> => {
  const ids = new Array<string>(count)
  for (let k = 0; k < count; k++) ids[k] = uuid(start + k)
  return ids
}

/**
 * The `chunk`-th slice of the lookup workload: alternately an inserted id (ids 0…N-1, visited in a
 * scattered order) and one never inserted (ids N…2N-1). Returns the ids; hits are the even indexes.
 */
const lookupChunk = (chunk: number): Array<string> => {
  const ids = new Array<string>(CHUNK)
  for (let k = 0; k < CHUNK; k++) {
    const q = chunk * CHUNK + k
    // 7_919_993 is odd and coprime to N = 10^7 (not divisible by 2 or 5): a permutation of 0…N-1.
    ids[k] = k % 2 === 0 ? uuid((q * 7_919_993) % N) : uuid(N + q)
  }
  return ids
}

interface Result {
  readonly name: string
  readonly bytes: number
  readonly insertsPerSec: number
  readonly lookupsPerSec: number
  readonly hits: number
  readonly falsePositives: number
}

const perSec = (count: number, ms: number): number => (count / ms) * 1000

/** Runs the lookup workload; returns elapsed ms, hits, and "seen" answers for never-inserted ids. */
const runLookups = (has: (id: string) => boolean) => {
  let ms = 0
  let hits = 0
  let falsePositives = 0
  for (let c = 0; c < N / CHUNK; c++) {
    const ids = lookupChunk(c)
    const t0 = performance.now()
    for (let k = 0; k < ids.length; k++) {
      if (has(ids[k]!)) {
        hits++
        if (k % 2 === 1) falsePositives++
      }
    }
    ms += performance.now() - t0
  }
  return { ms, hits, falsePositives }
}

// ---------------------------------------------------------------------------------------------
// FingerprintSet

const benchFingerprintSet = () => {
  fullGc()
  const before = memory()
  const set = new FingerprintSet({ capacity: N })
  let insertMs = 0
  for (let start = 0; start < N; start += CHUNK) {
    const ids = idsFrom(start, CHUNK)
    const t0 = performance.now()
    for (let k = 0; k < ids.length; k++) set.add(ids[k]!)
    insertMs += performance.now() - t0
  }
  fullGc()
  const bytes = memory() - before

  const lookups = runLookups((id) => set.has(id))

  // Past capacity: every add evicts, every `evictionBatch` adds one batch.
  let evictMs = 0
  let worstAddMs = 0
  for (let start = 3 * N; start < 3 * N + EXTRA; start += CHUNK) {
    const ids = idsFrom(start, CHUNK)
    const t0 = performance.now()
    for (let k = 0; k < ids.length; k++) {
      if (set.size === set.capacity) {
        const a0 = performance.now()
        set.add(ids[k]!)
        worstAddMs = Math.max(worstAddMs, performance.now() - a0)
      } else {
        set.add(ids[k]!)
      }
    }
    evictMs += performance.now() - t0
  }
  // FIFO check: the `evicted` oldest ids are gone, the ids after them are all still there.
  let oldestGone = 0
  for (let i = 0; i < set.evicted; i++) if (!set.has(uuid(i))) oldestGone++
  let restKept = 0
  for (let i = set.evicted; i < N; i++) if (set.has(uuid(i))) restKept++

  const result: Result = {
    name: "FingerprintSet",
    bytes,
    insertsPerSec: perSec(N, insertMs),
    lookupsPerSec: perSec(N, lookups.ms),
    hits: lookups.hits,
    falsePositives: lookups.falsePositives
  }
  const eviction = {
    insertsPerSec: perSec(EXTRA, evictMs),
    worstAddMs,
    batch: set.evictionBatch,
    evicted: set.evicted,
    size: set.size,
    oldestGone,
    restKept,
    restExpected: N - set.evicted,
    typedArrayBytes: set.byteLength
  }
  return { result, eviction }
}

// ---------------------------------------------------------------------------------------------
// Set<string> baseline

const benchSet = (): Result => {
  fullGc()
  const before = memory()
  const set = new Set<string>()
  let insertMs = 0
  for (let start = 0; start < N; start += CHUNK) {
    const ids = idsFrom(start, CHUNK)
    const t0 = performance.now()
    for (let k = 0; k < ids.length; k++) set.add(ids[k]!)
    insertMs += performance.now() - t0
  }
  fullGc()
  const bytes = memory() - before
  const lookups = runLookups((id) => set.has(id))
  return {
    name: "Set<string>",
    bytes,
    insertsPerSec: perSec(N, insertMs),
    lookupsPerSec: perSec(N, lookups.ms),
    hits: lookups.hits,
    falsePositives: lookups.falsePositives
  }
}

// ---------------------------------------------------------------------------------------------

const fmtInt = (x: number): string => Math.round(x).toLocaleString("en-US")
const fmtRate = (x: number): string => `${(x / 1e6).toFixed(2)} M/s`
const row = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>): string =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")

const started = performance.now()
console.log(
  `node ${process.version}, ${N.toLocaleString("en-US")} UUID-shaped ids (36 chars); ` +
    `${availableParallelism()} CPUs, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")} (throughput figures are noisy on a busy machine)\n`
)

const fp = benchFingerprintSet()
fullGc()
const baseline = benchSet()
fullGc()

const widths = [16, 11, 10, 12, 19, 9, 15]
console.log(
  row(
    ["structure", "bytes/entry", "total MB", "inserts/s", "lookups/s (50% hit)", "hits", "false positives"],
    widths
  )
)
console.log(widths.map((w) => "-".repeat(w)).join("-|-"))
for (const r of [fp.result, baseline]) {
  console.log(
    row(
      [
        r.name,
        (r.bytes / N).toFixed(1),
        (r.bytes / 1e6).toFixed(1),
        fmtRate(r.insertsPerSec),
        fmtRate(r.lookupsPerSec),
        fmtInt(r.hits),
        fmtInt(r.falsePositives)
      ],
      widths
    )
  )
}
console.log(
  `\nFingerprintSet typed arrays: ${fmtInt(fp.eviction.typedArrayBytes)} B = ` +
    `${(fp.eviction.typedArrayBytes / N).toFixed(2)} B/entry; Set<string> / FingerprintSet memory: ` +
    `${(baseline.bytes / fp.result.bytes).toFixed(1)}x`
)
const e = fp.eviction
console.log(
  `Full set, ${fmtInt(EXTRA)} more adds (evictionBatch ${fmtInt(e.batch)}): ${fmtRate(e.insertsPerSec)}, ` +
    `slowest add (one batch eviction) ${e.worstAddMs.toFixed(1)} ms; evicted ${fmtInt(e.evicted)}, ` +
    `size ${fmtInt(e.size)}`
)
console.log(
  `FIFO check: ${fmtInt(e.oldestGone)}/${fmtInt(e.evicted)} oldest ids gone, ` +
    `${fmtInt(e.restKept)}/${fmtInt(e.restExpected)} later ids kept`
)
const bound = N / 2 ** 64
console.log(
  `\nCollision bound: P(false "seen" per lookup) <= n / 2^64 = ${N.toExponential(0)} / ${(2 ** 64).toExponential(4)} ` +
    `= ${bound.toExponential(2)} (< 1e-12); expected false positives in ${fmtInt(N / 2)} miss lookups: ` +
    `${((N / 2) * bound).toExponential(1)}`
)
console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`)
// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) {
  writeFileSync(
    process.env.BENCH_JSON,
    JSON.stringify({
      bench: "dedup cache",
      node: process.version,
      ids: N,
      rows: [fp.result, baseline],
      eviction: fp.eviction
    })
  )
}
