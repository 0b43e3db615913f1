/**
 * `spillway reprocess-failures --backend emulators`, in a child process, after a processor bug.
 *
 * The pipeline: kinesalite, the processor mapping's emulation (`KinesisEventSource`: partial batch
 * response, one retry, then the batch's range to an SQS on-failure queue on fauxqs, as the deployed
 * mapping writes it), and a processor with a bug — it refuses every `checkout` document — in front
 * of the real `OpenSearchSink` on the shared node. Two batches go through it: an old one, whose
 * ranges the stream has since trimmed, and a recent one. The CLI reads the stream through a fault
 * proxy that leaves out the old batch's records, as Kinesis does once retention has passed them
 * (kinesalite never trims), and writes with the real sink: the fix.
 *
 * What it shows: the dry run counts and changes nothing; the run reprocesses the recent batch's
 * ranges — every record of it indexed, once — deletes their messages, lists each trimmed range with
 * its shard, sequence numbers and arrival time, keeps their messages, and exits 1; a second run
 * finds only what is lost.
 */
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import {
  KinesisClient,
  KinesisRecordStream,
  KinesisShardSource,
  OpenSearchClient,
  OpenSearchSink,
  SqsClient,
  SqsFailureDestination
} from "@spillway/aws"
import { DedupCache, DocumentSink, OnFailure, Process, Telemetry } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { KinesisEventSource, MemoryPipeline } from "@spillway/memory"
import { Effect, Schema } from "effect"
import { run } from "./support/cliProcess.js"

const ns = testNamespace(import.meta.filename)
const alias = `${ns}-index`

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read by assertions
type Json = any

/** Hits under the alias with these ids (one per document), after a refresh. */
const hits = async (ids: ReadonlyArray<string>): Promise<Array<{ _id: string; _source: Json }>> => {
  await fetch(`${node().url}/${alias}/_refresh?ignore_unavailable=true&allow_no_indices=true`, {
    method: "POST"
  })
  const response = await fetch(
    `${node().url}/${alias}/_search?ignore_unavailable=true&allow_no_indices=true`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ size: 10_000, query: { ids: { values: ids } } })
    }
  )
  return ((await response.json()) as Json).hits.hits
}

const decode = Schema.decodeUnknownSync(OnFailure.OnFailureRecordJson)

const envelope = (id: string, type: string) =>
  Telemetry.encodeEnvelope(
    new Telemetry.TelemetryEnvelope({
      tenant: "demo",
      receivedAt: Date.now(),
      record: new Telemetry.TelemetryRecord({
        id: Telemetry.RecordId.make(id),
        type,
        timestamp: new Date().toISOString(),
        payload: { value: 1, basket: type === "checkout" ? { items: 3 } : undefined }
      })
    })
  )

describe("spillway reprocess-failures on the emulators", () => {
  it.live(
    "reprocesses a batch a since-fixed bug sent to the on-failure queue, every record indexed once; a trimmed range is listed and the exit code says so",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const kinesalite = yield* Emulators.kinesalite
          const fauxqs = yield* Emulators.fauxqs
          const streamName = `${ns}-stream`
          const kinesis = yield* KinesisClient.make(kinesalite.client)
          const streamArn = yield* Emulators.createStream(
            yield* Emulators.kinesisClient(kinesalite.client),
            streamName,
            2
          )
          const onFailureQueue = yield* fauxqs.createQueue(`${ns}-on-failure`)
          const sqs = yield* SqsClient.make(fauxqs.sqs)
          const onFailure = yield* SqsFailureDestination.make({ queueUrl: onFailureQueue.queueUrl }).pipe(
            Effect.provideService(SqsClient.SqsClient, sqs)
          )
          const client = yield* OpenSearchClient.make({ node: node().url, region: "us-east-1", auth: "none" })
          const sink = yield* OpenSearchSink.make({ layout: { alias, replicas: 0 } }).pipe(
            Effect.provideService(OpenSearchClient.OpenSearchClient, client)
          )
          // The bug: checkout documents never reach the index.
          const buggy: DocumentSink.Service = {
            name: "processor-with-the-bug",
            write: (documents) =>
              Effect.gen(function* () {
                const passed = documents.filter((d) => d.body.type !== "checkout")
                const answers = passed.length === 0 ? [] : yield* sink.write(passed)
                let next = 0
                return documents.map(
                  (d): DocumentSink.WriteOutcome =>
                    d.body.type === "checkout"
                      ? { _tag: "Rejected", reason: "cannot read basket (the bug)" }
                      : (answers[next++] ?? DocumentSink.written)
                )
              })
          }
          const config = { ...MemoryPipeline.recommendedProcessorConfig, maximumRetryAttempts: 1, onFailure }
          const shards = yield* KinesisShardSource.make({ streamName, streamArn }).pipe(
            Effect.provideService(KinesisClient.KinesisClient, kinesis)
          )
          const processor = yield* KinesisEventSource.start(
            shards,
            Process.kinesisHandler(config),
            config
          ).pipe(
            Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 10_000 })),
            Effect.provideService(DocumentSink.DocumentSink, buggy)
          )
          const stream = yield* KinesisRecordStream.make({ streamName, streamArn }).pipe(
            Effect.provideService(KinesisClient.KinesisClient, kinesis)
          )
          const messages = () => fauxqs.messageBodies(`${ns}-on-failure`)
          /** Puts the records, waits until the mapping is done with them; the on-failure messages they caused. */
          const batch = (ids: ReadonlyArray<string>) =>
            Effect.gen(function* () {
              const before = new Set(yield* messages())
              const outcomes = yield* stream.putRecords(
                ids.map((id, i) => ({
                  partitionKey: id,
                  data: envelope(id, i % 5 === 2 ? "checkout" : "cpu")
                }))
              )
              expect(outcomes.every((o) => o._tag === "Stored")).toBe(true)
              const deadline = Date.now() + 30_000
              while (!(yield* processor.isIdle) && Date.now() < deadline) yield* Effect.sleep("200 millis")
              expect(yield* processor.isIdle).toBe(true)
              return (yield* messages()).filter((body) => !before.has(body)).map((body) => decode(body))
            })

          const old = Array.from({ length: 40 }, (_, i) => `old-${i}`)
          const oldFailures = yield* batch(old)
          const recent = Array.from({ length: 100 }, (_, i) => `recent-${i}`)
          const recentFailures = yield* batch(recent)
          expect(oldFailures.length).toBeGreaterThan(0)
          expect(recentFailures.length).toBeGreaterThan(0)
          const checkouts = recent.filter((_, i) => i % 5 === 2)
          expect(yield* Effect.promise(() => hits(checkouts))).toEqual([])

          // Retention: the CLI reads the stream through a proxy that no longer returns the old batch's ranges.
          const trimmed = oldFailures.map((f) => ({
            start: BigInt(f.KinesisBatchInfo.startSequenceNumber),
            end: BigInt(f.KinesisBatchInfo.endSequenceNumber)
          }))
          const proxy = yield* FaultProxy.scoped(kinesalite.endpoint)
          proxy.setInterceptor(({ operation, body }) =>
            operation !== "GetRecords"
              ? FaultProxy.forward
              : {
                  _tag: "Rewrite",
                  body,
                  response: (answer) => {
                    const out = answer as {
                      Records?: Array<{ SequenceNumber?: string }>
                      MillisBehindLatest?: number
                    }
                    const records = out.Records ?? []
                    const kept = records.filter((r) => {
                      const n = BigInt(r.SequenceNumber ?? "0")
                      return !trimmed.some((t) => n >= t.start && n <= t.end)
                    })
                    // As Kinesis past the trim horizon: the page starts after the trimmed records.
                    return kept.length < records.length
                      ? {
                          ...out,
                          Records: kept,
                          MillisBehindLatest: Math.max(out.MillisBehindLatest ?? 0, 1000)
                        }
                      : out
                  }
                }
          )
          const cli = (...args: ReadonlyArray<string>) =>
            Effect.promise(() =>
              run(
                [
                  "reprocess-failures",
                  "--backend",
                  "emulators",
                  "--kinesis-endpoint",
                  proxy.endpoint,
                  "--sqs-endpoint",
                  fauxqs.endpoint,
                  "--stream",
                  streamArn,
                  "--failure-queue",
                  onFailureQueue.queueUrl,
                  "--opensearch-endpoint",
                  node().url,
                  "--opensearch-index",
                  alias,
                  ...args
                ],
                { timeoutMillis: 90_000 }
              )
            )
          const queued = (yield* messages()).length
          expect(queued).toBe(oldFailures.length + recentFailures.length)

          // The dry run: counts, and changes nothing.
          const dry = yield* cli("--dry-run", "--json")
          expect(dry.code, dry.stderr).toBe(1)
          const counted = JSON.parse(dry.stdout)
          expect(counted.reprocessed.length).toBe(recentFailures.length)
          expect(counted.kept.every((k: Json) => k.lostToRetention)).toBe(true)
          expect(counted.records.read).toBe(
            recentFailures.reduce((n, f) => n + f.KinesisBatchInfo.batchSize, 0)
          )
          expect((yield* messages()).length).toBe(queued)
          expect(yield* Effect.promise(() => hits(checkouts))).toEqual([])

          // The run, after the fix.
          const fixed = yield* cli()
          expect(fixed.code, `${fixed.stdout}\n${fixed.stderr}`).toBe(1)
          // Every record of the recent batch is indexed, once (one document per id, as sent).
          const found = yield* Effect.promise(() => hits(recent))
          expect(found.map((h) => h._id).sort()).toEqual([...recent].sort())
          for (const h of found) expect(h._source).toMatchObject({ id: h._id, tenant: "demo" })
          // Each trimmed range is listed with its shard, sequence range and arrival time.
          for (const f of oldFailures) {
            const info = f.KinesisBatchInfo
            expect(fixed.stdout).toContain(
              `${info.shardId} ${info.startSequenceNumber}–${info.endSequenceNumber} (${info.batchSize} ${info.batchSize === 1 ? "record" : "records"}, arrived ${info.approximateArrivalOfFirstRecord}`
            )
          }
          expect(fixed.stdout).toMatch(
            /^ {2}LOST to retention: \d+ ranges?, [\d,]+ records?; the stream no longer holds them/m
          )
          expect(fixed.stdout).toContain(
            `  messages   ${queued} received: ${recentFailures.length} reprocessed and deleted, ${oldFailures.length} kept on the queue`
          )
          expect(fixed.stdout.trim().split("\n").at(-1)).toMatch(
            new RegExp(
              `^partial \\(exit 1\\): ${oldFailures.length} messages? left, ${oldFailures.length} ranges? lost to retention$`
            )
          )
          // What is left on the queue: the trimmed ranges' messages, visible again.
          const left = (yield* messages())
            .map((body) => decode(body).KinesisBatchInfo.startSequenceNumber)
            .sort()
          expect(left).toEqual(oldFailures.map((f) => f.KinesisBatchInfo.startSequenceNumber).sort())

          // Again: only what is lost is left; nothing is reprocessed twice.
          const again = yield* cli("--json")
          expect(again.code, again.stderr).toBe(1)
          expect(JSON.parse(again.stdout)).toMatchObject({ received: oldFailures.length, reprocessed: [] })
          expect((yield* Effect.promise(() => hits(recent))).length).toBe(recent.length)
        })
      ).pipe(Effect.provide(NodeServices.layer)),
    120_000
  )
})
