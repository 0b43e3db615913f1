/**
 * The sink fanned out next to the index on a memory pipeline (`MemoryPipeline.make({ extraSinks })`,
 * which writes through `DocumentSink.fanOut([index.sink, ...extraSinks])`), with the JSON-lines
 * sink on S3 (fauxqs): collector → stream → event source mapping → processor → both sinks, on the
 * live clock (the bucket is a real server). Every record lands in both with the same body; a
 * document the JSON-lines sink refuses is `Rejected` for the pipeline and reaches the on-failure
 * destination while every other record lands; PUTs S3 throttles are written again by the
 * processor, and nothing goes to on-failure.
 */
import { describe, expect, it } from "@effect/vitest"
import * as S3Client from "@spillway/aws/S3Client"
import { FaultProxy } from "@spillway/emulators"
import { MemoryPipeline } from "@spillway/memory"
import { Harness } from "@spillway/testing"
import { Effect } from "effect"
import * as JsonLinesS3Sink from "../src/JsonLinesS3Sink.js"
import { answer, carriedDocument, documentsIn, fauxqsForFile, freshBucket } from "./support/bucket.js"

const fauxqs = fauxqsForFile()
const prefix = JsonLinesS3Sink.defaultPrefix

/** A memory pipeline whose processor writes to its index and, through a fault proxy, to a fresh bucket. */
const pipelineWithBucket = Effect.gen(function* () {
  const bucket = yield* freshBucket(fauxqs())
  const proxy = yield* FaultProxy.scoped(fauxqs().endpoint)
  const client = yield* S3Client.make({ ...fauxqs().s3, endpoint: proxy.endpoint })
  const jsonLines = yield* JsonLinesS3Sink.make({ bucket }).pipe(
    Effect.provideService(S3Client.S3Client, client)
  )
  const pipeline = yield* MemoryPipeline.make({
    stream: { shardCount: 2 },
    extraSinks: [jsonLines],
    backup: false,
    processor: { pollIntervalMillis: 20 }
  })
  const settle = Harness.settle(pipeline, { clock: "live", step: "50 millis", max: "60 seconds" })
  /** What the bucket holds, id → body. */
  const inBucket = Effect.map(
    documentsIn(client, bucket, prefix),
    (documents) => new Map(documents.map((d) => [d.id, d.body]))
  )
  /** What the index holds, id → source. */
  const inIndex = Effect.map(
    pipeline.index.documents,
    (documents) => new Map(documents.map((d) => [d.id, d.source]))
  )
  return { pipeline, proxy, settle, inBucket, inIndex }
})

const sorted = (ids: Iterable<string>) => [...ids].sort()

describe("JsonLinesS3Sink fanned out next to the index, on a memory pipeline", () => {
  it.live("lands every record in both, with the same body; a resend writes neither again", () =>
    Effect.gen(function* () {
      const { pipeline, proxy, settle, inBucket, inIndex } = yield* pipelineWithBucket
      const records = Harness.records(400, "both").map((r, i) => ({
        ...r,
        payload: { value: i },
        host: `h-${i % 3}`
      }))
      expect((yield* pipeline.collect(Harness.apiKey, records)).stored).toBe(400)
      yield* settle

      const index = yield* inIndex
      const bucket = yield* inBucket
      expect(sorted(index.keys())).toEqual(sorted(records.map((r) => r.id)))
      expect(bucket).toEqual(index)
      expect(bucket.get("both-7")).toMatchObject({
        id: "both-7",
        payload: { value: 7 },
        attributes: { host: "h-1" }
      })
      expect(yield* pipeline.failures.records).toEqual([])

      // The same records again (a client retrying after a timeout): the dedup cache skips them all,
      // so not one request reaches S3.
      const requestsBefore = proxy.requests()
      yield* pipeline.collect(Harness.apiKey, records)
      yield* settle
      expect(proxy.requests()).toBe(requestsBefore)
      expect(yield* inBucket).toEqual(bucket)
      for (const r of records) expect(yield* pipeline.index.writes(r.id)).toBe(1)
    })
  )

  it.live(
    "a document the sink refuses is Rejected for the pipeline, goes to on-failure, and the rest land",
    () =>
      Effect.gen(function* () {
        const { pipeline, settle, inBucket, inIndex } = yield* pipelineWithBucket
        // An id with a lone surrogate (sent as the JSON escape "\ud800"): the collector and the index
        // take it; the JSON-lines sink cannot key an object by it.
        const refused = "refused-\ud800"
        const records = Harness.records(200, "kept")
        records.splice(120, 0, Harness.record(refused))
        expect((yield* pipeline.collect(Harness.apiKey, records)).stored).toBe(201)
        yield* settle

        const kept = records.map((r) => r.id).filter((id) => id !== refused)
        const bucket = yield* inBucket
        expect(sorted(bucket.keys())).toEqual(sorted(kept))
        const index = yield* inIndex
        for (const id of kept) expect(index.get(id)).toEqual(bucket.get(id))
        // fanOut is not a transaction: the index took its copy; the pipeline still reports the record.
        expect(index.has(refused)).toBe(true)

        const refusedSequence = (yield* pipeline.stream.records).find(
          (r) => r.partitionKey === refused
        )!.sequenceNumber
        const failures = yield* pipeline.failures.records
        const covering = failures.filter(
          (f) =>
            BigInt(f.KinesisBatchInfo.startSequenceNumber) <= BigInt(refusedSequence) &&
            BigInt(refusedSequence) <= BigInt(f.KinesisBatchInfo.endSequenceNumber)
        )
        expect(covering).toHaveLength(1)
        expect(covering[0]?.requestContext.condition).toBe("RetryAttemptsExhausted")

        // Replaying the on-failure ranges: what landed is skipped, the refused record fails again, saying why.
        const replayed = yield* pipeline.replayFailures
        expect(replayed.failed.map((f) => f.recordId)).toEqual([refused])
        expect(replayed.failed[0]?.reason).toContain("json-lines-s3: the id is not well-formed Unicode")
        expect(sorted((yield* inBucket).keys())).toEqual(sorted(kept))
      })
  )

  it.live(
    "PUTs S3 throttles are written again within the invocation: nothing lost, nothing to on-failure",
    () =>
      Effect.gen(function* () {
        const { pipeline, proxy, settle, inBucket, inIndex } = yield* pipelineWithBucket
        let throttled = 0
        const seen = new Set<string>()
        proxy.setInterceptor((request) => {
          const id = carriedDocument(request)
          // The first attempt of every tenth record is answered 503 SlowDown.
          if (id !== undefined && Number(id.split("-")[1]) % 10 === 0 && !seen.has(id)) {
            seen.add(id)
            throttled += 1
            return answer(503, "SlowDown")
          }
          return FaultProxy.forward
        })
        const records = Harness.records(300, "slow")
        expect((yield* pipeline.collect(Harness.apiKey, records)).stored).toBe(300)
        yield* settle

        expect(throttled).toBe(30)
        const bucket = yield* inBucket
        expect(sorted(bucket.keys())).toEqual(sorted(records.map((r) => r.id)))
        expect(bucket).toEqual(yield* inIndex)
        expect(yield* pipeline.failures.records).toEqual([])
        // Retried inside the invocation (`Schedules.sinkWrite`): the mapping never had to send a record again.
        const counters = yield* pipeline.processor.counters
        expect(counters).toMatchObject({ functionErrors: 0, partialFailures: 0, retries: 0 })
        expect(counters.recordsDelivered).toBe(300)
      })
  )
})
