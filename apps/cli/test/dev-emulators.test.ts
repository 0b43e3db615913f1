/**
 * `spillway dev --backend emulators` run as a user runs it: a child process from the repository
 * root that starts kinesalite and fauxqs in-process, runs the collector and the redriver on the
 * AWS layers and the processor on the event source mapping emulation over the real Kinesis API.
 * A `--records` run must end by itself with exit code 0 and a summary showing every record
 * indexed and backed up, none lost or missing from the backup. In process: a poison record ends in
 * the on-failure queue and blocks nothing, and the backup's objects are in the fauxqs bucket in
 * Firehose's layout.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { it as effectIt } from "@effect/vitest"
import { S3Client, SqsClient } from "@spillway/aws"
import { Archive, Collect, OnFailure, Telemetry } from "@spillway/core"
import { Duration, Effect, Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as EmulatorPipeline from "../src/dev/EmulatorPipeline.js"
import { apiKey, record, records, waitUntilIdle } from "./harness.js"

/** Settles the pipeline on the live clock; false if `ms` pass first. */
const settle = (pipeline: EmulatorPipeline.Pipeline, ms: number) =>
  waitUntilIdle(pipeline, Duration.millis(ms))

const root = fileURLToPath(new URL("../../../", import.meta.url))

const run = (args: ReadonlyArray<string>, ms: number) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["apps/cli/bin/spillway.js", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" }
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`no exit within ${ms} ms; output:\n${output}`))
    }, ms)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

const figure = (output: string, label: string): number => {
  const match = output.match(new RegExp(`^\\s+${label}\\s+(\\d+)`, "m"))
  if (match?.[1] === undefined) throw new Error(`no "${label}" row in the summary:\n${output}`)
  return Number(match[1])
}

describe("spillway dev --backend emulators", () => {
  it("indexes every accepted record through kinesalite and fauxqs, then exits 0", {
    timeout: 90_000
  }, async () => {
    const { code, output } = await run(
      ["dev", "--backend", "emulators", "--port", "0", "--records", "2000"],
      85_000
    )
    // The banner names the emulators: the run did not fall back to the memory backend.
    expect(output).toContain("kinesalite")
    expect(output).toMatch(/collector listening on http:\/\/127\.0\.0\.1:\d+\/v1\/telemetry/)
    expect(figure(output, "sent")).toBe(2000)
    expect(figure(output, "indexed")).toBe(2000)
    expect(figure(output, "lost")).toBe(0)
    // Read back from the fauxqs bucket after the drain flushed the backup's buffer.
    expect(figure(output, "backed up")).toBe(2000)
    expect(output).toMatch(/^\s+backed up\s+2000\s+in [1-9]\d* objects? in spillway-backup; 0 missing$/m)
    expect(output).not.toContain("pipeline not drained in time")
    expect(code).toBe(0)
  })

  it("refuses an unknown backend with exit code 1 or 2 and no summary", { timeout: 30_000 }, async () => {
    const { code, output } = await run(
      ["dev", "--backend", "dynamo", "--port", "0", "--records", "1"],
      25_000
    )
    expect(code).not.toBe(0)
    expect(output).not.toContain("summary")
  })
})

// In-process, on the live clock: the emulators are real servers and the pollers wait real seconds.
describe("EmulatorPipeline", () => {
  effectIt.live(
    "redrives a parked record from the SQS fallback queue into the stream, and the processor indexes it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* EmulatorPipeline.make()
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
          expect((yield* pipeline.index.get("parked-1"))?.source).toMatchObject({
            id: "parked-1",
            tenant: "demo"
          })
          expect((yield* pipeline.queue.stats).total).toBe(0)
          expect((yield* pipeline.processor.counters).invocations).toBeGreaterThanOrEqual(1)
        })
      ),
    30_000
  )

  effectIt.live(
    "isolates a poison record: one on-failure record starting at it, every other record indexed",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* EmulatorPipeline.make({
            emulators: { shardCount: 1 },
            // A short poll interval (and retry delay) keeps the bisection steps quick on the live clock.
            processor: { pollIntervalMillis: 100 }
          })
          const context = pipeline.layers.collector
          const collect = (body: unknown) => Effect.provide(Collect.collect(apiKey, body), context)

          // The index maps payload.value as a number from the first document; a string there is a
          // mapping error on every attempt: a poison record.
          expect((yield* collect([record("first")])).stored).toBe(1)
          expect(yield* settle(pipeline, 20_000)).toBe(true)
          const batch = records(200)
          batch[120] = record("poison", { value: "not a number" })
          expect((yield* collect(batch)).stored).toBe(200)
          expect(yield* settle(pipeline, 40_000)).toBe(true)

          expect(yield* pipeline.index.count).toBe(1 + 199)
          expect(yield* pipeline.index.get("poison")).toBeUndefined()
          expect(yield* pipeline.index.get("r-121")).toBeDefined()

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
          for (const r of discarded.slice(1)) expect(yield* pipeline.index.get(r.partitionKey)).toBeDefined()
          expect(failures[0]?.requestContext.condition).toBe("RetryAttemptsExhausted")
          expect(failures[0]?.KinesisBatchInfo.streamArn).toBe(pipeline.emulators.streamArn)
          expect(counters.recordsDiscarded).toBe(discarded.length)
        })
      ),
    90_000
  )

  effectIt.live(
    "backs the stream up into the fauxqs bucket: objects under YYYY/MM/dd/HH/, every record once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* EmulatorPipeline.make()
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
      ),
    40_000
  )
})
