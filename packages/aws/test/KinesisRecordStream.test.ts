/**
 * `KinesisRecordStream` against kinesalite (through the fault proxy): the shared conformance suite,
 * then what only the Kinesis backend does — splitting over-limit calls, renewing expired iterators,
 * mapping AWS error names, and resolving its stream from `Config`.
 */
import { describe, expect, it } from "@effect/vitest"
import { RecordStream } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { ConfigProvider, Effect, Layer } from "effect"
import * as KinesisClient from "../src/KinesisClient.js"
import * as KinesisRecordStream from "../src/KinesisRecordStream.js"
import { KinesisHarness, kinesisLayer } from "./support/harness.js"
import { serversForFile } from "./support/servers.js"

const { credentials, region } = Emulators
const servers = serversForFile("kinesalite")

Conformance.recordStreamSuite({
  name: "Kinesis on kinesalite",
  clock: "live",
  // A small page makes every multi-record range read follow NextShardIterator several times.
  layer: () => kinesisLayer(servers.kinesalite.endpoint, { readPageSize: 7 }),
  faults: Conformance.StreamFaults,
  timeout: 30_000
})

const entry = (partitionKey: string, data = partitionKey): RecordStream.PutEntry => ({
  partitionKey,
  data: new TextEncoder().encode(data)
})

const withStream = <A, E>(
  body: Effect.Effect<A, E, RecordStream.RecordStream | KinesisHarness>,
  options: { readonly readPageSize?: number } = {}
) => Effect.provide(body, kinesisLayer(servers.kinesalite.endpoint, options))

describe("KinesisRecordStream on kinesalite", () => {
  it.live("splits a call over the limits into PutRecords calls and answers every entry in order", () =>
    withStream(
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        const harness = yield* KinesisHarness
        const entries = Array.from({ length: 1100 }, (_, i) => entry(`split-${i}`))
        const outcomes = yield* stream.putRecords(entries)
        expect(harness.proxy.requests("PutRecords")).toBe(3)
        expect(outcomes.filter((o) => o._tag === "Stored")).toHaveLength(1100)
        expect(harness.state.written.size).toBe(1100)
      })
    )
  )

  it.live(
    "when a later chunk fails whole, answers its entries Failed and keeps the stored chunk's answers",
    () =>
      withStream(
        Effect.gen(function* () {
          const stream = yield* RecordStream.RecordStream
          const harness = yield* KinesisHarness
          harness.state.failCall = (call) => call === 2
          const entries = Array.from({ length: 700 }, (_, i) => entry(`later-${i}`))
          const outcomes = yield* stream.putRecords(entries)
          expect(outcomes.slice(0, 500).every((o) => o._tag === "Stored")).toBe(true)
          expect(outcomes.slice(500).map((o) => (o._tag === "Failed" ? o.errorCode : o._tag))).toEqual(
            Array.from({ length: 200 }, () => "InternalFailure")
          )
          // Only the first chunk reached the stream.
          expect(harness.state.written.size).toBe(500)

          // A failure of the first chunk is the call's failure: nothing was stored.
          harness.state.failCall = (call) => call === 3
          const error = yield* Effect.flip(stream.putRecords(entries.slice(0, 10)))
          expect(error.reason).toBe("Unavailable")
        })
      )
  )

  it.live("renews an expired shard iterator and reads every record once", () =>
    withStream(
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        const harness = yield* KinesisHarness
        const outcomes = yield* stream.putRecords(
          Array.from({ length: 40 }, (_, i) => entry("same-key", `r${i}`))
        )
        const stored = outcomes.flatMap((o) => (o._tag === "Stored" ? [o] : []))
        expect(stored).toHaveLength(40)
        const range = {
          shardId: stored[0]!.shardId,
          startSequenceNumber: stored[0]!.sequenceNumber,
          endSequenceNumber: stored.at(-1)!.sequenceNumber
        }
        const expected = stored.map((s) => s.sequenceNumber)

        // Expired before the first page: a new iterator at the start of the range.
        let iterators = harness.proxy.requests("GetShardIterator")
        harness.state.getRecordsCalls = 0
        harness.state.expireIterator = (call) => call === 1
        expect((yield* stream.readRange(range)).map((r) => r.sequenceNumber)).toEqual(expected)
        expect(harness.proxy.requests("GetShardIterator") - iterators).toBe(2)

        // Expired after two pages of 7: the new iterator starts after the last record kept.
        iterators = harness.proxy.requests("GetShardIterator")
        harness.state.getRecordsCalls = 0
        harness.state.expireIterator = (call) => call === 3
        const read = yield* stream.readRange(range)
        expect(read.map((r) => r.sequenceNumber)).toEqual(expected)
        expect(read.map((r) => new TextDecoder().decode(r.data))).toEqual(stored.map((_, i) => `r${i}`))
        expect(harness.proxy.requests("GetShardIterator") - iterators).toBe(2)
      }),
      { readPageSize: 7 }
    )
  )

  it.live("gives up with Unavailable when the iterator keeps expiring", () =>
    withStream(
      Effect.gen(function* () {
        const stream = yield* RecordStream.RecordStream
        const harness = yield* KinesisHarness
        const [stored] = yield* stream.putRecords([entry("expiring")])
        if (stored?._tag !== "Stored") throw new Error("not stored")
        harness.state.expireIterator = () => true
        const error = yield* Effect.flip(
          stream.readRange({
            shardId: stored.shardId,
            startSequenceNumber: stored.sequenceNumber,
            endSequenceNumber: stored.sequenceNumber
          })
        )
        expect(error.reason).toBe("Unavailable")
        expect(error.message).toContain("kept expiring")
      })
    )
  )

  it.live("maps a missing stream to NotFound", () =>
    Effect.gen(function* () {
      const client = yield* KinesisClient.KinesisClient
      const stream = yield* KinesisRecordStream.make({
        streamName: "no-such-stream",
        streamArn: "arn:aws:kinesis:us-east-1:000000000000:stream/no-such-stream"
      }).pipe(Effect.provideService(KinesisClient.KinesisClient, client))
      const error = yield* Effect.flip(stream.putRecords([entry("k")]))
      expect(error.reason).toBe("NotFound")
      expect(error.message).toContain("ResourceNotFoundException")
    }).pipe(
      Effect.provide(KinesisClient.layer({ region, endpoint: servers.kinesalite.endpoint, credentials }))
    )
  )
})

describe("KinesisRecordStream.reasonOf", () => {
  const reason = (name: string, status: number | undefined) =>
    KinesisRecordStream.reasonOf({ name, status, message: "" })

  it("maps the Kinesis error names and statuses of docs/aws-behaviour.md §1.4", () => {
    expect(reason("ProvisionedThroughputExceededException", 400)).toBe("Throttled")
    expect(reason("ThrottlingException", 400)).toBe("Throttled")
    expect(reason("KMSThrottlingException", 400)).toBe("Throttled")
    expect(reason("LimitExceededException", 400)).toBe("Throttled")
    expect(reason("Unknown", 429)).toBe("Throttled")
    expect(reason("InternalFailure", 500)).toBe("Unavailable")
    expect(reason("ServiceUnavailable", 503)).toBe("Unavailable")
    expect(reason("TimeoutError", undefined)).toBe("Unavailable")
    expect(reason("ECONNRESET", undefined)).toBe("Unavailable")
    expect(reason("ResourceNotFoundException", 400)).toBe("NotFound")
    expect(reason("InvalidArgumentException", 400)).toBe("InvalidRequest")
    expect(reason("ValidationException", 400)).toBe("InvalidRequest")
    expect(reason("AccessDeniedException", 400)).toBe("AccessDenied")
    expect(reason("KMSAccessDeniedException", 400)).toBe("AccessDenied")
    expect(reason("KMSDisabledException", 400)).toBe("AccessDenied")
    expect(reason("KMSNotFoundException", 400)).toBe("AccessDenied")
    expect(reason("UnrecognizedClientException", 400)).toBe("AccessDenied")
    expect(reason("CredentialsProviderError", undefined)).toBe("AccessDenied")
  })
})

describe("KinesisRecordStream.layerConfig", () => {
  const layerWith = (env: Record<string, string>) =>
    KinesisRecordStream.layerConfig().pipe(
      Layer.provide(KinesisClient.layer({ region, endpoint: servers.kinesalite.endpoint, credentials })),
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
    )

  it.live("with STREAM_ARN takes the name from the ARN and makes no call", () =>
    Effect.gen(function* () {
      const stream = yield* RecordStream.RecordStream
      expect(stream.streamArn).toBe("arn:aws:kinesis:eu-west-1:123456789012:stream/orders")
    }).pipe(Effect.provide(layerWith({ STREAM_ARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders" })))
  )

  it.live("with STREAM_NAME asks Kinesis for the ARN, and fails at start when the stream is missing", () =>
    Effect.gen(function* () {
      const harness = yield* KinesisHarness
      const stream = yield* Effect.provide(
        RecordStream.RecordStream,
        layerWith({ STREAM_NAME: harness.streamName })
      )
      expect(stream.streamArn).toBe(harness.streamArn)

      const missing = yield* Effect.flip(
        Effect.provide(RecordStream.RecordStream, layerWith({ STREAM_NAME: "not-created" }))
      )
      expect(missing._tag).toBe("RecordStreamError")
      expect(String(missing.message)).toContain("STREAM_NAME=not-created")
      expect(missing._tag === "RecordStreamError" && missing.reason).toBe("NotFound")
    }).pipe(Effect.provide(kinesisLayer(servers.kinesalite.endpoint)))
  )

  it.live("fails at start naming the variable when the stream is not configured or malformed", () =>
    Effect.gen(function* () {
      const none = yield* Effect.flip(Effect.provide(RecordStream.RecordStream, layerWith({})))
      expect(String(none)).toContain("STREAM_ARN")
      const badArn = yield* Effect.flip(
        Effect.provide(
          RecordStream.RecordStream,
          layerWith({ STREAM_ARN: "arn:aws:sqs:us-east-1:123456789012:q" })
        )
      )
      expect(String(badArn)).toContain("Invalid data at STREAM_ARN: ")
      const notAStream = yield* Effect.flip(
        Effect.provide(
          RecordStream.RecordStream,
          layerWith({ STREAM_ARN: "arn:aws:kinesis:us-east-1:123456789012:consumer/x" })
        )
      )
      expect(String(notAStream)).toContain("Invalid data at STREAM_ARN: ")
      expect(String(notAStream)).toContain("stream/<stream name>")
      const badName = yield* Effect.flip(
        Effect.provide(RecordStream.RecordStream, layerWith({ STREAM_NAME: "has spaces" }))
      )
      expect(String(badName)).toContain("STREAM_NAME")
    })
  )
})
