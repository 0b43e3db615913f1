/**
 * The collector's throughput: requests/s and records/s of 100-record bodies, load from a second
 * process on loopback (Debian's `wrk`, bounded in time), against
 *
 * - **spillway**: the collector contract (`CollectorHttp.handle`) on the local server `spillway dev`
 *   serves it with (`collector/server.ts`: `effect/http` on `NodeHttpServer`);
 * - **plain node:http**: a `node:http` server doing the same work by hand — the API key's SHA-256
 *   looked up, the body read with a size limit, `JSON.parse`, each record checked as the record
 *   schema checks it, `receivedAt` stamped, the envelope serialized, the entries put into the
 *   same memory stream with one `putRecords` call — the floor.
 *
 * Both put into a memory stream of 64 shards without throughput limits, so the stream is never
 * the limit. Each server runs in this process, one after the other; `wrk` gets `DURATION`
 * seconds (default 10) with `CONNECTIONS` (default 32) connections on one thread. Figures only.
 *
 *   npm run bench:collector        (needs wrk: apt-get install wrk)
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { ApiKeys, FallbackQueue, RecordStream, Telemetry } from "@spillway/core"
import { MemoryQueue, MemoryStream } from "@spillway/memory"
import { Effect, Layer, ManagedRuntime } from "effect"
import * as CollectorServer from "../src/collector/server.js"

const duration = Number(process.env.DURATION ?? 10)
const connections = Number(process.env.CONNECTIONS ?? 32)
const recordsPerBody = 100
const apiKey = "bench-key-0123456789"

const run = promisify(execFile)
try {
  await run("wrk", ["--version"]).catch((error: { stdout?: string }) => {
    // wrk prints its version and exits 1.
    if (!String(error.stdout ?? "").includes("wrk")) throw error
  })
} catch {
  console.error("bench:collector needs wrk on the PATH (Debian: apt-get install wrk)")
  process.exit(2)
}

// ---------------------------------------------------------------------------------------------
// The load: one 100-record body, ~23 KB, the same for every request (ids repeat: the collector
// does not deduplicate, the processor does)

const body = JSON.stringify(
  Array.from({ length: recordsPerBody }, (_, i) => ({
    id: `bench-${i.toString().padStart(6, "0")}-8d3c1f2e-4b5a-4c6d-9e7f-0a1b2c3d4e5f`,
    type: i % 2 === 0 ? "cpu" : "request",
    timestamp: "2026-12-02T10:00:00.000Z",
    payload: { host: `web-${i % 16}.eu-west-1.internal`, value: i / 10, tags: ["prod", "canary"] },
    service: "checkout"
  }))
)
const script = join(tmpdir(), `spillway-collector-bench-${process.pid}.lua`)
writeFileSync(
  script,
  `wrk.method = "POST"
wrk.body = ${JSON.stringify(body)}
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "${apiKey}"
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write("spillway-bench ", summary.requests, " ", summary.duration, " ", latency:percentile(99), "\\n")
end
`
)

const load = async (url: string) => {
  const cpuBefore = process.cpuUsage()
  const { stdout } = await run("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${duration}s`,
    "--latency",
    "-s",
    script,
    `${url}/v1/telemetry`
  ])
  const line = /spillway-bench (\d+) (\d+) ([\d.]+)/.exec(stdout)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)
  if (line === null) throw new Error(`wrk printed no summary:\n${stdout}`)
  const requests = Number(line[1])
  const seconds = Number(line[2]) / 1e6
  const cpu = process.cpuUsage(cpuBefore)
  return {
    // This process's CPU (user + system) per record: steadier than throughput on a busy machine.
    cpuMicrosPerRecord: Number(((cpu.user + cpu.system) / (requests * recordsPerBody)).toFixed(2)),
    requestsPerSecond: Math.round(requests / seconds),
    recordsPerSecond: Math.round((requests * recordsPerBody) / seconds),
    p99Ms: Number((Number(line[3]) / 1000).toFixed(1)),
    non2xx: non2xx === null ? 0 : Number(non2xx[1])
  }
}

const streamOptions = { shardCount: 64, recordsPerSecondPerShard: 1e9, bytesPerSecondPerShard: 1e12 }

// ---------------------------------------------------------------------------------------------
// Spillway: the contract on the dev server

const spillway = async () => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const stream = await runtime.runPromise(MemoryStream.make(streamOptions))
  const queue = await runtime.runPromise(MemoryQueue.make())
  const collector = Layer.mergeAll(
    ApiKeys.layerPlain([{ tenant: "bench", key: apiKey }]),
    Layer.succeed(RecordStream.RecordStream, stream),
    Layer.succeed(FallbackQueue.FallbackQueue, queue)
  )
  const figures = await runtime.runPromise(
    Effect.scoped(
      Effect.flatMap(CollectorServer.serve({ port: 0 }, collector), (listening) =>
        Effect.promise(() => load(listening.url))
      )
    )
  )
  const stored = (await runtime.runPromise(stream.records)).length
  await runtime.dispose()
  return { ...figures, stored }
}

// ---------------------------------------------------------------------------------------------
// The plain node:http server doing the same work

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)
const isoPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/
const checkRecord = (r: unknown): boolean => {
  if (!isObject(r)) return false
  const { id, type, timestamp, payload } = r
  if (typeof id !== "string" || id.length < 1 || id.length > 256 || Buffer.byteLength(id) > 512) return false
  if (typeof type !== "string" || type.length < 1 || type.length > 128) return false
  if (typeof timestamp === "string") {
    if (!isoPattern.test(timestamp) || Number.isNaN(Date.parse(timestamp))) return false
  } else if (typeof timestamp !== "number" || !Number.isInteger(timestamp)) return false
  return isObject(payload) && !Telemetry.nestsDeeperThan(r, Telemetry.maxNestingDepth + 1)
}
const keyDigests = new Map([[createHash("sha256").update(apiKey).digest("hex"), "bench"]])
const encoder = new TextEncoder()

const plain = async () => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const stream = await runtime.runPromise(MemoryStream.make(streamOptions))
  const server: Server = createServer((req, res) => {
    const reply = (status: number, answer: unknown) => {
      const text = JSON.stringify(answer)
      res.writeHead(status, { "content-type": "application/json; charset=utf-8" })
      res.end(text)
    }
    const key = req.headers["x-api-key"]
    const tenant =
      typeof key === "string" ? keyDigests.get(createHash("sha256").update(key).digest("hex")) : undefined
    if (req.method !== "POST" || req.url !== "/v1/telemetry") return reply(404, { error: "not found" })
    if (tenant === undefined) return reply(401, { error: "unauthorized" })
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength
      if (size <= 1024 * 1024) chunks.push(chunk)
    })
    req.on("end", () => {
      if (size > 1024 * 1024) return reply(413, { error: "too large" })
      let records: unknown
      try {
        records = JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        return reply(400, { error: "not JSON" })
      }
      if (!Array.isArray(records)) return reply(400, { error: "not an array" })
      const receivedAt = Date.now()
      const entries = []
      let rejected = 0
      for (const record of records) {
        if (!checkRecord(record)) {
          rejected++
          continue
        }
        const { id, type, timestamp, payload, ...attributes } = record as Record<string, unknown>
        const envelope = {
          tenant,
          receivedAt,
          record: {
            id,
            type,
            timestamp: typeof timestamp === "number" ? new Date(timestamp).toISOString() : timestamp,
            payload,
            ...(Object.keys(attributes).length === 0 ? {} : { attributes })
          }
        }
        entries.push({ partitionKey: id as string, data: encoder.encode(JSON.stringify(envelope)) })
      }
      runtime.runPromise(stream.putRecords(entries)).then(
        () => reply(202, { accepted: entries.length, rejected }),
        () => reply(503, { error: "unavailable" })
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const figures = await load(`http://127.0.0.1:${port}`)
  const stored = (await runtime.runPromise(stream.records)).length
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await runtime.dispose()
  return { ...figures, stored }
}

// `ONLY=spillway` (with `--cpu-prof`) measures Spillway alone; its ratio is then left out.
const only = process.env.ONLY
const zero = {
  cpuMicrosPerRecord: 0,
  requestsPerSecond: 0,
  recordsPerSecond: 0,
  p99Ms: 0,
  non2xx: 0,
  stored: 0
}
const plainFigures = only === "spillway" ? zero : await plain()
const spillwayFigures = await spillway()

const report = {
  bench: "collector",
  node: process.version,
  durationSeconds: duration,
  connections,
  recordsPerBody,
  bodyBytes: Buffer.byteLength(body),
  rows: [
    { name: "plain node:http", ...plainFigures, ratioToPlain: 1 },
    {
      name: "spillway",
      ...spillwayFigures,
      ratioToPlain:
        plainFigures.recordsPerSecond === 0
          ? 0
          : Number((spillwayFigures.recordsPerSecond / plainFigures.recordsPerSecond).toFixed(2))
    }
  ]
}

// `npm run bench` collects every bench's figures into bench/RESULTS.md through this file.
if (process.env.BENCH_JSON !== undefined) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report))
if (process.argv.includes("--json")) console.log(JSON.stringify(report))
else {
  console.log(
    `collector: ${recordsPerBody}-record bodies (${report.bodyBytes.toLocaleString("en-US")} bytes), wrk -t1 -c${connections} -d${duration}s on loopback; node ${process.version}`
  )
  console.log("")
  console.log(
    `${"".padEnd(17)}${"requests/s".padStart(11)}${"records/s".padStart(11)}${"p99 ms".padStart(8)}${"× plain".padStart(9)}${"CPU µs/rec".padStart(12)}${"non-2xx".padStart(9)}${"stored".padStart(11)}`
  )
  for (const row of report.rows) {
    console.log(
      `${row.name.padEnd(17)}${row.requestsPerSecond.toLocaleString("en-US").padStart(11)}${row.recordsPerSecond.toLocaleString("en-US").padStart(11)}${row.p99Ms.toFixed(1).padStart(8)}${row.ratioToPlain.toFixed(2).padStart(9)}${row.cpuMicrosPerRecord.toFixed(2).padStart(12)}${row.non2xx.toLocaleString("en-US").padStart(9)}${row.stored.toLocaleString("en-US").padStart(11)}`
    )
  }
}
