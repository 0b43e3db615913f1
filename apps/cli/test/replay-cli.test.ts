/**
 * `spillway replay --backend emulators` in child processes, against kinesalite and an archive on
 * fauxqs S3 (objects in Firehose's layout, written by `FirehoseArchive`), and the refusals of every
 * recovery command on bad input.
 *
 * What it shows:
 * - a replay killed with SIGKILL halfway (paced with --rate, so "halfway" is a moment, not a race)
 *   and started again says it resumed and ends with every archived record in the stream; the only
 *   records put twice are those of the one PutRecords call whose checkpoint the kill prevented (at
 *   most --rate of them), and the processor's stage over what the stream holds writes every record
 *   once; a third run has nothing to do;
 * - bad input exits 2 with one line and changes nothing: --from after --to, an archive object that
 *   cannot be read (the stream stays empty), no credentials on --backend aws for each command
 *   (with the endpoints pointing at the emulators, so a command that went on would change them).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient as KinesisSdkClient,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import { describe, expect, it } from "@effect/vitest"
import { FirehoseArchive, S3Client } from "@spillway/aws"
import { DedupCache, DocumentSink, Process, type RecordStream, Telemetry } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { MemoryIndex } from "@spillway/memory"
import { Effect } from "effect"
import { run, start } from "./support/cliProcess.js"

const hour = Date.parse("2026-11-24T10:00:00.000Z")
const window = ["--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T10:59:59Z"]

const envelope = (id: string, receivedAt: number) =>
  Telemetry.encodeEnvelope(
    new Telemetry.TelemetryEnvelope({
      tenant: "demo",
      receivedAt,
      record: new Telemetry.TelemetryRecord({
        id: Telemetry.RecordId.make(id),
        type: "cpu",
        timestamp: new Date(receivedAt).toISOString(),
        payload: { value: id.length }
      })
    })
  )

/** Every record the stream holds, shard by shard from the trim horizon. */
const streamRecords = (client: KinesisSdkClient, streamName: string) =>
  Effect.promise(async () => {
    const records: Array<RecordStream.StreamRecord> = []
    const shards = await client.send(new ListShardsCommand({ StreamName: streamName }))
    for (const shard of shards.Shards ?? []) {
      const shardId = shard.ShardId!
      let iterator = (
        await client.send(
          new GetShardIteratorCommand({
            StreamName: streamName,
            ShardId: shardId,
            ShardIteratorType: "TRIM_HORIZON"
          })
        )
      ).ShardIterator
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const r of page.Records ?? []) {
          records.push({
            shardId,
            sequenceNumber: r.SequenceNumber!,
            partitionKey: r.PartitionKey!,
            data: r.Data!,
            approximateArrivalTimestamp: r.ApproximateArrivalTimestamp?.getTime() ?? 0
          })
        }
        if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break
        iterator = page.NextShardIterator
      }
    }
    return records
  })

const idOf = (r: RecordStream.StreamRecord) => {
  const decoded = Telemetry.decodeEnvelope(r.data)
  if (decoded._tag === "Failure") throw new Error(decoded.failure.reason)
  return decoded.success.record.id
}

/** kinesalite with a two-shard stream, fauxqs with a bucket, and the flags that point the CLI at them. */
const emulators = (name: string) =>
  Effect.gen(function* () {
    const kinesalite = yield* Emulators.kinesalite
    const fauxqs = yield* Emulators.fauxqs
    const client = yield* Emulators.kinesisClient(kinesalite.client)
    const streamArn = yield* Emulators.createStream(client, name, 2)
    const bucket = yield* fauxqs.createBucket(`${name}-backup`)
    const s3 = yield* S3Client.make(fauxqs.s3)
    const archive = (compression: "GZIP" | "UNCOMPRESSED") =>
      FirehoseArchive.make({ bucket, deliveryStreamName: name, compression }).pipe(
        Effect.provideService(S3Client.S3Client, s3)
      )
    return {
      kinesalite,
      fauxqs,
      client,
      streamArn,
      bucket,
      archive,
      flags: [
        "--backend",
        "emulators",
        "--kinesis-endpoint",
        kinesalite.endpoint,
        "--s3-endpoint",
        fauxqs.endpoint,
        "--stream",
        streamArn,
        "--archive-bucket",
        bucket,
        "--firehose-stream",
        name
      ]
    }
  })

describe("spillway replay on the emulators", () => {
  it.live(
    "killed halfway with SIGKILL and started again: it says it resumed, and every record ends in the stream, put twice only within one call",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const world = yield* emulators("replay-kill")
          const archive = yield* world.archive("UNCOMPRESSED")
          const ids: Array<string> = []
          // Ten objects of 200 records, five minutes apart, in the window's hour.
          for (let o = 0; o < 10; o++) {
            const at = hour + o * 5 * 60_000
            yield* archive.write(
              Array.from({ length: 200 }, (_, i) => {
                const id = `archived-${o}-${i}`
                ids.push(id)
                return { data: envelope(id, at + i), arrivedAt: at + i + 20 }
              })
            )
          }
          const dir = mkdtempSync(join(tmpdir(), "spillway-replay-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
          const checkpoint = join(dir, "checkpoint.json")
          const args = ["replay", ...world.flags, ...window, "--checkpoint", checkpoint]

          // Paced at 250 records/s (calls of 250): killed once at least 800 are put.
          const first = start([...args, "--rate", "250"])
          const put = () =>
            Math.max(
              0,
              ...[...first.output().matchAll(/replay: ([\d,]+) of 2,000 records put/g)].map((m) =>
                Number(m[1]!.replaceAll(",", ""))
              )
            )
          const deadline = Date.now() + 60_000
          while (put() < 800 && first.child.exitCode === null && Date.now() < deadline) {
            yield* Effect.sleep("50 millis")
          }
          expect(put(), first.output()).toBeGreaterThanOrEqual(800)
          first.child.kill("SIGKILL")
          const killed = yield* Effect.promise(() => first.exit)
          expect(killed.signal).toBe("SIGKILL")
          const saved = JSON.parse(readFileSync(checkpoint, "utf8"))
          expect(saved).toMatchObject({ done: false, runs: 1 })
          expect(saved.put).toBeGreaterThanOrEqual(800)
          expect(saved.put).toBeLessThan(2000)
          const inStreamAtKill = (yield* streamRecords(world.client, "replay-kill")).length
          // Everything the checkpoint counts is in the stream, and at most one call more.
          expect(inStreamAtKill).toBeGreaterThanOrEqual(saved.put)
          expect(inStreamAtKill - saved.put).toBeLessThanOrEqual(250)

          // Started again, at full speed: it resumes where the checkpoint says.
          const second = yield* Effect.promise(() => run(args))
          expect(second.code, second.stderr).toBe(0)
          expect(second.stderr).toMatch(
            /replay: resuming at 2026\/11\/24\/10\/replay-kill-1-\S+ record [\d,]+: [\d,]+ records put by 1 earlier run/
          )
          expect(second.stdout).toMatch(
            /^ {2}resumed {4}at 2026\/11\/24\/10\/replay-kill-1-\S+ record [\d,]+ \(/m
          )
          expect(second.stdout).toContain(
            `  put        ${(2000 - saved.put).toLocaleString("en-US")} by this run, 2,000 by every run of this window`
          )
          expect(second.stdout.trim().split("\n").at(-1)).toBe(`done: checkpoint ${checkpoint}`)

          const records = yield* streamRecords(world.client, "replay-kill")
          const copies = new Map<string, number>()
          for (const r of records) copies.set(idOf(r), (copies.get(idOf(r)) ?? 0) + 1)
          // Every archived record is in the stream; twice only for the call the kill cut off.
          expect([...copies.keys()].sort()).toEqual([...ids].sort())
          const twice = records.length - ids.length
          expect(twice).toBe(inStreamAtKill - saved.put)
          expect([...copies.values()].every((n) => n === 1 || n === 2)).toBe(true)
          // What the processor makes of the stream: every record written once, the copies skipped.
          const index = yield* MemoryIndex.make()
          const processed = yield* Process.process(records).pipe(
            Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 10_000 })),
            Effect.provideService(DocumentSink.DocumentSink, index.sink)
          )
          expect(processed).toMatchObject({ written: 2000, skipped: twice, failed: [] })
          expect(yield* index.count).toBe(2000)

          // A third run: the checkpoint says done; nothing is put.
          const third = yield* Effect.promise(() => run(args))
          expect(third.code, third.stderr).toBe(0)
          expect(third.stdout).toContain("nothing to do")
          expect((yield* streamRecords(world.client, "replay-kill")).length).toBe(records.length)
        })
      ),
    120_000
  )

  it.live(
    "an archive object it cannot read: exit 2, one line naming it, nothing put",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const world = yield* emulators("replay-corrupt")
          const archive = yield* world.archive("GZIP")
          yield* archive.write([{ data: envelope("good-1", hour + 1000), arrivedAt: hour + 1000 }])
          // A gzip object that is not gzip (a truncated upload, say), put by hand: fauxqs serves S3 path-style.
          const key =
            "2026/11/24/10/replay-corrupt-1-2026-11-24-10-30-00-0f0e0d0c-0b0a-4908-8706-050403020100.gz"
          const put = yield* Effect.promise(() =>
            fetch(`${world.fauxqs.endpoint}/${world.bucket}/${key}`, {
              method: "PUT",
              body: "not gzip at all"
            })
          )
          expect(put.status).toBe(200)
          const dir = mkdtempSync(join(tmpdir(), "spillway-replay-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
          const refused = yield* Effect.promise(() =>
            run([
              "replay",
              ...world.flags,
              ...window,
              "--archive-compression",
              "GZIP",
              "--checkpoint",
              join(dir, "c.json")
            ])
          )
          expect(refused.code, refused.stderr).toBe(2)
          expect(refused.stdout).toBe("")
          const line = refused.stderr.trim().split("\n").at(-1)!
          expect(line).toMatch(
            new RegExp(
              `^spillway replay: cannot read 1 archive object of the window \\(${key.replaceAll(".", "\\.")}: .*gunzip.*\\); nothing was put\\.`
            )
          )
          expect(refused.stderr).not.toMatch(/^\s+at /m)
          expect(refused.stderr).not.toContain('"_tag"')
          expect((yield* streamRecords(world.client, "replay-corrupt")).length).toBe(0)
        })
      ),
    60_000
  )
})

describe("bad input to the recovery commands: exit 2, one plain line, nothing changed", () => {
  it("--from after --to", async () => {
    const refused = await run([
      "replay",
      "--backend",
      "aws",
      "--from",
      "2026-11-24T12:00:00Z",
      "--to",
      "2026-11-24T10:00:00Z"
    ])
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe("")
    expect(refused.stderr).toBe(
      "spillway replay: --from 2026-11-24T12:00:00Z is after --to 2026-11-24T10:00:00Z: the window runs from --from to --to\n"
    )
  })

  it.live(
    "no credentials on --backend aws, for each command: before any call",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const world = yield* emulators("no-credentials")
          const archive = yield* world.archive("UNCOMPRESSED")
          yield* archive.write([{ data: envelope("kept-1", hour + 1000), arrivedAt: hour + 1000 }])
          const queue = yield* world.fauxqs.createQueue("no-credentials-on-failure")
          const dir = mkdtempSync(join(tmpdir(), "spillway-no-credentials-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
          // No credentials anywhere the SDK's chain looks: no variables, no files, no instance metadata.
          const env: NodeJS.ProcessEnv = {}
          for (const [key, value] of Object.entries(process.env))
            if (!key.startsWith("AWS_")) env[key] = value
          Object.assign(env, {
            HOME: dir,
            AWS_REGION: "us-east-1",
            AWS_CONFIG_FILE: join(dir, "config"),
            AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_ENDPOINT_URL_KINESIS: world.kinesalite.endpoint,
            AWS_ENDPOINT_URL_SQS: world.fauxqs.endpoint,
            AWS_ENDPOINT_URL_S3: world.fauxqs.endpoint,
            AWS_S3_FORCE_PATH_STYLE: "true",
            STREAM_ARN: world.streamArn,
            FAILURE_QUEUE_URL: queue.queueUrl,
            ARCHIVE_BUCKET: world.bucket,
            FIREHOSE_STREAM_NAME: "no-credentials",
            OPENSEARCH_ENDPOINT: "http://127.0.0.1:9",
            NO_COLOR: "1"
          })
          const commands = [
            ["reprocess-failures", "--backend", "aws"],
            ["replay", "--backend", "aws", ...window, "--checkpoint", join(dir, "c.json")],
            ["restore", "--backend", "aws", "--before", "2026-11-24T11:00:00Z", "--replace"]
          ]
          for (const args of commands) {
            const refused = yield* Effect.promise(() => run(args, { env, cwd: dir }))
            expect(refused.code, refused.stderr).toBe(2)
            expect(refused.stdout).toBe("")
            expect(refused.stderr.trim().split("\n")).toHaveLength(1)
            expect(refused.stderr).toMatch(new RegExp(`^spillway ${args[0]}: no AWS credentials: `))
          }
          // Nothing was put, and nothing was written where the replay keeps its place.
          expect((yield* streamRecords(world.client, "no-credentials")).length).toBe(0)
          expect(() => readFileSync(join(dir, "c.json"))).toThrow()
        })
      ),
    90_000
  )
})
