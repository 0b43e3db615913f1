/**
 * The throttling proof, on the real SDK against real local servers: the core `collect` stage runs
 * over the Kinesis `RecordStream` (kinesalite behind a proxy that throttles entries with
 * `ProvisionedThroughputExceededException` and answers whole calls 503) and the SQS
 * `FallbackQueue` (fauxqs, whose first send of each message fails transiently). What the stream
 * refuses must be in the queue; then the core `redrive` stage, run over received messages until
 * the queue is empty, must leave every record in the stream exactly as it was sent.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { ApiKeys, Collect, FallbackQueue, Redrive } from "@spillway/core"
import { Effect, Layer } from "effect"
import { KinesisHarness, kinesisLayer, SqsHarness, sqsLayer } from "./support/harness.js"
import { serversForFile } from "./support/servers.js"
import { readWholeStream } from "./support/streams.js"

const servers = serversForFile("kinesalite", "fauxqs")

const apiKey = "tenant-key"

const record = (request: number, i: number) => ({
  id: `device-${request}-${i}`,
  type: i % 2 === 0 ? "cpu" : "memory",
  timestamp: `2026-11-24T10:${String(i % 60).padStart(2, "0")}:00.000Z`,
  payload: { value: i * 1.5, host: `host-${i % 7}`, tags: ["a", `r${request}`] }
})

/** A fixed third of the keys, chosen by hash so that it is spread over both shards. */
const isHot = (partitionKey: string) => createHash("md5").update(partitionKey).digest()[0]! % 3 === 0

// Small calls so that each collect makes several PutRecords calls and some of them get a 503.
const streamLimits = {
  maxEntriesPerCall: 40,
  maxBytesPerCall: 5 * 1024 * 1024,
  maxBytesPerRecord: 1024 * 1024
}

interface Sent {
  readonly id: string
  readonly type: string
  readonly timestamp: string
  readonly payload: unknown
}

const idsInQueueBodies = (bodies: ReadonlyArray<string>): Array<string> =>
  bodies.flatMap((body) =>
    (JSON.parse(body) as { records: Array<{ record: Sent }> }).records.map((e) => e.record.id)
  )

describe("throttled records are parked and redriven: nothing lost", () => {
  it.live(
    "collect parks what Kinesis refuses in SQS; redrive puts all of it back",
    () =>
      Effect.gen(function* () {
        const kinesis = yield* KinesisHarness
        const sqs = yield* SqsHarness
        const queue = yield* FallbackQueue.FallbackQueue
        const queueName = sqs.queueUrl.slice(sqs.queueUrl.lastIndexOf("/") + 1)

        // Hot keys are throttled per entry on their first four puts (collect, then the first
        // redrive's put and its two retries a second apart, so they are parked again): a burst
        // that passes. Calls 3, 7, 11, 15 and 19 fail whole with 503.
        const attempts = new Map<string, number>()
        kinesis.state.inject = (entry) => {
          const n = (attempts.get(entry.partitionKey) ?? 0) + 1
          attempts.set(entry.partitionKey, n)
          return isHot(entry.partitionKey) && n <= 4 ? "ProvisionedThroughputExceededException" : undefined
        }
        kinesis.state.failCall = (call) => call % 4 === 3 && call < 20
        // While collecting, each message's first send fails transiently: `Schedules.fallbackSend`
        // must carry it.
        const seen = new Set<string>()
        sqs.state.inject = (message) => {
          if (seen.has(message.body)) return undefined
          seen.add(message.body)
          return "InternalError"
        }

        const requests = [0, 1, 2].map((r) => Array.from({ length: 120 }, (_, i) => record(r, i)))
        const sent = requests.flat()
        const results = []
        for (const body of requests) results.push(yield* Collect.collect(apiKey, body, { streamLimits }))

        for (const result of results) {
          expect(result.tenant).toBe("acme")
          expect(result.rejected).toEqual([])
          expect(result.unavailable).toEqual([])
          expect(result.accepted).toBe(120)
        }
        const stored = results.reduce((n, r) => n + r.stored, 0)
        const parked = results.reduce((n, r) => n + r.parked, 0)
        expect(stored + parked).toBe(sent.length)
        // Both kinds of refusal happened: whole calls (503) and single entries.
        expect(kinesis.proxy.requests("PutRecords")).toBeGreaterThanOrEqual(9)
        expect(parked).toBeGreaterThan(sent.filter((s) => isHot(s.id)).length)
        // Each collect parked one message (small records), refused once and sent on the retry.
        expect(sqs.proxy.requests("SendMessageBatch")).toBe(2 * results.filter((r) => r.parked > 0).length)

        // Everything is in exactly one place: the stream or the queue.
        const streamAfterCollect = (yield* readWholeStream(kinesis.client, kinesis.streamName)).map(
          (r) => (JSON.parse(new TextDecoder().decode(r.Data)) as { record: Sent }).record.id
        )
        const parkedIds = idsInQueueBodies(yield* servers.fauxqs.messageBodies(queueName))
        expect(streamAfterCollect).toHaveLength(stored)
        expect(parkedIds).toHaveLength(parked)
        expect([...streamAfterCollect, ...parkedIds].sort()).toEqual(sent.map((s) => s.id).sort())

        // The redriver, as its Lambda would run it: receive, redrive, delete what is done; failed
        // messages come back after their visibility timeout.
        // (The redriver does not retry sends — a failed re-park fails the message, which comes
        // back — so the queue is healthy from here on.)
        sqs.state.inject = undefined
        // Bounded by time, not asserted on: the visibility timeout (3 s), the redriver's retries
        // of throttled entries (1 s apart) and the re-park delays are real seconds here.
        const deadline = Date.now() + 40_000
        let reparked = 0
        while ((yield* servers.fauxqs.messageBodies(queueName)).length > 0) {
          if (Date.now() > deadline) throw new Error("the queue did not drain within 40 s")
          const messages = yield* queue.receive({ maxMessages: 10, visibilityTimeoutSeconds: 3 })
          if (messages.length === 0) {
            yield* Effect.sleep("200 millis")
            continue
          }
          const result = yield* Redrive.redrive(
            messages.map((m) => ({ messageId: m.messageId, body: m.body })),
            { streamLimits }
          )
          reparked += result.reparked
          const failed = new Set(result.failed.map((f) => f.messageId))
          for (const m of messages) if (!failed.has(m.messageId)) yield* queue.delete(m.receiptHandle)
        }
        expect(reparked).toBeGreaterThan(0)

        // Every record is in the stream, byte for byte as collected, and nothing else is.
        const final = yield* readWholeStream(kinesis.client, kinesis.streamName)
        const envelopes = final.map(
          (r) =>
            JSON.parse(new TextDecoder().decode(r.Data)) as {
              tenant: string
              receivedAt: number
              record: Sent
            }
        )
        const byId = new Map(envelopes.map((e) => [e.record.id, e]))
        expect([...byId.keys()].sort()).toEqual(sent.map((s) => s.id).sort())
        for (const s of sent) {
          const envelope = byId.get(s.id)!
          expect(envelope.record).toEqual(s)
          expect(envelope.tenant).toBe("acme")
        }
        // Partitioned by record id, as the collector writes them. (A record can appear twice: a
        // redrive message whose put half failed is redriven whole — at-least-once, by design.)
        for (const r of final) {
          expect(r.PartitionKey).toBe(
            (JSON.parse(new TextDecoder().decode(r.Data)) as { record: Sent }).record.id
          )
        }
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            kinesisLayer(servers.kinesalite.endpoint),
            sqsLayer(servers.fauxqs),
            ApiKeys.layerPlain([{ tenant: "acme", key: apiKey }])
          )
        )
      ),
    60_000
  )
})
