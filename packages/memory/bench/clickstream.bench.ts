/**
 * The clickstream hot path and the forwarder, in real time on this machine:
 *
 * - clean + derive for a 200-event batch (decode, normalize, filter, PII removal, pack per
 *   session, put into an in-memory clean stream; then decode, count and write the metric lines),
 *   next to the 70–120 ms the e-commerce team's original function took for the same batch;
 * - the forwarder's metric points per second: subscription payloads (base64 of gzip) of 5,000
 *   lines each decoded, parsed, aggregated, packed within the v2 limits and submitted to the
 *   in-memory intake, which JSON-encodes and gzips every payload as the HTTP sink would.
 *
 *   npm run bench:clickstream      (BATCHES=N, PAYLOADS=N for other counts)
 */
import { writeFileSync } from "node:fs"
import {
  Clean,
  CloudWatchLogs,
  DedupCache,
  Derive,
  Forward,
  MetricLine,
  MetricLog,
  MetricSpool,
  MetricsSink,
  RecordStream
} from "@spillway/core"
import { ClickstreamFixtures } from "@spillway/testing"
import { Effect, Layer } from "effect"
import { MemoryMetricSpool, MemoryMetricsIntake, MemoryStream } from "../src/index.js"

const batches = Number(process.env.BATCHES ?? 500)
const payloads = Number(process.env.PAYLOADS ?? 40)
const start = Date.now()

const percentile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

const events = ClickstreamFixtures.generate({ seed: 42, events: batches * 200, start: start - 60_000 })
const raw = (batch: number): Array<RecordStream.StreamRecord> =>
  events.slice(batch * 200, batch * 200 + 200).map((e, i) => ({
    shardId: "shardId-000000000000",
    sequenceNumber: String(49_650_000_000_000_000_000_000n + BigInt(batch * 200 + i)),
    partitionKey: e.sessionId,
    data: new TextEncoder().encode(JSON.stringify(e.body)),
    approximateArrivalTimestamp: e.sentAt
  }))

const hotPath = Effect.gen(function* () {
  const stream = yield* MemoryStream.make({
    recordsPerSecondPerShard: 1_000_000_000,
    bytesPerSecondPerShard: 2 ** 40
  })
  const lines: Array<string> = []
  // What the cleaner put, handed to the metrics stage as the clean stream's consumer would read it.
  let put: Array<RecordStream.StreamRecord> = []
  const capturing: RecordStream.Service = {
    streamArn: stream.streamArn,
    readRange: stream.readRange,
    putRecords: (entries) =>
      Effect.map(stream.putRecords(entries), (outcomes) => {
        outcomes.forEach((o, i) => {
          if (o._tag === "Stored")
            put.push({
              ...entries[i]!,
              shardId: o.shardId,
              sequenceNumber: o.sequenceNumber,
              approximateArrivalTimestamp: Date.now()
            })
        })
        return outcomes
      })
  }
  const services = Layer.mergeAll(
    Layer.succeed(RecordStream.RecordStream, capturing),
    Layer.succeed(MetricLog.MetricLog, { write: (batch) => Effect.sync(() => void lines.push(...batch)) }),
    // One cache for the run, as one execution environment keeps it.
    Layer.succeed(DedupCache.DedupCache, DedupCache.make({ capacity: 2_000_000 }))
  )
  const timings: Array<number> = []
  for (let b = 0; b < batches; b++) {
    const records = raw(b)
    put = []
    const t0 = performance.now()
    yield* Effect.gen(function* () {
      yield* Clean.clean(records)
      yield* Derive.derive(put)
    }).pipe(Effect.provide(services))
    timings.push(performance.now() - t0)
  }
  return { timings: timings.sort((a, b) => a - b), lines: lines.length }
})

/** `distinct`: every line its own point (the worst case); otherwise lines share series and minutes, as derive's do. */
const forwarder = (distinct: boolean) =>
  Effect.gen(function* () {
    const now = Math.floor(Date.now() / 1000)
    const data = Array.from({ length: payloads }, (_, p) =>
      CloudWatchLogs.encodeData({
        messageType: "DATA_MESSAGE",
        owner: "123456789012",
        logGroup: "/aws/lambda/clickstream-metrics",
        logStream: "bench",
        subscriptionFilters: ["bench"],
        logEvents: Array.from({ length: 5000 }, (_, i) => ({
          id: String(p * 5000 + i).padStart(56, "0"),
          timestamp: Date.now(),
          message: MetricLine.encodeDatadogLine({
            metric: `clickstream.${["events", "checkouts", "revenue"][i % 3]}`,
            kind: "count",
            value: i,
            timestamp: now - (i % 30) * 60,
            tags: [
              `event_type:t${i % 7}`,
              `platform:${["web", "ios", "android"][i % 3]}`,
              `shard:${p}`,
              ...(distinct ? [`n:${i}`] : [])
            ]
          })
        }))
      })
    )
    const services = Layer.mergeAll(
      Layer.succeed(MetricsSink.MetricsSink, yield* MemoryMetricsIntake.make()),
      Layer.succeed(MetricSpool.MetricSpool, yield* MemoryMetricSpool.make()),
      Layer.succeed(DedupCache.DedupCache, DedupCache.make({ capacity: 2_000_000 }))
    )
    const t0 = performance.now()
    let points = 0
    let lines = 0
    yield* Effect.gen(function* () {
      for (const d of data) {
        const result = yield* Forward.forward([d])
        points += result.delivered
        lines += result.metricLines
      }
    }).pipe(Effect.provide(services))
    const seconds = (performance.now() - t0) / 1000
    return { points, lines, seconds }
  })

const hot = await Effect.runPromise(hotPath)
const aggregating = await Effect.runPromise(Effect.orDie(forwarder(false)))
const distinct = await Effect.runPromise(Effect.orDie(forwarder(true)))
const ms = (n: number) => `${n.toFixed(2)} ms`
console.log(`clean + derive, 200-event batch (${batches} batches; metric lines written: ${hot.lines}):`)
console.log(
  `  p50 ${ms(percentile(hot.timings, 0.5))}   p99 ${ms(percentile(hot.timings, 0.99))}   max ${ms(hot.timings.at(-1)!)}   (the original function: 70–120 ms, before its 100–200 ms Datadog call)`
)
console.log(`forwarder (${payloads} payloads of 5,000 lines each, in-memory intake):`)
for (const [label, fwd] of [
  ["every line its own point", distinct],
  ["lines aggregated as derive writes them", aggregating]
] as const) {
  console.log(
    `  ${label}: ${fwd.lines.toLocaleString("en-US")} lines → ${fwd.points.toLocaleString("en-US")} points delivered in ${fwd.seconds.toFixed(2)} s: ${Math.round(fwd.lines / fwd.seconds).toLocaleString("en-US")} lines/s, ${Math.round(fwd.points / fwd.seconds).toLocaleString("en-US")} points/s`
  )
}

// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) {
  writeFileSync(
    process.env.BENCH_JSON,
    JSON.stringify({
      bench: "clickstream",
      node: process.version,
      batches,
      cleanDeriveMs: {
        p50: percentile(hot.timings, 0.5),
        p99: percentile(hot.timings, 0.99),
        max: hot.timings.at(-1)
      },
      rows: [
        { name: "every line its own point", ...distinct },
        { name: "lines aggregated as derive writes them", ...aggregating }
      ].map((row) => ({
        ...row,
        linesPerSecond: Math.round(row.lines / row.seconds),
        pointsPerSecond: Math.round(row.points / row.seconds)
      }))
    })
  )
}
