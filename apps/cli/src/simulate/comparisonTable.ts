/**
 * The before/after comparison as people read it in a terminal: the four configurations side by
 * side (the last one Spillway's as production deploys it: enhanced fan-out, two batches per
 * shard), the model's delays next to the published ones, and the model's constants underneath.
 * The comparison itself is `@spillway/simulator`'s `Comparison`.
 */
import { Comparison } from "@spillway/simulator"

const { published } = Comparison

const secondsText = (millis: number): string => `${(millis / 1000).toFixed(1)} s`
const signed = (pct: number): string => `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`

/** The comparison as people read it in a terminal. */
export const renderComparison = (c: Comparison.Comparison): string => {
  const { before, after, spillway, fanOut } = c.columns
  const all = [before, after, spillway, fanOut]
  const m = c.model
  const rows: Array<Array<string>> = [
    ["", "before", "after", "spillway", "fan-out"],
    [
      "records reach the function",
      ...all.map((x) =>
        x.config.enhancedFanOut
          ? `push ${m.fanOutPropagationMillis} ms`
          : `poll ${m.pollIntervalMillis / 1000} s`
      )
    ],
    ["batches in flight per shard", ...all.map((x) => String(x.config.parallelizationFactor))],
    ["bisect on error", ...all.map((x) => (x.config.bisectBatchOnFunctionError ? "yes" : "no"))],
    ["partial batch response", ...all.map((x) => (x.config.reportBatchItemFailures ? "yes" : "no"))],
    [
      "retry limit",
      ...all.map((x) => (x.config.maximumRetryAttempts < 0 ? "none" : String(x.config.maximumRetryAttempts)))
    ],
    ["429s retried in the sink", ...all.map((x) => (x.config.itemRetries ? "yes" : "no"))],
    ["dedup cache", ...all.map((x) => (x.config.dedupCapacity > 1 ? "yes" : "no"))],
    ["delay avg (model)", ...all.map((x) => secondsText(x.delayMs.avg))],
    [
      "delay avg (published)",
      secondsText(published.before.avgMs),
      secondsText(published.after.avgMs),
      "–",
      "–"
    ],
    ["  error", signed(c.errors.before.avgPct), signed(c.errors.after.avgPct), "–", "–"],
    ["delay p99 (model)", ...all.map((x) => secondsText(x.delayMs.p99))],
    [
      "delay p99 (published)",
      secondsText(published.before.p99Ms),
      secondsText(published.after.p99Ms),
      "–",
      "–"
    ],
    ["  error", signed(c.errors.before.p99Pct), signed(c.errors.after.p99Pct), "–", "–"],
    ["delay p50 / max", ...all.map((x) => `${secondsText(x.delayMs.p50)} / ${secondsText(x.delayMs.max)}`)],
    ["invocations", ...all.map((x) => String(x.invocations))],
    ["function errors", ...all.map((x) => String(x.functionErrors))],
    ["bisections", ...all.map((x) => String(x.bisections))],
    ["batches discarded", ...all.map((x) => String(x.batchesDiscarded))],
    ["documents rewritten", ...all.map((x) => String(x.rewrites))],
    [
      "indexed / replayed / lost",
      ...all.map((x) => `${x.records.indexed} / ${x.records.replayed} / ${x.records.lost}`)
    ]
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)))
  const table = rows.map((row) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd()
  )
  return [
    `spillway simulate --compare ${c.seed}: the published before/after, on the model`,
    "",
    ...table,
    "",
    `model: ${m.records} records at ${m.recordsPerSecond}/s over ${m.shards} shards; poll ${m.pollIntervalMillis} ms, retry delay ${m.retryDelayMillis} ms, batch ${m.batchSize};`,
    `write ${m.writeOverheadMillis} ms + ${m.perDocumentMillis} ms/document; 429 on ${m.throttleRate * 100}% of item writes, on ${m.overloadThrottleRate * 100}% in overload windows`,
    `of ${m.overloadMinMillis / 1000}–${m.overloadMaxMillis / 1000} s every ~${m.overloadMeanGapMillis / 1000} s (${c.overloads.length} in this run); ${m.stickyRate * 100}% of records fail the invocation 1–${m.maxStickyFailures} times.`,
    "fan-out: Spillway's configuration as the production stages deploy it: an enhanced fan-out consumer,",
    `each record pushed ${m.fanOutPropagationMillis} ms after it is written (SubscribeToShard; Kinesis Data Streams Developer Guide)`,
    `instead of polled each second, and ${c.columns.fanOut.config.parallelizationFactor} batches in flight per shard (ParallelizationFactor), each partition`,
    "key in one: a retried batch holds up its own lane, not the whole shard.",
    'Calibrated on the mean over seeds 1–10 (npm run bench:compare); one seed is one sample, and "before" swings.',
    ""
  ].join("\n")
}
