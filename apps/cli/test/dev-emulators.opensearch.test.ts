/**
 * `spillway dev --backend emulators` run as a user runs it: a child process from the repository
 * root that starts kinesalite and fauxqs in-process, runs the collector and the redriver on the
 * AWS layers and the processor on the event source mapping emulation over the real Kinesis API,
 * and indexes into a real OpenSearch node through `OpenSearchSink`.
 *
 * - On the run's shared node (`--opensearch-url`, an alias in this file's namespace): a
 *   `--records` run must end by itself with exit code 0 and a summary showing every record
 *   indexed and backed up, none lost; the node itself, asked directly, holds exactly those
 *   documents under the alias.
 * - Without `--opensearch-url`, dev starts a node of its own: its printed URL answers while dev
 *   runs, holds what was posted, and the node's process is gone once dev has exited.
 * - In process: a parked record is redriven and indexed, a poison record (a string where the
 *   index maps a number: OpenSearch's own refusal) ends in the on-failure queue and blocks
 *   nothing, the backup's objects are in the fauxqs bucket in Firehose's layout, and the index
 *   read-back counts only what this run wrote.
 */
import { readdirSync, readFileSync } from "node:fs"
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { NodeServices } from "@effect/platform-node"
import { it as effectIt } from "@effect/vitest"
import { OpenSearchClient, S3Client, SqsClient } from "@spillway/aws"
import { Archive, Collect, OnFailure, Telemetry } from "@spillway/core"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { Duration, Effect, Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as EmulatorPipeline from "../src/dev/EmulatorPipeline.js"
import * as IndexReader from "../src/dev/IndexReader.js"
import { apiKey, record, records, waitUntilIdle } from "./harness.js"
import { type Run, start, waitFor } from "./support/cliProcess.js"

const ns = testNamespace(import.meta.filename)

/** Settles the pipeline on the live clock; false if `ms` pass first. */
const settle = (pipeline: EmulatorPipeline.Pipeline, ms: number) =>
  waitUntilIdle(pipeline, Duration.millis(ms))

/** The run's exit; SIGKILL and a rejection naming the output when it does not come within `ms`. */
const exited = (run: Run, ms: number) =>
  Promise.race([
    run.exit,
    new Promise<never>((_, reject) =>
      setTimeout(() => {
        run.child.kill("SIGKILL")
        reject(new Error(`no exit within ${ms} ms; output:\n${run.output()}`))
      }, ms).unref()
    )
  ])

const figure = (output: string, label: string): number => {
  // Figures are printed with thousands separators (5,000).
  const match = output.match(new RegExp(`^\\s+${label}\\s+([\\d,]+)`, "m"))
  if (match?.[1] === undefined) throw new Error(`no "${label}" row in the summary:\n${output}`)
  return Number(match[1].replaceAll(",", ""))
}

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read by assertions that fail on a wrong shape
type Json = any
/** A request to an OpenSearch node, answered as status and parsed JSON. */
const http = async (url: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as Json }
}

/** Documents under the alias, after a refresh: what any search sees (0 before the alias exists). */
const countUnder = async (url: string, alias: string): Promise<number> => {
  // A daily index the sink just created may still be starting its shard (a count then answers
  // 503 "all shards failed"): wait, bounded, until its shards are allocated.
  await http(url, "GET", `/_cluster/health/${alias}?wait_for_status=yellow&timeout=2s`)
  await http(url, "POST", `/${alias}/_refresh?ignore_unavailable=true`)
  const answer = await http(url, "GET", `/${alias}/_count?ignore_unavailable=true`)
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  return answer.body.count as number
}

/** The documents with these ids under the alias, by id, after a refresh. */
const documentsUnder = async (
  url: string,
  alias: string,
  ids: ReadonlyArray<string>
): Promise<Map<string, Record<string, unknown>>> => {
  await http(url, "POST", `/${alias}/_refresh?ignore_unavailable=true`)
  const answer = await http(url, "POST", `/${alias}/_search?ignore_unavailable=true`, {
    size: ids.length,
    query: { ids: { values: ids } }
  })
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  return new Map(
    (answer.body.hits.hits as Array<{ _id: string; _source: Record<string, unknown> }>).map((hit) => [
      hit._id,
      hit._source
    ])
  )
}

/** Processes below `pid` (children, their children…) whose command line matches `pattern`. */
const descendants = (pid: number, pattern: RegExp): Array<number> => {
  const parents = new Map<number, number>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]))
    } catch {
      // The process ended while the table was read.
    }
  }
  const below = (ancestor: number): Array<number> =>
    [...parents].filter(([, parent]) => parent === ancestor).flatMap(([child]) => [child, ...below(child)])
  return below(pid).filter((p) => {
    try {
      return pattern.test(readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " "))
    } catch {
      return false
    }
  })
}

/** Whether the process still runs (a zombie waiting to be reaped has ended). */
const running = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

describe("spillway dev --backend emulators", () => {
  it("indexes 5,000 records into OpenSearch through kinesalite and fauxqs; the node holds exactly them", {
    timeout: 180_000
  }, async () => {
    const url = node().url
    const alias = `${ns}-records`
    const run = start([
      "dev",
      "--backend",
      "emulators",
      "--port",
      "0",
      "--opensearch-url",
      url,
      "--opensearch-index",
      alias,
      "--records",
      "5000"
    ])
    const { code } = await exited(run, 170_000)
    const output = run.output()
    // The banner names the emulators and the node: the run did not fall back to the memory backend.
    expect(output).toContain("kinesalite")
    expect(output).toMatch(/collector listening on http:\/\/127\.0\.0\.1:\d+\/v1\/telemetry/)
    expect(output).toContain(`opensearch ${url} (given by --opensearch-url), alias ${alias}`)
    expect(output).toContain(`curl -s '${url}/${alias}/_search?q=type:cpu&size=5&pretty'`)
    expect(output).not.toContain("starting OpenSearch")
    expect(figure(output, "sent")).toBe(5000)
    expect(output).toMatch(/^\s+accepted\s+[\d,]+\s+5,000 distinct ids$/m)
    expect(figure(output, "indexed")).toBe(5000)
    expect(figure(output, "lost")).toBe(0)
    expect(figure(output, "on-failure")).toBe(0)
    // Read back from the fauxqs bucket after the drain flushed the backup's buffer.
    expect(output).toMatch(/^\s+backed up\s+5,000\s+in [1-9][\d,]* objects? in spillway-backup; 0 missing$/m)
    expect(output).not.toContain("pipeline not drained in time")
    expect(code, output).toBe(0)

    // The node itself, not the summary: the alias holds the 5,000 demo records, in daily indices.
    expect(await countUnder(url, alias)).toBe(5000)
    const sample = ["demo-0", "demo-1", "demo-1234", "demo-2500", "demo-4998", "demo-4999"]
    const found = await documentsUnder(url, alias, sample)
    expect([...found.keys()].sort()).toEqual([...sample].sort())
    for (const [id, source] of found) expect(source).toMatchObject({ id, tenant: "demo" })
    expect(await documentsUnder(url, alias, ["demo-5000"])).toEqual(new Map())
    const indices = await http(url, "GET", `/_cat/indices/${alias}-*?format=json&h=index`)
    for (const { index } of indices.body as Array<{ index: string }>) {
      expect(index).toMatch(new RegExp(`^${alias}-\\d{4}\\.\\d{2}\\.\\d{2}$`))
    }
    // The printed search answers, with what it asks for.
    const search = await http(url, "GET", `/${alias}/_search?q=type:cpu&size=5&pretty`)
    expect(search.body.hits.hits).toHaveLength(5)
    for (const hit of search.body.hits.hits as Array<{ _source: { type: string } }>) {
      expect(hit._source.type).toBe("cpu")
    }
  })

  it("without --opensearch-url starts a node of its own, indexes into it, and stops it at exit", {
    timeout: 240_000
  }, async () => {
    const run = start(["dev", "--backend", "emulators", "--port", "0", "--no-demo"])
    try {
      // The node stops with dev: what it holds is read while dev runs, so the records are posted
      // here (a --records run would exit, and stop the node, right after its summary).
      const [, url] = await waitFor(
        run,
        /^opensearch (http:\/\/127\.0\.0\.1:\d+) \(started for this run, stopped at exit\)/m,
        180_000
      )
      const [, endpoint] = await waitFor(run, /collector listening on (http:\/\/\S+)/, 10_000)
      expect(run.output()).toMatch(/^starting OpenSearch … /m)
      expect(run.output()).toContain(
        `search    curl -s '${url}/spillway-dev/_search?q=type:cpu&size=5&pretty'`
      )
      const info = await http(url!, "GET", "/")
      expect(info.status).toBe(200)
      expect(info.body.version.number).toMatch(/^\d+\.\d+\.\d+$/)
      const nodes = descendants(run.child.pid!, /org\.opensearch\.bootstrap\.OpenSearch/)
      expect(nodes).toHaveLength(1)
      // The read API is memory mode's: here the index is the node itself, read with curl.
      expect(run.output()).not.toContain("read API")
      for (const path of ["/local/search?limit=5", "/local/documents/anything"]) {
        const absent = await fetch(`${new URL(endpoint!).origin}${path}`)
        expect(absent.status, path).toBe(404)
        expect(await absent.json()).toMatchObject({ error: { code: "NotFound" } })
      }

      const posted = records(200, "self")
      const response = await fetch(endpoint!, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": apiKey },
        body: JSON.stringify(posted)
      })
      expect(await response.json()).toEqual({ accepted: 200, rejected: [], unavailable: [] })
      // Bounded: the processor polls kinesalite every second.
      const deadline = Date.now() + 60_000
      while ((await countUnder(url!, "spillway-dev")) < 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      expect(await countUnder(url!, "spillway-dev")).toBe(200)
      const found = await documentsUnder(url!, "spillway-dev", ["self-0", "self-99", "self-199"])
      expect([...found.keys()].sort()).toEqual(["self-0", "self-199", "self-99"])

      run.child.kill("SIGTERM")
      const { code } = await exited(run, 60_000)
      const output = run.output()
      expect(code, output).toBe(0)
      expect(figure(output, "indexed")).toBe(200)
      expect(figure(output, "lost")).toBe(0)
      // Gone once dev has exited: dev waits for the node's process group to end before it exits.
      for (const pid of nodes) expect(running(pid), `OpenSearch process ${pid}`).toBe(false)
      await expect(fetch(`${url}/`)).rejects.toThrow()
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL")
    }
  })
})

// In-process, on the live clock: the emulators and the node are real servers, the pollers wait real seconds.
let pipelines = 0
/** A pipeline on the shared node, writing behind an alias of its own. */
const pipelineOnNode = (options: Omit<EmulatorPipeline.Options, "opensearch"> = {}) => {
  const alias = `${ns}-pipeline-${++pipelines}`
  return EmulatorPipeline.make({ ...options, opensearch: { url: node().url, alias } }).pipe(
    Effect.map((pipeline) => ({ pipeline, alias }))
  )
}
const count = (alias: string) => Effect.promise(() => countUnder(node().url, alias))
const byId = (alias: string, ids: ReadonlyArray<string>) =>
  Effect.promise(() => documentsUnder(node().url, alias, ids))

describe("EmulatorPipeline", () => {
  effectIt.live(
    "redrives a parked record from the SQS fallback queue into the stream, and the processor indexes it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { pipeline, alias } = yield* pipelineOnNode()
          expect(pipeline.opensearch).toMatchObject({ url: node().url, alias, started: false })
          const envelope = { tenant: "demo", receivedAt: Date.now(), record: record("parked-1") }
          const outcomes = yield* pipeline.queue.send([
            { id: "m0", body: JSON.stringify({ version: 1, attempt: 0, records: [envelope] }) }
          ])
          expect(outcomes[0]?._tag).toBe("Sent")
          // Not idle while the message waits: the drain must not end before the redriver ran.
          expect(yield* pipeline.isIdle).toBe(false)
          const deadline = Date.now() + 20_000
          while (!(yield* pipeline.isIdle) && Date.now() < deadline) yield* Effect.sleep("100 millis")
          expect(yield* pipeline.isIdle).toBe(true)
          expect((yield* byId(alias, ["parked-1"])).get("parked-1")).toMatchObject({
            id: "parked-1",
            tenant: "demo"
          })
          expect((yield* pipeline.queue.stats).total).toBe(0)
          expect((yield* pipeline.processor.counters).invocations).toBeGreaterThanOrEqual(1)
        })
      ).pipe(Effect.provide(NodeServices.layer)),
    30_000
  )

  effectIt.live(
    "isolates a poison record: one on-failure record starting at it, every other record indexed",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { pipeline, alias } = yield* pipelineOnNode({
            emulators: { shardCount: 1 },
            // A short poll interval (and retry delay) keeps the bisection steps quick on the live clock.
            processor: { pollIntervalMillis: 100 }
          })
          const context = pipeline.layers.collector
          const collect = (body: unknown) => Effect.provide(Collect.collect(apiKey, body), context)

          // OpenSearch maps payload.value as a number from the first document; a string there is
          // refused (400 mapper_parsing_exception) on every attempt: a poison record.
          expect((yield* collect([record("first")])).stored).toBe(1)
          expect(yield* settle(pipeline, 20_000)).toBe(true)
          const batch = records(200)
          batch[120] = record("poison", { value: "not a number" })
          expect((yield* collect(batch)).stored).toBe(200)
          expect(yield* settle(pipeline, 40_000)).toBe(true)

          expect(yield* count(alias)).toBe(1 + 199)
          expect(yield* pipeline.indexed.count).toBe(1 + 199)
          const found = yield* byId(alias, ["poison", "r-121"])
          expect(found.has("poison")).toBe(false)
          expect(found.has("r-121")).toBe(true)

          const sqs = yield* SqsClient.make(pipeline.emulators.sqs)
          const bodies: Array<string> = []
          while (true) {
            const received = yield* Effect.promise(() =>
              sqs.send(
                new ReceiveMessageCommand({ QueueUrl: pipeline.failureQueueUrl, MaxNumberOfMessages: 10 })
              )
            )
            const messages = received.Messages ?? []
            if (messages.length === 0) break
            for (const message of messages) bodies.push(message.Body ?? "")
          }
          const failures = yield* Effect.forEach(bodies, (body) =>
            Schema.decodeUnknownEffect(OnFailure.OnFailureRecordJson)(body)
          )
          expect(failures.length).toBeGreaterThanOrEqual(1)
          const counters = yield* pipeline.processor.counters
          expect(counters.batchesDiscarded).toBe(failures.length)
          expect(counters.partialFailures).toBeGreaterThan(0)
          // The partial batch response names only the poison record; after the retries the mapping
          // gives up on the remainder from it on, as Lambda does. The later records of that remainder
          // were indexed by the earlier attempts (the replay tool skips them), so one record is lost.
          expect(failures).toHaveLength(1)
          const discarded = yield* pipeline.stream.readRange({
            shardId: failures[0]!.KinesisBatchInfo.shardId,
            startSequenceNumber: failures[0]!.KinesisBatchInfo.startSequenceNumber,
            endSequenceNumber: failures[0]!.KinesisBatchInfo.endSequenceNumber
          })
          expect(discarded.map((r) => r.partitionKey)[0]).toBe("poison")
          expect(discarded).toHaveLength(failures[0]!.KinesisBatchInfo.batchSize)
          const rest = discarded.slice(1).map((r) => r.partitionKey)
          expect([...(yield* byId(alias, rest)).keys()].sort()).toEqual([...rest].sort())
          expect(failures[0]?.requestContext.condition).toBe("RetryAttemptsExhausted")
          expect(failures[0]?.KinesisBatchInfo.streamArn).toBe(pipeline.emulators.streamArn)
          expect(counters.recordsDiscarded).toBe(discarded.length)
        })
      ).pipe(Effect.provide(NodeServices.layer)),
    90_000
  )

  effectIt.live(
    "backs the stream up into the fauxqs bucket: objects under YYYY/MM/dd/HH/, every record once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { pipeline } = yield* pipelineOnNode()
          const context = pipeline.layers.collector
          const from = Date.now()
          const sent = records(300)
          expect((yield* Effect.provide(Collect.collect(apiKey, sent), context)).stored).toBe(300)
          expect(yield* settle(pipeline, 20_000)).toBe(true)
          // Firehose buffers for 60 s; `flush` stands for the interval elapsing.
          yield* pipeline.backup.flush
          const to = Date.now()
          const counters = yield* pipeline.backup.counters
          expect(counters.recordsDelivered).toBe(300)
          expect(counters.buffered).toBe(0)

          // Straight from S3, not through `FirehoseArchive`.
          const s3 = yield* S3Client.make(pipeline.emulators.s3)
          const bucket = pipeline.emulators.archiveBucket
          const listed = yield* Effect.promise(() => s3.send(new ListObjectsV2Command({ Bucket: bucket })))
          const keys = (listed.Contents ?? []).map((object) => object.Key ?? "")
          expect(keys).toHaveLength(counters.objectsDelivered)
          expect(keys.length).toBeGreaterThanOrEqual(1)
          const hours = Result.getOrThrow(Archive.hourPrefixes({ from, to }))
          for (const key of keys) {
            expect(key).toMatch(
              /^\d{4}\/\d{2}\/\d{2}\/\d{2}\/spillway-dev-backup-1-\d{4}(-\d{2}){5}-[0-9a-f-]{36}$/
            )
            expect(hours).toContain(key.slice(0, "YYYY/MM/dd/HH/".length))
          }
          expect([...(yield* pipeline.archive.list({ from, to }))]).toEqual([...keys].sort())

          const ids: Array<string> = []
          for (const key of keys) {
            const object = yield* Effect.promise(() =>
              s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
            )
            const text = yield* Effect.promise(() => object.Body?.transformToString() ?? Promise.resolve(""))
            for (const line of text.split("\n").filter((l) => l.length > 0)) {
              const envelope = Telemetry.decodeEnvelope(new TextEncoder().encode(line))
              if (Result.isSuccess(envelope)) ids.push(envelope.success.record.id)
            }
          }
          expect(ids.sort()).toEqual(sent.map((r) => r.id).sort())
        })
      ).pipe(Effect.provide(NodeServices.layer)),
    40_000
  )
})

describe("IndexReader on OpenSearch", () => {
  effectIt.live(
    "counts and finds only what this run wrote: an earlier run's documents under the same ids are not this run's",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const url = node().url
          const alias = `${ns}-reader`
          const index = `${alias}-2026.11.24`
          // An earlier run's documents, received an hour before this run started, behind the alias.
          const since = Date.now()
          const earlier = new Date(since - 3_600_000).toISOString()
          const now = new Date(since + 1).toISOString()
          const created = yield* Effect.promise(() =>
            http(url, "PUT", `/${index}`, {
              settings: { number_of_replicas: 0 },
              aliases: { [alias]: {} },
              mappings: { properties: { receivedAt: { type: "date" } } }
            })
          )
          expect(created.status, JSON.stringify(created.body)).toBe(200)
          const bulk = ["a", "b", "c", "d"]
            .flatMap((id) => [
              { index: { _index: index, _id: id } },
              { id, receivedAt: id === "a" || id === "b" ? now : earlier }
            ])
            .map((line) => `${JSON.stringify(line)}\n`)
            .join("")
          const written = yield* Effect.promise(() =>
            fetch(`${url}/_bulk`, {
              method: "POST",
              headers: { "content-type": "application/x-ndjson" },
              body: bulk
            })
          )
          expect(written.status).toBe(200)

          const client = yield* OpenSearchClient.make({ node: url, region: "us-east-1", auth: "none" })
          // One id per page: the pages are put together.
          const reader = IndexReader.fromOpenSearch(client, { alias, since, pageSize: 1 })
          expect(yield* reader.count).toBe(2)
          expect([...(yield* reader.holding(["a", "b", "c", "d", "e"]))].sort()).toEqual(["a", "b"])
          // Before the alias exists, nothing is there yet; that is no error.
          const fresh = IndexReader.fromOpenSearch(client, { alias: `${ns}-reader-none`, since })
          expect(yield* fresh.count).toBe(0)
          expect(yield* fresh.holding(["a"])).toEqual(new Set())
        })
      ),
    30_000
  )
})
