/**
 * `--backend memory`: a rehearsal. Each recovery command can be tried with nothing deployed, on an
 * in-memory pipeline (`MemoryPipeline`, the one `spillway dev` and the simulator run) that this
 * module puts into the state the command repairs, on simulated time (`VirtualTime`: hours of
 * pipeline time in seconds) ending at the real present, so times given on the command line mean
 * what they would in an incident. Then the command runs on it exactly as on a deployment — the same
 * program, the same output and exit codes — and the process ends; nothing outside is touched.
 *
 * - reprocess-failures: a processor bug (documents of type `checkout` refused) sent batches to the
 *   on-failure queue 25 h 40 min ago (their records are now past the stream's 24-hour retention)
 *   and 30 minutes ago; the bug is fixed.
 * - replay: a new deployment with an empty index, and the backup archive of the three hours before
 *   now (20 records a minute).
 * - restore: 2 hours 40 minutes of traffic with hourly snapshots; the index was deleted 40 minutes
 *   after the last snapshot, 20 minutes ago, and the pipeline went on writing.
 */
import {
  ApiKeys,
  Collect,
  DedupCache,
  DocumentSink,
  FallbackQueue,
  Process,
  RecordStream,
  Telemetry
} from "@spillway/core"
import {
  KinesisEventSource,
  MemoryFailureDestination,
  MemoryIndex,
  MemoryPipeline,
  MemoryQueue,
  MemoryStream,
  VirtualTime
} from "@spillway/memory"
import { Clock, Duration, Effect, Fiber, Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import type * as ReprocessFailures from "../reprocess-failures/ReprocessFailures.js"
import * as Text from "../Text.js"
import * as OpenSearchIndex from "./OpenSearchIndex.js"
import type * as Snapshots from "./Snapshots.js"

const minute = 60_000
const hour = 60 * minute

/**
 * Runs `effect` on simulated time starting at `startAt`. Time moves only when told: by the
 * rehearsal's own steps while it sets the world up, and by `whileTimePasses` while the command runs.
 */
export const onSimulatedTime = <A, E>(
  startAt: number,
  effect: Effect.Effect<A, E, Scope.Scope | TestClock.TestClock>
): Effect.Effect<A, E> =>
  VirtualTime.provide(
    Effect.scoped(
      Effect.gen(function* () {
        yield* TestClock.setTime(startAt)
        return yield* effect
      })
    )
  )

/** Runs `effect` while simulated time moves on in 100 ms steps, so that its sleeps (retries, pacing) end. */
export const whileTimePasses = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

/** Moves simulated time on by `duration` (in steps, so every fiber keeps up). */
const pass = (duration: Duration.Input) =>
  Effect.gen(function* () {
    let left = Duration.toMillis(Duration.fromInputUnsafe(duration))
    while (left > 0) {
      const step = Math.min(left, 1000)
      yield* TestClock.adjust(step)
      left -= step
    }
  })

/** Until the pipeline has nothing in flight (seen twice), at most an hour of simulated time. */
const settle = (pipeline: { readonly isIdle: Effect.Effect<boolean> }) =>
  Effect.gen(function* () {
    let idle = 0
    for (let i = 0; i < 3600 && idle < 2; i++) {
      yield* TestClock.adjust("1 second")
      idle = (yield* pipeline.isIdle) ? idle + 1 : 0
    }
  })

const demo = MemoryPipeline.defaultApiKeys[0]

/** `perMinute` demo records a minute for `minutes`, from now on, as the collector takes them. */
const traffic = (
  pipeline: Pick<MemoryPipeline.Pipeline, "collect">,
  options: {
    readonly prefix: string
    readonly minutes: number
    readonly perMinute: number
    readonly type?: (i: number) => string
  }
) =>
  Effect.gen(function* () {
    let n = 0
    for (let m = 0; m < options.minutes; m++) {
      const now = yield* Clock.currentTimeMillis
      const batch = Array.from({ length: options.perMinute }, () => {
        const i = n++
        return {
          id: `${options.prefix}-${i}`,
          type: options.type?.(i) ?? "cpu",
          timestamp: new Date(now).toISOString(),
          host: `web-${i % 4}`,
          payload: { value: i % 100 }
        }
      })
      yield* Effect.orDie(pipeline.collect(demo.key, batch))
      yield* pass(minute)
    }
    return n
  })

// ---------------------------------------------------------------------------------------------
// reprocess-failures

export interface ReprocessWorld {
  readonly story: ReadonlyArray<string>
  readonly queue: ReprocessFailures.Queue
  readonly layer: Layer.Layer<RecordStream.RecordStream | DedupCache.DedupCache | DocumentSink.DocumentSink>
  readonly index: MemoryIndex.Handle
}

/** How long before now the reprocess-failures rehearsal starts: its first batch is then past retention. */
export const reprocessFailuresSpan = 25 * hour + 40 * minute

/** How long before now the restore rehearsal starts. */
export const restoreSpan = 3 * hour

/** The on-failure queue after a processor bug; to run on simulated time from `now - reprocessFailuresSpan`. */
export const reprocessFailures = (
  now: number
): Effect.Effect<ReprocessWorld, never, Scope.Scope | TestClock.TestClock> =>
  Effect.gen(function* () {
    // The pipeline's parts, so that its processor can have the bug: it refuses every checkout
    // document (its v2.3 cannot read them), so they never reach the index; the mapping retries,
    // then sends the batch's range to the on-failure destination.
    const stream = yield* Effect.orDie(MemoryStream.make({ shardCount: 2 }))
    const index = yield* MemoryIndex.make()
    const failures = yield* MemoryFailureDestination.make
    const fallback = yield* MemoryQueue.make({ queueName: "fallback" })
    let bug = true
    const buggy: DocumentSink.Service = {
      name: "processor-v2.3",
      write: (documents) =>
        Effect.gen(function* () {
          const refused = (d: DocumentSink.Document) => bug && d.body.type === "checkout"
          const passed = documents.filter((d) => !refused(d))
          const answers = passed.length === 0 ? [] : yield* index.sink.write(passed)
          let next = 0
          return documents.map(
            (d): DocumentSink.WriteOutcome =>
              refused(d)
                ? {
                    _tag: "Rejected",
                    reason: "the processor's v2.3 cannot read checkout documents (the bug)"
                  }
                : (answers[next++] ?? DocumentSink.written)
          )
        })
    }
    const config = {
      ...MemoryPipeline.recommendedProcessorConfig,
      maximumRetryAttempts: 2,
      onFailure: failures
    }
    const processor = yield* Effect.orDie(
      KinesisEventSource.start(stream, Process.kinesisHandler(config), config).pipe(
        Effect.provideService(DedupCache.DedupCache, DedupCache.make({ capacity: 100_000 })),
        Effect.provideService(DocumentSink.DocumentSink, buggy)
      )
    )
    const collector = Layer.mergeAll(
      Layer.succeed(
        ApiKeys.ApiKeys,
        ApiKeys.make([{ tenant: demo.tenant, sha256: ApiKeys.hashKey(demo.key) }])
      ),
      Layer.succeed(RecordStream.RecordStream, stream),
      Layer.succeed(FallbackQueue.FallbackQueue, fallback)
    )
    const pipeline = {
      collect: (apiKey: string | undefined, body: unknown) =>
        Effect.provide(Collect.collect(apiKey, body), collector),
      isIdle: processor.isIdle
    }
    const checkout = (i: number) => (i % 10 === 3 ? "checkout" : "cpu")
    // One request a phase: one batch a shard, so a few ranges in all.
    const early = yield* traffic(pipeline, { prefix: "early", minutes: 1, perMinute: 300, type: checkout })
    yield* settle(pipeline)
    // A day later (the first batch is now past the stream's 24-hour retention), the bug again.
    yield* pass(Duration.toMillis("25 hours") - minute)
    const late = yield* traffic(pipeline, { prefix: "late", minutes: 1, perMinute: 300, type: checkout })
    yield* settle(pipeline)
    bug = false
    const remaining = now - (yield* Clock.currentTimeMillis)
    if (remaining > 0) yield* pass(remaining)

    const queue = yield* MemoryQueue.make({ queueName: "spillway-on-failure", visibilityTimeoutSeconds: 30 })
    const bodies = yield* failures.messages
    for (let i = 0; i < bodies.length; i += 10) {
      yield* Effect.orDie(queue.send(bodies.slice(i, i + 10).map((body, j) => ({ id: `m${i + j}`, body }))))
    }
    const indexed = yield* index.count
    return {
      story: [
        `rehearsal (memory, simulated time): ${Text.count(early + late, "record")} sent 25 hours 40 minutes ago and 40 minutes ago; a processor bug refused every checkout document, so the mapping sent ${Text.count(bodies.length, "batch range", "batch ranges")} to the on-failure queue, and the first ones are now past the stream's 24-hour retention. The bug is fixed; the index holds ${Text.count(indexed, "document")}.`
      ],
      queue: {
        ...queue,
        name: `in-memory queue ${queue.queueName}`,
        depth: Effect.map(queue.stats, (s) => s.visible + s.inFlight)
      },
      layer: Layer.mergeAll(
        Layer.succeed(RecordStream.RecordStream, stream),
        Layer.succeed(DedupCache.DedupCache, DedupCache.make({ capacity: 100_000 })),
        Layer.succeed(DocumentSink.DocumentSink, index.sink)
      ),
      index
    } satisfies ReprocessWorld
  })

// ---------------------------------------------------------------------------------------------
// The index, as the recovery commands read it

/** A memory index as `OpenSearchIndex.Probe`: ids, counts per hour of `receivedAt`, restore marks. */
export const probe = (
  index: MemoryIndex.Handle,
  marks: Map<string, OpenSearchIndex.RestoreMark>
): OpenSearchIndex.Probe => ({
  alias: index.indexName,
  refresh: Effect.void,
  holding: (ids) =>
    Effect.map(index.documents, (documents) => {
      const stored = new Set(documents.map((d) => d.id))
      return new Set(ids.filter((id) => stored.has(id)))
    }),
  countsPerHour: (from) =>
    Effect.map(index.documents, (documents) => {
      const counts = new Map<number, number>()
      for (const d of documents) {
        // Documents carry `receivedAt` as ISO-8601 (`writeDocuments.toDocument`).
        const value = d.source.receivedAt
        const receivedAt =
          typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : Number.NaN
        if (Number.isNaN(receivedAt) || receivedAt < from) continue
        const h = Math.floor(receivedAt / hour) * hour
        counts.set(h, (counts.get(h) ?? 0) + 1)
      }
      return counts
    }),
  restoreMarks: (indices) =>
    Effect.succeed(
      new Map(indices.flatMap((name) => (marks.has(name) ? [[name, marks.get(name)!] as const] : [])))
    ),
  markRestored: (indices, mark) =>
    Effect.sync(() => {
      for (const name of indices) marks.set(name, { ...mark, indexUuid: `memory-${name}` })
    })
})

/** A memory index's snapshots as `Snapshots.Store`. Deleting the index drops its restore mark. */
export const snapshotStore = (
  index: MemoryIndex.Handle,
  marks: Map<string, OpenSearchIndex.RestoreMark>
): Snapshots.Store => ({
  location: "the in-memory index",
  repository: "memory",
  list: Effect.map(index.snapshots, (snapshots) =>
    snapshots.map((s) => ({
      name: s.name,
      state: "SUCCESS",
      startedAt: s.takenAt,
      endedAt: s.takenAt,
      indices: [index.indexName]
    }))
  ),
  // An index that holds documents exists; one deleted (and not written since) does not.
  openIndices: () => Effect.map(index.count, (n) => (n > 0 ? [index.indexName] : [])),
  deleteIndices: (names) =>
    names.includes(index.indexName)
      ? Effect.andThen(
          index.deleteIndex,
          Effect.sync(() => marks.delete(index.indexName))
        )
      : Effect.void,
  restore: (snapshot) =>
    index.restoreSnapshot(snapshot.name).pipe(
      Effect.as([index.indexName]),
      Effect.mapError((error) => new OpenSearchIndex.IndexError({ message: error.message, retryable: false }))
    )
})

// ---------------------------------------------------------------------------------------------
// replay

export interface ReplayWorld {
  readonly story: ReadonlyArray<string>
  readonly pipeline: MemoryPipeline.Pipeline
  readonly index: OpenSearchIndex.Probe
}

/** A new deployment with an empty index and the archive of the three hours before `now`. */
export const replay = (now: number): Effect.Effect<ReplayWorld, never, Scope.Scope | TestClock.TestClock> =>
  Effect.gen(function* () {
    const pipeline = yield* Effect.orDie(MemoryPipeline.make({ stream: { shardCount: 2 } }))
    // The backup of three hours of traffic, one object every five minutes (Firehose's layout).
    const start = Math.floor((now - 3 * hour) / hour) * hour
    let n = 0
    for (let at = start; at < start + 3 * hour; at += 5 * minute) {
      const records = Array.from({ length: 100 }, (_, k) => {
        const i = n++
        const receivedAt = at + k * 3000
        return {
          data: Telemetry.encodeEnvelope(
            new Telemetry.TelemetryEnvelope({
              tenant: demo.tenant,
              receivedAt,
              record: new Telemetry.TelemetryRecord({
                id: Telemetry.RecordId.make(`archived-${i}`),
                type: "cpu",
                timestamp: new Date(receivedAt).toISOString(),
                payload: { value: i % 100 }
              })
            })
          ),
          arrivedAt: receivedAt + 50
        }
      })
      yield* Effect.orDie(pipeline.archive.write(records))
    }
    return {
      story: [
        `rehearsal (memory, simulated time): a new deployment with an empty index, and the backup archive of ${Text.instant(start)} to ${Text.instant(start + 3 * hour)} (${Text.count(n, "record")} in ${Text.count(36, "object")}). Replay a window of it, e.g. --from ${Text.instant(start + hour)} --to ${Text.instant(start + 2 * hour - 1000)}.`
      ],
      pipeline,
      index: probe(pipeline.index, new Map())
    } satisfies ReplayWorld
  })

/** After the command: what the pipeline's processor made of it (the rehearsal waits for it). */
export const settled = (pipeline: { readonly isIdle: Effect.Effect<boolean> }) => settle(pipeline)

// ---------------------------------------------------------------------------------------------
// restore

export interface RestoreWorld {
  readonly story: ReadonlyArray<string>
  readonly pipeline: MemoryPipeline.Pipeline
  readonly store: Snapshots.Store
  readonly index: OpenSearchIndex.Probe
  readonly lostAt: number
}

/** 2 h 40 min of traffic with hourly snapshots, the index lost 40 min after the last, 20 min before `now`. */
export const restore = (now: number): Effect.Effect<RestoreWorld, never, Scope.Scope | TestClock.TestClock> =>
  Effect.gen(function* () {
    const pipeline = yield* Effect.orDie(MemoryPipeline.make({ stream: { shardCount: 2 } }))
    let sent = 0
    sent += yield* traffic(pipeline, { prefix: "h1", minutes: 60, perMinute: 10 })
    yield* pipeline.index.takeSnapshot
    sent += yield* traffic(pipeline, { prefix: "h2", minutes: 60, perMinute: 10 })
    const last = yield* pipeline.index.takeSnapshot
    sent += yield* traffic(pipeline, { prefix: "h3", minutes: 40, perMinute: 10 })
    yield* settle(pipeline)
    const lostAt = yield* Clock.currentTimeMillis
    yield* pipeline.index.deleteIndex
    sent += yield* traffic(pipeline, { prefix: "after", minutes: 15, perMinute: 10 })
    yield* settle(pipeline)
    yield* Effect.orDie(pipeline.backup?.flush ?? Effect.void)
    const remaining = now - (yield* Clock.currentTimeMillis)
    if (remaining > 0) yield* pass(remaining)
    const marks = new Map<string, OpenSearchIndex.RestoreMark>()
    return {
      story: [
        `rehearsal (memory, simulated time): ${Text.count(sent, "record")} over the last 3 hours, snapshots every hour (the last at ${Text.instant(last.takenAt)}); the index was deleted at ${Text.instant(lostAt)}, 40 minutes after it, and the pipeline went on writing. Try --before ${Text.instant(lostAt)}.`
      ],
      pipeline,
      store: snapshotStore(pipeline.index, marks),
      index: probe(pipeline.index, marks),
      lostAt
    } satisfies RestoreWorld
  })
