/**
 * The Firehose side of the archive. `FirehoseArchive` (the core `Archive` on S3) against fauxqs
 * S3: objects in Firehose's layout, written by Spillway or by Firehose itself (records
 * concatenated, gzipped, no delimiter after the last), listed by hour and read back. `FirehoseSink` against a loopback server answering
 * `PutRecordBatch` as the API documents it (there is no Firehose emulator), and through the shared
 * `DocumentSink` conformance suite — without `stored`: Firehose delivers at least once, to S3, so
 * what it holds cannot be read back by id, and the checks that need that are not registered.
 */
import { gzipSync } from "node:zlib"
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { describe, expect, it } from "@effect/vitest"
import { Archive, DocumentSink } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { ConfigProvider, Context, Effect, Layer, Result } from "effect"
import * as FirehoseArchive from "../src/FirehoseArchive.js"
import * as FirehoseClient from "../src/FirehoseClient.js"
import * as FirehoseSink from "../src/FirehoseSink.js"
import * as S3Client from "../src/S3Client.js"
import { serversForFile } from "./support/servers.js"
import { uniqueName } from "./support/streams.js"

const { credentials, region } = Emulators
const servers = serversForFile("fauxqs")

const encoder = new TextEncoder()
const text = (data: Uint8Array) => new TextDecoder().decode(data)

const s3 = () =>
  S3Client.layer({ region, credentials, endpoint: servers.fauxqs.endpoint, forcePathStyle: true })

const archiveIn = (bucket: string, options: Partial<FirehoseArchive.Options> = {}) =>
  FirehoseArchive.layer({ bucket, deliveryStreamName: "telemetry-archive", ...options }).pipe(
    Layer.provideMerge(s3())
  )

const at = (iso: string) => Date.parse(iso)

describe("FirehoseArchive on fauxqs S3", () => {
  it.live("names objects by its layout: prefix, UTC hour, stream, version, oldest arrival, uuid, .gz", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const key = yield* archive.write([
        { data: encoder.encode("later"), arrivedAt: at("2026-11-25T00:00:01.000+02:00") },
        { data: encoder.encode("oldest"), arrivedAt: at("2026-11-24T23:59:58.120+02:00") }
      ])
      expect(key).toMatch(/^raw\/2026\/11\/24\/21\/telemetry-3-2026-11-24-21-59-58-[0-9a-f-]{36}\.gz$/)
      expect((yield* archive.read(key)).map(text)).toEqual(["later", "oldest"])
    }).pipe(
      Effect.provide(
        archiveIn(newBucket(), {
          deliveryStreamName: "telemetry",
          deliveryStreamVersion: 3,
          prefix: "raw/",
          compression: "GZIP"
        })
      )
    )
  )

  for (const compression of ["UNCOMPRESSED", "GZIP"] as const) {
    it.live(`writes records newline-delimited (${compression}) and reads them back in order`, () =>
      Effect.gen(function* () {
        const archive = yield* Archive.Archive
        const records = Array.from({ length: 50 }, (_, i) => ({
          data: encoder.encode(JSON.stringify({ id: `r-${i}`, text: "é ✓" })),
          arrivedAt: at("2026-11-24T10:15:00Z") + i * 1000
        }))
        const key = yield* archive.write(records)
        expect(key).toMatch(
          new RegExp(
            `^2026/11/24/10/telemetry-archive-1-2026-11-24-10-15-00-[0-9a-f-]{36}${compression === "GZIP" ? "\\.gz" : ""}$`
          )
        )
        const read = yield* archive.read(key)
        expect(read.map(text)).toEqual(records.map((r) => text(r.data)))
      }).pipe(Effect.provide(archiveIn(newBucket(), { compression })))
    )
  }

  it.live("lists the objects of the hours in a range, and only those", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const one = (iso: string) => archive.write([{ data: encoder.encode(iso), arrivedAt: at(iso) }])
      const before = yield* one("2026-11-24T08:59:59Z")
      const first = yield* one("2026-11-24T09:00:00Z")
      const second = yield* one("2026-11-24T10:30:00Z")
      const third = yield* one("2026-11-24T10:45:00Z")
      const after = yield* one("2026-11-24T12:00:00Z")
      const listed = yield* archive.list({ from: at("2026-11-24T09:10:00Z"), to: at("2026-11-24T11:59:59Z") })
      expect(listed).toEqual([first, second, third].sort())
      expect(listed).not.toContain(before)
      expect(listed).not.toContain(after)
      const backwards = yield* Effect.flip(archive.list({ from: at("2026-11-25T00:00:00Z"), to: 0 }))
      expect(backwards.reason).toBe("InvalidRequest")
    }).pipe(Effect.provide(archiveIn(newBucket(), { prefix: "spillway/" })))
  )

  it.live("reads an object as Firehose delivers it: gzipped, records concatenated, no final newline", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const client = yield* S3Client.S3Client
      const key =
        "2026/11/24/10/telemetry-archive-1-2026-11-24-10-00-00-7a3e1c2d-1111-2222-3333-444455556666.gz"
      const body = gzipSync(Buffer.from('{"id":"a"}\n{"id":"b"}\n{"id":"c"}', "utf8"))
      yield* Effect.promise(() =>
        client.send(new PutObjectCommand({ Bucket: archive.bucket, Key: key, Body: body }))
      )
      expect((yield* archive.read(key)).map(text)).toEqual(['{"id":"a"}', '{"id":"b"}', '{"id":"c"}'])
    }).pipe(Effect.provide(archiveIn(newBucket())))
  )

  it.live("refuses records it could not read back, and reports missing and corrupt objects", () =>
    Effect.gen(function* () {
      const archive = yield* Archive.Archive
      const client = yield* S3Client.S3Client
      const split = yield* Effect.flip(archive.write([{ data: encoder.encode("two\nlines"), arrivedAt: 0 }]))
      expect(split.reason).toBe("InvalidRequest")
      expect((yield* Effect.flip(archive.write([]))).reason).toBe("InvalidRequest")

      const missing = yield* Effect.flip(archive.read("2026/11/24/10/nothing-here"))
      expect(missing.reason).toBe("NotFound")
      expect(missing.isRetryable).toBe(false)

      const key = "2026/11/24/10/broken.gz"
      yield* Effect.promise(() =>
        client.send(new PutObjectCommand({ Bucket: archive.bucket, Key: key, Body: Buffer.from("not gzip") }))
      )
      expect((yield* Effect.flip(archive.read(key))).reason).toBe("Corrupt")
    }).pipe(Effect.provide(archiveIn(newBucket())))
  )

  it.live("reads its bucket from Config and names a malformed variable", () =>
    Effect.gen(function* () {
      const bucket = newBucket()
      const layerWith = (env: Record<string, string>) =>
        FirehoseArchive.layerConfig.pipe(
          Layer.provide(s3()),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
        )
      const archive = yield* Effect.provide(
        Archive.Archive,
        layerWith({ ARCHIVE_BUCKET: bucket, FIREHOSE_STREAM_NAME: "s", ARCHIVE_COMPRESSION: "GZIP" })
      )
      expect(yield* archive.write([{ data: encoder.encode("x"), arrivedAt: 0 }])).toMatch(/\.gz$/)
      const bad = yield* Effect.flip(
        Effect.provide(
          Archive.Archive,
          layerWith({ ARCHIVE_BUCKET: "Bad_Bucket", FIREHOSE_STREAM_NAME: "s" })
        )
      )
      expect(String(bad)).toContain("ARCHIVE_BUCKET")
    })
  )

  it("maps S3 errors", () => {
    const reason = (name: string, status: number | undefined) =>
      FirehoseArchive.reasonOf({ name, status, message: "" })
    expect(reason("SlowDown", 503)).toBe("Throttled")
    expect(reason("TooManyRequests", 429)).toBe("Throttled")
    expect(reason("NoSuchKey", 404)).toBe("NotFound")
    expect(reason("NoSuchBucket", 404)).toBe("NotFound")
    expect(reason("AccessDenied", 403)).toBe("AccessDenied")
    expect(reason("InvalidAccessKeyId", 403)).toBe("AccessDenied")
    expect(reason("InternalError", 500)).toBe("Unavailable")
    expect(reason("TimeoutError", undefined)).toBe("Unavailable")
    expect(reason("InvalidArgument", 400)).toBe("InvalidRequest")
  })
})

function newBucket(): string {
  const name = uniqueName("archive").toLowerCase()
  Effect.runSync(servers.fauxqs.createBucket(name))
  return name
}

// -----------------------------------------------------------------------------------------------

interface FakeFirehose {
  readonly proxy: FaultProxy.FaultProxy
  /** Records delivered, in arrival order. */
  readonly delivered: Array<string>
  /** Decides per record (by its text) whether it fails with an error code. */
  failRecord: ((record: string) => string | undefined) | undefined
  /** Decides per call (1-based) whether it fails whole. */
  failCall: ((call: number) => { status: number; type: string } | undefined) | undefined
  readonly batchSizes: Array<number>
}

/** A loopback PutRecordBatch endpoint: the fault proxy answering every call itself. */
const fakeFirehose = Effect.gen(function* () {
  const proxy = yield* FaultProxy.scoped("http://127.0.0.1:9")
  const fake: FakeFirehose = {
    proxy,
    delivered: [],
    failRecord: undefined,
    failCall: undefined,
    batchSizes: []
  }
  let calls = 0
  proxy.setInterceptor(({ operation, body }) => {
    if (operation !== "PutRecordBatch")
      return { _tag: "Respond", status: 400, body: { __type: "UnknownOperation" } }
    const failed = fake.failCall?.(++calls)
    if (failed !== undefined)
      return { _tag: "Respond", status: failed.status, body: { __type: failed.type, message: "injected" } }
    const records = (body as { Records: Array<{ Data: string }> }).Records.map((r) =>
      Buffer.from(r.Data, "base64").toString("utf8")
    )
    fake.batchSizes.push(records.length)
    const responses = records.map((record, i) => {
      const code = fake.failRecord?.(record)
      if (code !== undefined) return { ErrorCode: code, ErrorMessage: "Slow down." }
      fake.delivered.push(record)
      return { RecordId: `record-${calls}-${i}` }
    })
    return {
      _tag: "Respond",
      status: 200,
      body: {
        FailedPutCount: responses.filter((r) => "ErrorCode" in r).length,
        Encrypted: false,
        RequestResponses: responses
      }
    }
  })
  return fake
})

const sinkThrough = (fake: FakeFirehose, limits?: FirehoseSink.Limits) =>
  FirehoseSink.make({
    deliveryStreamName: "telemetry-archive",
    ...(limits === undefined ? {} : { limits })
  }).pipe(Effect.provide(FirehoseClient.layer({ region, credentials, endpoint: fake.proxy.endpoint })))

const docs = (n: number, size = 10) =>
  Array.from(
    { length: n },
    (_, i): DocumentSink.Document => ({ id: `d-${i}`, body: { pad: "p".repeat(size), i } })
  )

/** The loopback endpoint behind the sink a conformance test writes to. */
class Endpoint extends Context.Service<Endpoint, FakeFirehose>()("test/FakeFirehose") {}

Conformance.documentSinkSuite({
  name: "FirehoseSink on a loopback PutRecordBatch endpoint",
  clock: "live",
  layer: () =>
    Layer.effectContext(
      Effect.gen(function* () {
        const fake = yield* fakeFirehose
        const sink = yield* sinkThrough(fake)
        return Context.make(DocumentSink.DocumentSink, sink).pipe(Context.add(Endpoint, fake))
      })
    ),
  requests: Endpoint.useSync((fake) => fake.proxy.requests("PutRecordBatch")),
  // Over Firehose's 1,000 KiB per record: refused unsent.
  refusedDocument: (id) => ({ id, body: { pad: "x".repeat(1000 * 1024) } }),
  faults: Effect.map(Endpoint, (fake) => {
    let turnAway = 0
    return {
      retryNext: (count: number) =>
        Effect.sync(() => {
          turnAway = count
          fake.failRecord = () => (turnAway-- > 0 ? "ServiceUnavailableException" : undefined)
        }),
      outage: Effect.sync(() => {
        fake.failCall = () => ({ status: 503, type: "ServiceUnavailableException" })
      }),
      clear: Effect.sync(() => {
        fake.failRecord = undefined
        fake.failCall = undefined
      })
    }
  }),
  timeout: 30_000
})

describe("FirehoseSink on a loopback PutRecordBatch endpoint", () => {
  it.live("sends one newline-terminated JSON record per document, readable back as the document", () =>
    Effect.gen(function* () {
      const fake = yield* fakeFirehose
      const sink = yield* sinkThrough(fake)
      const documents = docs(3)
      expect(yield* sink.write(documents)).toEqual(documents.map(() => DocumentSink.written))
      expect(fake.delivered.every((r) => r.endsWith("\n"))).toBe(true)
      expect(fake.delivered.map((r) => FirehoseSink.decodeRecord(encoder.encode(r.trimEnd())))).toEqual(
        documents.map((d) => Result.succeed(d))
      )
    }).pipe(Effect.scoped)
  )

  it.live("answers records the service failed as retryable, the others written", () =>
    Effect.gen(function* () {
      const fake = yield* fakeFirehose
      fake.failRecord = (record) => (record.includes('"d-1"') ? "ServiceUnavailableException" : undefined)
      const sink = yield* sinkThrough(fake)
      const outcomes = yield* sink.write(docs(3))
      expect(outcomes.map((o) => o._tag)).toEqual(["Written", "Retryable", "Written"])
      expect(outcomes[1]?._tag === "Retryable" && outcomes[1].reason).toContain("ServiceUnavailableException")
    }).pipe(Effect.scoped)
  )

  it.live("splits to 500 records and 4 MiB per call; rejects a record over 1,000 KiB unsent", () =>
    Effect.gen(function* () {
      const fake = yield* fakeFirehose
      const sink = yield* sinkThrough(fake)
      expect((yield* sink.write(docs(1200))).every((o) => o._tag === "Written")).toBe(true)
      expect(fake.batchSizes).toEqual([500, 500, 200])

      fake.batchSizes.length = 0
      const big = [...docs(6, 900 * 1024), { id: "huge", body: { pad: "h".repeat(1000 * 1024) } }]
      const outcomes = yield* sink.write(big)
      expect(outcomes.map((o) => o._tag)).toEqual([...big.slice(0, 6).map(() => "Written"), "Rejected"])
      expect(fake.batchSizes).toEqual([4, 2])
    }).pipe(Effect.scoped)
  )

  it.live("a throttled first call fails the write; a later call's failure is answered per document", () =>
    Effect.gen(function* () {
      const fake = yield* fakeFirehose
      const sink = yield* sinkThrough(fake, { ...FirehoseSink.defaultLimits, maxRecordsPerCall: 2 })
      fake.failCall = (call) =>
        call === 1 ? { status: 400, type: "ServiceUnavailableException" } : undefined
      const error = yield* Effect.flip(sink.write(docs(5)))
      expect(error.reason).toBe("Throttled")
      expect(error.isRetryable).toBe(true)
      expect(fake.delivered).toHaveLength(0)

      fake.failCall = (call) => (call === 3 ? { status: 500, type: "InternalFailure" } : undefined)
      const outcomes = yield* sink.write(docs(5))
      expect(outcomes.map((o) => o._tag)).toEqual([
        "Written",
        "Written",
        "Retryable",
        "Retryable",
        "Retryable"
      ])
      expect(fake.delivered).toHaveLength(2)

      fake.failCall = (call) => (call === 5 ? { status: 400, type: "ResourceNotFoundException" } : undefined)
      const rejected = yield* sink.write(docs(5))
      expect(rejected.map((o) => o._tag)).toEqual(["Written", "Written", "Rejected", "Rejected", "Rejected"])
    }).pipe(Effect.scoped)
  )

  it("maps PutRecordBatch errors", () => {
    const reason = (name: string, status: number | undefined) =>
      FirehoseSink.reasonOf({ name, status, message: "" })
    expect(reason("ServiceUnavailableException", 400)).toBe("Throttled")
    expect(reason("LimitExceededException", 400)).toBe("Throttled")
    expect(reason("InvalidKMSResourceException", 400)).toBe("AccessDenied")
    expect(reason("AccessDeniedException", 400)).toBe("AccessDenied")
    expect(reason("ResourceNotFoundException", 400)).toBe("InvalidRequest")
    expect(reason("InvalidArgumentException", 400)).toBe("InvalidRequest")
    expect(reason("InternalFailure", 500)).toBe("Unavailable")
    expect(reason("TimeoutError", undefined)).toBe("Unavailable")
  })
})
