/**
 * The disaster drill on the emulators, recovered with the command an operator would run:
 * `spillway restore --backend emulators --before <loss>` in a child process.
 *
 * The pipeline is `spillway dev --backend emulators`'s (`EmulatorPipeline`): the collector's stage
 * into kinesalite, the processor mapping's emulation writing through `OpenSearchSink` into daily
 * indices on the shared real OpenSearch node, and the Firehose emulation delivering the backup to
 * an S3 bucket on fauxqs. Traffic: two simulated hours, 20 records a simulated minute, with a
 * snapshot (an `fs` repository on the node) after each hour; 40 more minutes; then every index of
 * the alias is deleted and traffic goes on for 10 minutes (the sink's template recreates them).
 *
 * Time: the records' `receivedAt` (and `timestamp`) come from a simulated clock given to the
 * collector; everything else runs in real time — kinesalite stamps arrivals, so the archive is
 * filed under real hours, and the node stamps snapshots with its wall clock. The simulated clock is
 * set so the snapshot the restore must choose is consistent with it: the two hours end before the
 * second snapshot starts, and the 40 minutes after it start after it ended (so they run ahead of
 * the wall clock, and the loss is "40 minutes after the last snapshot" in simulated time). The first
 * snapshot stands for the end of hour one but carries the wall-clock time it was taken, a few
 * seconds before the second: only the order of the two matters to `--before`.
 *
 * What it shows: without `--replace` the command refuses over the recreated indices and changes
 * nothing; with it, the index ends with exactly the ids and sources it had before the loss plus
 * those written since (read with `_search`, source by source), the summary verifies every hour; a
 * second run changes nothing and says the snapshot was already restored; an unknown snapshot is a
 * one-line refusal that changes nothing.
 */
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { OpenSearchClient, OpenSearchSnapshots } from "@spillway/aws"
import { Collect } from "@spillway/core"
import { node, testNamespace } from "@spillway/emulators/vitest"
import { MemoryPipeline } from "@spillway/memory"
import { Clock, Effect } from "effect"
import * as EmulatorPipeline from "../src/dev/EmulatorPipeline.js"
import { run } from "./support/cliProcess.js"

const ns = testNamespace(import.meta.filename)
const alias = `${ns}-drill`
const repository = `${ns}-repo`
const minute = 60_000

// biome-ignore lint/suspicious/noExplicitAny: OpenSearch's JSON answers, only read by assertions
type Json = any

const http = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${node().url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as Json }
}

/** Every document under the alias, id → `_source`, after a refresh (sorted by id, so maps compare). */
const indexed = async (): Promise<Map<string, unknown>> => {
  await http("GET", `/_cluster/health/${alias}-*?wait_for_status=yellow&timeout=5s`)
  await http("POST", `/${alias}/_refresh?ignore_unavailable=true&allow_no_indices=true`)
  const answer = await http("POST", `/${alias}/_search?ignore_unavailable=true&allow_no_indices=true`, {
    size: 10_000,
    query: { match_all: {} }
  })
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  const hits = answer.body.hits.hits as Array<{ _id: string; _source: unknown }>
  return new Map(hits.map((h) => [h._id, h._source] as const).sort(([a], [b]) => (a < b ? -1 : 1)))
}

/** A clock that tells the simulated time `now()` and sleeps in real time. */
const simulatedClock = (real: Clock.Clock, now: () => number): Clock.Clock => ({
  currentTimeMillisUnsafe: now,
  currentTimeMillis: Effect.sync(now),
  currentTimeNanosUnsafe: () => BigInt(now()) * 1_000_000n,
  currentTimeNanos: Effect.sync(() => BigInt(now()) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => real.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: real.monotonicTimeNanos,
  sleep: (duration) => real.sleep(duration)
})

describe("spillway restore on the emulators: the disaster drill", () => {
  it.live(
    "two simulated hours with snapshots, the indices deleted 40 minutes after the last: restore --before <loss> brings back the same ids and sources; a second run changes nothing",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* EmulatorPipeline.make({
            opensearch: { url: node().url, alias },
            emulators: { streamName: `${ns}-stream`, archiveBucket: "drill-backup" }
          })
          const real = yield* Clock.Clock
          let simulated = 0
          const clock = simulatedClock(real, () => simulated)
          const apiKey = MemoryPipeline.defaultApiKeys[0].key
          let sent = 0
          const receivedAts: Array<number> = []
          /** `minutes` simulated minutes of traffic from `from`, 20 records a minute, then until indexed. */
          const traffic = (prefix: string, from: number, minutes: number) =>
            Effect.gen(function* () {
              for (let m = 0; m < minutes; m++) {
                simulated = from + m * minute
                const at = new Date(simulated).toISOString()
                const batch = Array.from({ length: 20 }, (_, i) => ({
                  id: `${prefix}-${m}-${i}`,
                  type: i % 5 === 0 ? "checkout" : "cpu",
                  timestamp: at,
                  host: `web-${i % 3}`,
                  payload: { value: m * 20 + i, unit: "ms" }
                }))
                const result = yield* Collect.collect(apiKey, batch).pipe(
                  Effect.provide(pipeline.layers.collector),
                  Effect.provideService(Clock.Clock, clock)
                )
                expect(result.accepted).toBe(20)
                sent += 20
                for (let i = 0; i < 20; i++) receivedAts.push(simulated)
              }
              const deadline = Date.now() + 60_000
              while (!(yield* pipeline.isIdle) && Date.now() < deadline) yield* Effect.sleep("200 millis")
              expect(yield* pipeline.isIdle).toBe(true)
              // Firehose delivers a buffer every 60 s; the drill is faster, so each phase ends one.
              yield* pipeline.backup.flush
            })

          const client = yield* OpenSearchClient.make({ node: node().url, region: "us-east-1", auth: "none" })
          const os = <A, E>(effect: Effect.Effect<A, E, OpenSearchClient.OpenSearchClient>) =>
            Effect.provideService(effect, OpenSearchClient.OpenSearchClient, client)
          yield* os(OpenSearchSnapshots.registerFsRepository(repository, `${node().repoPath}/${ns}`))

          // Two simulated hours ending now, a snapshot after each.
          const hoursStart = Math.floor((Date.now() - 2 * 60 * minute) / minute) * minute
          yield* traffic("h1", hoursStart, 60)
          yield* os(OpenSearchSnapshots.take(repository, "hourly-1", { indices: [`${alias}-*`] }))
          yield* traffic("h2", hoursStart + 60 * minute, 60)
          const last = yield* os(
            OpenSearchSnapshots.take(repository, "hourly-2", { indices: [`${alias}-*`] })
          )
          expect(last.startedAt).toBeGreaterThan(hoursStart + 120 * minute - minute)
          const afterSnapshot = (last.endedAt ?? Date.now()) + 1000
          // 40 minutes more, then the loss: every index of the alias deleted; traffic goes on.
          yield* traffic("h3", afterSnapshot, 40)
          const lostAt = afterSnapshot + 40 * minute
          const beforeLoss = yield* Effect.promise(indexed)
          expect(beforeLoss.size).toBe(160 * 20)
          const lost = yield* os(OpenSearchSnapshots.indices(`${alias}-*`))
          expect(lost.length).toBeGreaterThan(0)
          yield* os(OpenSearchSnapshots.deleteIndices(lost))
          yield* traffic("after", lostAt, 10)
          const sinceLoss = yield* Effect.promise(indexed)
          expect(sinceLoss.size).toBe(10 * 20)
          const expected = new Map([...beforeLoss, ...sinceLoss].sort(([a], [b]) => (a < b ? -1 : 1)))
          expect(expected.size).toBe(sent)

          const connection = [
            "--backend",
            "emulators",
            "--opensearch-endpoint",
            node().url,
            "--opensearch-index",
            alias,
            "--s3-endpoint",
            pipeline.emulators.s3.endpoint,
            "--archive-bucket",
            pipeline.emulators.archiveBucket,
            "--firehose-stream",
            `${pipeline.emulators.streamName}-backup`
          ]
          const restore = (...args: ReadonlyArray<string>) =>
            Effect.promise(() =>
              run(["restore", ...connection, "--snapshot-repository", repository, ...args], {
                timeoutMillis: 90_000
              })
            )
          const before = ["--before", new Date(lostAt).toISOString()]
          // The archive is filed under real hours (kinesalite's arrival times): this window holds it all.
          const archiveWindow = [
            "--from",
            new Date(
              Math.floor((hoursStart + 120 * minute) / (60 * minute)) * 60 * minute - 60 * minute
            ).toISOString(),
            "--to",
            new Date(Date.now() + 60_000).toISOString()
          ]
          const dryRun = () =>
            Effect.promise(() =>
              run(["replay", ...connection, ...archiveWindow, "--dry-run", "--json"], {
                timeoutMillis: 60_000
              })
            ).pipe(
              Effect.map((answer) => {
                expect(answer.code, answer.stderr).toBe(0)
                return JSON.parse(answer.stdout)
              })
            )
          // What the loss cost, as the replay's dry run counts it: every id received before it.
          expect(yield* dryRun()).toMatchObject({ distinctIds: sent, missingFromIndex: sent - 10 * 20 })

          // The snapshots, listed.
          const listed = yield* restore("--json")
          expect(listed.code, listed.stderr).toBe(0)
          expect(JSON.parse(listed.stdout).snapshots.map((s: Json) => s.name)).toEqual([
            "hourly-1",
            "hourly-2"
          ])

          // Refused over the indices the pipeline recreated: one line, exit 2, nothing changed.
          const refused = yield* restore(...before)
          expect(refused.code, refused.stderr).toBe(2)
          expect(refused.stdout).toBe("")
          const refusal = refused.stderr.trim().split("\n").at(-1)!
          expect(refusal).toMatch(
            /^spillway restore: \d+ ind(ex|ices) of snapshot hourly-2 exists?.*Give --replace/
          )
          expect(yield* Effect.promise(indexed)).toEqual(sinceLoss)

          // An unknown snapshot: one line, exit 2, nothing changed.
          const unknown = yield* restore("--snapshot", "hourly-9", "--replace")
          expect(unknown.code, unknown.stderr).toBe(2)
          expect(unknown.stderr.trim()).toBe(
            `spillway restore: there is no snapshot named hourly-9 in repository ${repository} (2 snapshots: \`spillway restore\` without --snapshot or --before lists them)`
          )
          expect(yield* Effect.promise(indexed)).toEqual(sinceLoss)

          // The restore.
          const first = yield* restore(...before, "--replace", "--json")
          expect(first.code, first.stderr).toBe(0)
          const result = JSON.parse(first.stdout)
          expect(result).toMatchObject({
            exitCode: 0,
            snapshotStep: "restored",
            snapshot: { name: "hourly-2", state: "SUCCESS" },
            archive: { failed: [], undecodable: [], unreadable: [] },
            verification: { missing: 0 }
          })
          expect(result.deletedIndices.length).toBeGreaterThan(0)
          // From the snapshot's start minus the 60-minute lookback: what was received before is in the
          // snapshot, and not written again; everything after is.
          const from = last.startedAt - 60 * minute
          expect(result.window.from).toBe(from)
          const inSnapshot = receivedAts.filter((t) => t < from).length
          expect(inSnapshot).toBeGreaterThanOrEqual(60 * 20)
          expect(result.archive.beforeRange).toBe(inSnapshot)
          expect(result.archive.written).toBe(sent - inSnapshot)
          // Every simulated hour from the lookback on was counted, and matched.
          expect(result.verification.hours.length).toBeGreaterThanOrEqual(2)
          for (const hour of result.verification.hours)
            expect(hour.index).toBeGreaterThanOrEqual(hour.archive)
          expect(first.stderr).toMatch(/restore: restoring hourly-2 from repository/)
          expect(first.stderr).toMatch(/restore: verified: every one of the [\d,]+ ids archived since/)
          const recovered = yield* Effect.promise(indexed)
          expect([...recovered.keys()]).toEqual([...expected.keys()])
          expect(recovered).toEqual(expected)
          expect(yield* dryRun()).toMatchObject({ distinctIds: sent, missingFromIndex: 0 })

          // Again: the snapshot is not restored again, the archive rewrites the same documents.
          const second = yield* restore(...before, "--replace")
          expect(second.code, second.stderr).toBe(0)
          expect(second.stdout).toMatch(/^ {2}snapshot {3}already restored at .*: not restored again$/m)
          expect(second.stdout).toMatch(/^ {2}missing {4}0: every archived id since .* is in the index$/m)
          expect(second.stdout.trim().split("\n").at(-1)).toBe("done")
          expect(yield* Effect.promise(indexed)).toEqual(expected)
        })
      ).pipe(Effect.provide(NodeServices.layer)),
    180_000
  )
})
