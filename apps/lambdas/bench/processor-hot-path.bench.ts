/**
 * The processor's hot path, three ways on the same input in one process:
 *
 * - **spillway**: `Process.processKinesisEvent` (what the processor Lambda runs per invocation) on
 *   the real dedup cache and a sink that only serializes the `_bulk` body, as `OpenSearchSink`
 *   does, and answers every document written;
 * - **plain loop**: a hand-written loop doing exactly that work and nothing else — base64 and
 *   UTF-8 decode, `JSON.parse`, the same validation as the envelope schema (by hand), the dedup
 *   check, the document, the NDJSON lines, the cache marks: the floor;
 * - **powertools**: `@aws-lambda-powertools/batch` `BatchProcessor` for Kinesis, records in
 *   sequence (`processInParallel: false`, as a shard's order needs), its record handler doing the
 *   plain loop's per-record work, then the same body and marks.
 *
 * The event: `RECORDS` (default 10,000) records of about 420 bytes, 5% of them copies of an earlier
 * record of the event (a redrive's duplicates). Each round gets a fresh cache of the same
 * capacity. Figures: CPU µs per record (the process's user + system time, GC threads included, so
 * a busy machine moves them less than wall time; median of `ROUNDS` rounds after warm-up), its ratio to the
 * plain loop (the median of each round's ratio) and bytes allocated per record (from
 * `v8.GCProfiler`'s heap figures). Printed, and as JSON with `--json`.
 *
 *   npm run bench:processor        (RECORDS, ROUNDS to change the size)
 */
import { writeFileSync } from "node:fs"
import { GCProfiler } from "node:v8"
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch"
import { DedupCache, DocumentSink, type LambdaEvents, Process } from "@spillway/core"
import { Effect, Layer, ManagedRuntime, Metric } from "effect"
import { FingerprintSet } from "../../../packages/core/src/internal/FingerprintSet.js"

const records = Number(process.env.RECORDS ?? 10_000)
const rounds = Number(process.env.ROUNDS ?? 30)
const warmup = Math.max(5, Math.round(rounds / 3))
const capacity = 1_000_000

// ---------------------------------------------------------------------------------------------
// The event

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")
const idOf = (i: number) =>
  `${hex((i * 2654435761) >>> 0, 8)}-${hex(i & 0xffff, 4)}-4${hex((i >>> 4) & 0xfff, 3)}-a${hex(i & 0xfff, 3)}-${hex(i * 7919, 12)}`

const makeEvent = (): LambdaEvents.KinesisEvent => {
  const base = Date.UTC(2026, 11, 2, 10, 0, 0)
  const entries = []
  for (let i = 0; i < records; i++) {
    // Every 20th record repeats the one 10 before it: 5% duplicates within the event.
    const n = i % 20 === 19 ? i - 10 : i
    const envelope = {
      tenant: "acme",
      receivedAt: base + n * 3,
      record: {
        id: idOf(n),
        type: n % 3 === 0 ? "cpu" : n % 3 === 1 ? "memory" : "request",
        timestamp: new Date(base + n * 3 - 250).toISOString(),
        payload: {
          host: `web-${n % 64}.eu-west-1.internal`,
          service: "checkout",
          region: "eu-west-1",
          value: (n % 1000) / 10,
          unit: "percent",
          tags: ["prod", `az-${n % 3}`, "canary"],
          build: { version: "2026.12.1", commit: hex(n * 31, 12) },
          latencyMs: { p50: n % 97, p99: (n % 97) * 4 }
        },
        attributes: { agent: "spillway-agent/1.4.2", sdk: "node" }
      }
    }
    entries.push({
      kinesis: {
        kinesisSchemaVersion: "1.0",
        partitionKey: envelope.record.id,
        sequenceNumber: `4959${String(i).padStart(52, "0")}`,
        data: Buffer.from(JSON.stringify(envelope)).toString("base64"),
        approximateArrivalTimestamp: (base + n * 3 + 5) / 1000
      },
      eventSource: "aws:kinesis",
      eventVersion: "1.0",
      eventID: `shardId-000000000000:4959${String(i).padStart(52, "0")}`,
      eventName: "aws:kinesis:record",
      invokeIdentityArn: "arn:aws:iam::123456789012:role/processor",
      awsRegion: "eu-west-1",
      eventSourceARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry"
    })
  }
  return { Records: entries } as unknown as LambdaEvents.KinesisEvent
}

const event = makeEvent()
const averageBytes =
  event.Records.reduce((sum, r) => sum + Buffer.from(r.kinesis.data, "base64").byteLength, 0) / records

// ---------------------------------------------------------------------------------------------
// The sink's work: NDJSON lines as OpenSearchSink writes them (index action, then the source)

let bodyBytes = 0
const bulkBody = (documents: ReadonlyArray<DocumentSink.Document>): string => {
  let body = ""
  for (const document of documents) {
    body += `${JSON.stringify({ index: { _index: "telemetry-2026.12.02", _id: document.id } })}\n${JSON.stringify(document.body)}\n`
  }
  return body
}

// ---------------------------------------------------------------------------------------------
// The plain loop's validation: what the envelope schema checks, by hand

const isoPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/
const utf8 = new TextDecoder("utf-8", { fatal: true })
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

interface Envelope {
  readonly tenant: string
  readonly receivedAt: number
  readonly record: {
    readonly id: string
    readonly type: string
    readonly timestamp: string
    readonly payload: Record<string, unknown>
    readonly attributes?: Record<string, unknown>
  }
}

const validate = (value: unknown): Envelope | string => {
  if (!isObject(value)) return "must be a JSON object"
  const { tenant, receivedAt, record } = value
  if (typeof tenant !== "string" || tenant.length < 1) return "tenant"
  if (typeof receivedAt !== "number" || !Number.isInteger(receivedAt) || receivedAt < 0) return "receivedAt"
  if (!isObject(record)) return "record"
  const { id, type, timestamp, payload, attributes } = record
  if (typeof id !== "string" || id.length < 1 || id.length > 256 || Buffer.byteLength(id) > 512) return "id"
  if (typeof type !== "string" || type.length < 1 || type.length > 128) return "type"
  if (typeof timestamp !== "string" || !isoPattern.test(timestamp) || Number.isNaN(Date.parse(timestamp)))
    return "timestamp"
  if (!isObject(payload)) return "payload"
  if (attributes !== undefined && !isObject(attributes)) return "attributes"
  return value as unknown as Envelope
}

const documentOf = (e: Envelope): DocumentSink.Document => ({
  id: e.record.id,
  body: {
    id: e.record.id,
    type: e.record.type,
    timestamp: e.record.timestamp,
    tenant: e.tenant,
    receivedAt: new Date(e.receivedAt).toISOString(),
    payload: e.record.payload,
    ...(e.record.attributes === undefined ? {} : { attributes: e.record.attributes })
  }
})

type Work = (event: LambdaEvents.KinesisEvent, cache: FingerprintSet) => Promise<number>

const plainLoop: Work = async (input, cache) => {
  const failures: Array<{ itemIdentifier: string }> = []
  const documents: Array<DocumentSink.Document> = []
  const inBatch = new Set<string>()
  for (const record of input.Records) {
    let envelope: Envelope | string
    try {
      envelope = validate(JSON.parse(utf8.decode(Buffer.from(record.kinesis.data, "base64"))))
    } catch {
      envelope = "not JSON"
    }
    if (typeof envelope === "string") {
      failures.push({ itemIdentifier: record.kinesis.sequenceNumber })
      continue
    }
    const id = envelope.record.id
    if (inBatch.has(id) || cache.has(id)) continue
    inBatch.add(id)
    documents.push(documentOf(envelope))
  }
  bodyBytes = bulkBody(documents).length
  for (const document of documents) cache.add(document.id)
  return failures.length
}

// ---------------------------------------------------------------------------------------------
// Powertools, in sequence, with the same per-record work

const powertools: Work = async (input, cache) => {
  const processor = new BatchProcessor(EventType.KinesisDataStreams)
  const documents: Array<DocumentSink.Document> = []
  const inBatch = new Set<string>()
  const recordHandler = async (record: { kinesis: { data: string } }) => {
    const envelope = validate(JSON.parse(utf8.decode(Buffer.from(record.kinesis.data, "base64"))))
    if (typeof envelope === "string") throw new Error(envelope)
    const id = envelope.record.id
    if (inBatch.has(id) || cache.has(id)) return
    inBatch.add(id)
    documents.push(documentOf(envelope))
  }
  const response = await processPartialResponse(input as never, recordHandler, processor, {
    context: {} as never,
    processInParallel: false
  } as never)
  bodyBytes = bulkBody(documents).length
  for (const document of documents) cache.add(document.id)
  return response.batchItemFailures.length
}

// ---------------------------------------------------------------------------------------------
// Spillway: the processor's own program, run as the Lambda handler runs it (one runtime)

const serializingSink = DocumentSink.DocumentSink.of({
  name: "serialize",
  write: (documents) =>
    Effect.sync(() => {
      bodyBytes = bulkBody(documents).length
      return documents.map(() => DocumentSink.written)
    })
})
const runtime = ManagedRuntime.make(Layer.succeed(DocumentSink.DocumentSink, serializingSink))

const spillway: Work = async (input, cache) => {
  const service = DedupCache.DedupCache.of({
    seen: (ids) => Effect.sync(() => ids.map((id) => cache.has(id))),
    markProcessed: (ids) =>
      Effect.sync(() => {
        for (const id of ids) cache.add(id)
      }),
    stats: Effect.sync(() => ({ size: cache.size, capacity: cache.capacity, evicted: cache.evicted }))
  })
  // A metric registry per invocation, as the Lambda handler gives each (its EMF recorder).
  const response = await runtime.runPromise(
    Process.processKinesisEvent(input).pipe(
      Effect.provideService(DedupCache.DedupCache, service),
      Effect.provideService(Metric.MetricRegistry, new Map())
    )
  )
  return response.batchItemFailures.length
}

// ---------------------------------------------------------------------------------------------
// Measurement

/** `ONLY=spillway` (with `--cpu-prof`) profiles one contender; the plain loop always runs, as the floor. */
const only = process.env.ONLY
const contenders: ReadonlyArray<readonly [string, Work]> = (
  [
    ["plain loop", plainLoop],
    ["spillway", spillway],
    ["powertools", powertools]
  ] as const
).filter(([name]) => only === undefined || name === only || name === "plain loop")

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Heap bytes allocated while `run` ran: what each GC found in use before it, less what the last left. */
const allocatedDuring = async (run: () => Promise<unknown>): Promise<number> => {
  const profiler = new GCProfiler()
  const usedBefore = process.memoryUsage().heapUsed
  profiler.start()
  await run()
  const usedAfter = process.memoryUsage().heapUsed
  const result = profiler.stop()
  let allocated = 0
  let base = usedBefore
  for (const gc of result?.statistics ?? []) {
    allocated += gc.beforeGC.heapStatistics.usedHeapSize - base
    base = gc.afterGC.heapStatistics.usedHeapSize
  }
  return allocated + (usedAfter - base)
}

const times = new Map<string, Array<number>>(contenders.map(([name]) => [name, []]))
const allocations = new Map<string, Array<number>>(contenders.map(([name]) => [name, []]))
const failures = new Map<string, number>()

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench:processor does)")

for (let round = 0; round < warmup + rounds; round++) {
  // Interleaved, each on a fresh cache, so drift on the machine is shared; a full GC before each,
  // so no contender collects another's garbage.
  for (const [name, work] of contenders) {
    const cache = new FingerprintSet({ capacity })
    gc()
    let failed = 0
    // CPU time (user + system, all threads: GC included), not wall time: what the machine does
    // meanwhile takes wall time from a round, not CPU.
    const started = process.cpuUsage()
    if (round < warmup + rounds - 3) {
      failed = await work(event, cache)
      if (round >= warmup) {
        const used = process.cpuUsage(started)
        times.get(name)!.push((used.user + used.system) / records)
      }
    } else {
      // The last rounds measure allocation (the GC profiler's bookkeeping stays out of the times).
      const allocated = await allocatedDuring(async () => {
        failed = await work(event, cache)
      })
      allocations.get(name)!.push(allocated / records)
    }
    failures.set(name, failed)
    if (cache.size === 0) throw new Error(`${name} marked nothing`)
  }
}

// The ratio is taken round by round (each contender against the plain loop of its own round), then
// the median: what the machine does meanwhile moves both sides of a ratio alike.
const floors = times.get("plain loop")!
const rows = contenders.map(([name]) => {
  const us = median(times.get(name)!)
  const ratios = times.get(name)!.map((t, round) => t / floors[round]!)
  return {
    name,
    usPerRecord: Number(us.toFixed(3)),
    ratioToPlainLoop: Number(median(ratios).toFixed(2)),
    bytesAllocatedPerRecord: Math.round(median(allocations.get(name)!)),
    failedItems: failures.get(name) ?? 0
  }
})

const report = {
  bench: "processor hot path",
  node: process.version,
  records,
  averageRecordBytes: Math.round(averageBytes),
  duplicates: "5% (copies within the event)",
  rounds,
  bulkBodyBytes: bodyBytes,
  rows
}

// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report))
if (process.argv.includes("--json")) {
  console.log(JSON.stringify(report))
} else {
  console.log(
    `processor hot path: ${records.toLocaleString("en-US")} records of ~${report.averageRecordBytes} bytes, 5% duplicates, median of ${rounds} rounds; node ${process.version}`
  )
  console.log("")
  console.log(
    `${"".padEnd(12)}${"µs/record".padStart(11)}${"× plain loop".padStart(14)}${"bytes/record".padStart(14)}`
  )
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(12)}${row.usPerRecord.toFixed(2).padStart(11)}${row.ratioToPlainLoop.toFixed(2).padStart(14)}${row.bytesAllocatedPerRecord.toLocaleString("en-US").padStart(14)}`
    )
  }
}
await runtime.dispose()
