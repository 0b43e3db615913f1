/**
 * The simulation engine behind `spillway simulate`: runs a scenario through the whole in-memory
 * pipeline (collector → stream / fallback queue → redriver → processor → index, on-failure
 * destination and replay, and the Firehose backup into the hourly archive) on virtual time, and
 * reports what became of every record.
 *
 * Guarantees:
 * - no real waiting: time is Effect's `TestClock`, moved one second at a time, so minutes of
 *   pipeline time take seconds of CPU;
 * - reproducible: the clock starts at a fixed instant and every random draw (traffic, record mix,
 *   faults, sequence numbers, jitter) comes from one `Random` seeded with `seed`, so the same
 *   scenario, seed and record count give the same report, byte for byte;
 * - self-contained figures: everything is counted from what this run's backends hold and from a
 *   probe sink, never from the process-global Effect metrics, so runs in one process do not mix;
 * - honest loss accounting: `lost` is the set of accepted record ids that the index does not hold
 *   and that the replay did not report as refused for their content (poison), with the reason —
 *   counted, not assumed; and `integrity.missingFromBackup` counts accepted ids the archive, read
 *   back after Firehose's last delivery, does not hold.
 *
 * The producer is a client fleet sending requests of 100 records at the scenario's rate, about 1%
 * of them invalid (refused by the collector's schema) and about 0.5% copies of records it already
 * sent; records the collector answers `unavailable` are sent again on the next tick. Before the
 * traffic, one well-formed record is sent alone and indexed, so the index maps `payload.value` as
 * a number, as it would in a live index — that is what makes a string there a poison record.
 */
import { Archive, type Collect } from "@spillway/core"
import { MemoryPipeline, VirtualTime } from "@spillway/memory"
import { Clock, Duration, Effect, Fiber, Random, References, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Probe from "./probe.js"
import type { Report } from "./report.js"
import {
  clearAllFaults,
  isScenarioName,
  plannedTrafficMillis,
  type Scenario,
  type ScenarioName,
  scenarioNames,
  scenarios
} from "./scenarios.js"

export interface RunOptions {
  readonly seed: number
  /** Records the producer makes, the warm-up record included. 1–1,000,000. */
  readonly records: number
}

export class SimulationError extends Schema.TaggedError<SimulationError>()("SimulationError", {
  scenario: Schema.String,
  reason: Schema.Literals(["InvalidOptions", "PipelineRefused", "DidNotSettle"]),
  message: Schema.String
}) {}

/** 2026-11-27T08:00:00Z, Black Friday morning: every run's clock starts here. */
export const startTime = Date.UTC(2026, 10, 27, 8, 0, 0)

export const maxRecords = 1_000_000
const apiKey = MemoryPipeline.defaultApiKeys[0].key
const tickMillis = 250
const recordsPerRequest = 100
const invalidRate = 0.01
const duplicateRate = 0.005
/** `_bulk` round trip of a small OpenSearch domain. */
const bulkLatency = Duration.millis(25)
/** How long the pipeline may take to drain after the traffic before the run is declared stuck. */
const settleLimitMillis = 2 * 3_600_000

/**
 * Firehose's buffering, scaled down like the runs (a run's traffic lasts seconds to minutes, not
 * hours): 2 s, so even a short run sees several deliveries, and a backup outage meets some.
 */
const backupConfig = { ...MemoryPipeline.defaultBackupConfig, bufferingIntervalSeconds: 2 }

type Kind = "valid" | "invalid" | "poison"

interface Made {
  readonly id: string
  readonly kind: Kind
  readonly body: Readonly<Record<string, unknown>>
}

/** Counts per simulated second, growing as the run goes. */
class PerSecond {
  readonly values: Array<number> = []
  add(second: number, n = 1): void {
    while (this.values.length <= second) this.values.push(0)
    this.values[second] = (this.values[second] ?? 0) + n
  }
  set(second: number, n: number): void {
    while (this.values.length <= second) this.values.push(0)
    this.values[second] = n
  }
  at(second: number): number {
    return this.values[second] ?? 0
  }
}

/** What the producer did, record by record. */
interface Ledger {
  readonly made: Array<Made>
  readonly accepted: Set<string>
  readonly rejected: Set<string>
  readonly sent: PerSecond
  readonly acceptedPerSecond: PerSecond
  readonly rejectedPerSecond: PerSecond
  parked: number
  duplicatesSent: number
  clientResends: number
  invalidAccepted: number
  validRejected: number
  rejectedWithoutReason: number
}

const secondOf = (millis: number): number => Math.max(0, Math.floor((millis - startTime) / 1000))

/** An integer in [min, max): `max` itself is never drawn. */
const below = (min: number, max: number): Effect.Effect<number> =>
  Random.nextIntBetween(min, max, { halfOpen: true })

const pick = <A>(items: ReadonlyArray<A>): Effect.Effect<A> =>
  Effect.map(below(0, items.length), (i) => items[i]!)

const types = ["cpu", "memory", "disk", "network"] as const

/** One record as a client would send it; invalid ones break the schema in one of the ways clients do. */
const makeRecord = (ordinal: number, kind: Kind): Effect.Effect<Made> =>
  Effect.gen(function* () {
    const id = `rec-${ordinal}`
    const now = yield* Clock.currentTimeMillis
    // Devices stamp records a little before they reach the collector.
    const timestamp = new Date(now - (yield* below(0, 2000))).toISOString()
    const host = `host-${yield* below(0, 50)}`
    const value = Math.round((yield* Random.next) * 10_000) / 100
    const type = yield* pick(types)
    if (kind === "poison") {
      return { id, kind, body: { id, type, timestamp, payload: { host, value: "sensor offline" } } }
    }
    if (kind === "invalid") {
      const flaw = yield* below(0, 3)
      const body =
        flaw === 0
          ? { id, type, timestamp: "yesterday at noon", payload: { host, value } }
          : flaw === 1
            ? { id, type: "", timestamp, payload: { host, value } }
            : { id, type, timestamp, payload: [host, value] }
      return { id, kind, body }
    }
    return { id, kind, body: { id, type, timestamp, payload: { host, value } } }
  })

const refused = (scenario: string) => (error: { readonly _tag: string; readonly message: string }) =>
  new SimulationError({
    scenario,
    reason: "PipelineRefused",
    message: `${error._tag}: ${error.message}`
  })

/** Sends one request and books, per record, what the collector answered. */
const send = (
  pipeline: MemoryPipeline.Pipeline,
  ledger: Ledger,
  scenario: ScenarioName,
  request: ReadonlyArray<Made>
): Effect.Effect<ReadonlyArray<Made>, SimulationError> =>
  Effect.gen(function* () {
    const result: Collect.CollectResult = yield* pipeline
      .collect(
        apiKey,
        request.map((r) => r.body)
      )
      .pipe(Effect.mapError(refused(scenario)))
    const second = secondOf(result.receivedAt)
    const rejected = new Map(result.rejected.map((r) => [r.index, r.reason]))
    const unavailable = new Set(result.unavailable.map((u) => u.index))
    ledger.sent.add(second, request.length)
    ledger.parked += result.parked
    request.forEach((record, index) => {
      const reason = rejected.get(index)
      if (reason !== undefined) {
        if (reason.length === 0) ledger.rejectedWithoutReason++
        if (record.kind !== "invalid") ledger.validRejected++
        if (!ledger.rejected.has(record.id)) {
          ledger.rejected.add(record.id)
          ledger.rejectedPerSecond.add(second)
        }
      } else if (!unavailable.has(index)) {
        if (record.kind === "invalid") ledger.invalidAccepted++
        if (!ledger.accepted.has(record.id)) {
          ledger.accepted.add(record.id)
          ledger.acceptedPerSecond.add(second)
        }
      }
    })
    return request.filter((_, index) => unavailable.has(index))
  })

/** The client fleet: requests of up to 100 records every tick, at the rate of the current phase. */
const produce = (
  pipeline: MemoryPipeline.Pipeline,
  ledger: Ledger,
  scenario: Scenario,
  total: number
): Effect.Effect<void, SimulationError> =>
  Effect.gen(function* () {
    // Phase boundaries by record count, after the warm-up record.
    const ends: Array<number> = []
    let cumulative = 0
    for (const phase of scenario.phases) {
      cumulative += phase.share
      ends.push(1 + Math.round(cumulative * (total - 1)))
    }
    const phaseOf = (made: number) =>
      scenario.phases[
        Math.max(
          0,
          ends.findIndex((end) => made < end)
        )
      ] ?? scenario.phases[0]!

    let quota = 0
    let retry: Array<Made> = []
    while (ledger.made.length < total || retry.length > 0) {
      const jitter = 0.8 + 0.4 * (yield* Random.next)
      quota += ((phaseOf(ledger.made.length).recordsPerSecond * tickMillis) / 1000) * jitter
      const fresh = Math.min(Math.floor(quota), total - ledger.made.length)
      quota -= fresh
      const items = retry
      ledger.clientResends += retry.length
      retry = []
      for (let i = 0; i < fresh; i++) {
        const roll = yield* Random.next
        const kind: Kind =
          roll < invalidRate ? "invalid" : roll < invalidRate + scenario.poisonRate ? "poison" : "valid"
        const record = yield* makeRecord(ledger.made.length, kind)
        ledger.made.push(record)
        items.push(record)
        // A client that timed out re-sends a record the collector had in fact accepted.
        if ((yield* Random.next) < duplicateRate) {
          const earlier = ledger.made[yield* below(0, ledger.made.length)]!
          if (earlier.kind === "valid" && ledger.accepted.has(earlier.id)) {
            ledger.duplicatesSent++
            items.push(earlier)
          }
        }
      }
      for (let from = 0; from < items.length; from += recordsPerRequest) {
        const unavailable = yield* send(
          pipeline,
          ledger,
          scenario.name,
          items.slice(from, from + recordsPerRequest)
        )
        retry.push(...unavailable)
      }
      yield* Effect.sleep(Duration.millis(tickMillis))
    }
  })

/**
 * How far before the chosen snapshot the restore starts: the longest processing lag the operator
 * allows for (a record indexed just after the snapshot may have been received before it), scaled
 * down like the runs: the pipeline here indexes within about a second (a record it missed would
 * show as lost).
 */
const restoreLookbackMillis = 2_000

/** The index's automated snapshots, at the scenario's times. */
const takeSnapshots = (pipeline: MemoryPipeline.Pipeline, scenario: Scenario, trafficMillis: number) =>
  Effect.gen(function* () {
    let elapsed = 0
    for (const at of scenario.recovery?.snapshotsAt ?? []) {
      const due = Math.round(at * trafficMillis)
      if (due > elapsed) yield* Effect.sleep(Duration.millis(due - elapsed))
      elapsed = Math.max(elapsed, due)
      yield* pipeline.index.takeSnapshot
    }
  })

/** Starts and stops each fault of the scenario at its place in the planned traffic time. */
const injectFaults = (
  pipeline: MemoryPipeline.Pipeline,
  scenario: Scenario,
  trafficMillis: number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const begin = yield* Clock.currentTimeMillis
    yield* Effect.forEach(
      scenario.faults,
      (fault) =>
        Effect.gen(function* () {
          const from = Math.round(fault.from * trafficMillis)
          const to = Math.round(fault.to * trafficMillis)
          if (from > 0) yield* Effect.sleep(Duration.millis(from))
          yield* fault.start(pipeline, begin + to)
          yield* Effect.sleep(Duration.millis(to - from))
          yield* fault.stop(pipeline)
        }),
      { concurrency: "unbounded", discard: true }
    )
  })

/**
 * Records held by the fallback queue, visible or in flight (a message carries many). A message's
 * body never changes, so each is parsed once, however many seconds it stays in the queue.
 */
const fallbackDepthGauge = (pipeline: MemoryPipeline.Pipeline): Effect.Effect<number> => {
  const recordsIn = new Map<string, number>()
  const count = (body: string): number => {
    const parsed: unknown = JSON.parse(body)
    return typeof parsed === "object" &&
      parsed !== null &&
      "records" in parsed &&
      Array.isArray(parsed.records)
      ? parsed.records.length
      : 0
  }
  return Effect.map(pipeline.queue.messages, (messages) => {
    let total = 0
    for (const message of messages) {
      let n = recordsIn.get(message.messageId)
      if (n === undefined) {
        n = count(message.body)
        recordsIn.set(message.messageId, n)
      }
      total += n
    }
    return total
  })
}

/** Nearest-rank percentile of ascending `sorted` samples. */
const percentile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

const round1 = (n: number): number => Math.round(n * 10) / 10

const simulate = (scenario: Scenario, options: RunOptions): Effect.Effect<Report, SimulationError> =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* TestClock.setTime(startTime)
      const probe = Probe.make(bulkLatency)
      const pipeline = yield* MemoryPipeline.make({
        stream: { shardCount: scenario.shardCount },
        index: { bulkLatency },
        extraSinks: [probe.sink],
        backup: backupConfig
      }).pipe(Effect.mapError(refused(scenario.name)))

      const ledger: Ledger = {
        made: [],
        accepted: new Set(),
        rejected: new Set(),
        sent: new PerSecond(),
        acceptedPerSecond: new PerSecond(),
        rejectedPerSecond: new PerSecond(),
        parked: 0,
        duplicatesSent: 0,
        clientResends: 0,
        invalidAccepted: 0,
        validRejected: 0,
        rejectedWithoutReason: 0
      }
      const depth = new PerSecond()
      const fallbackDepth = fallbackDepthGauge(pipeline)
      const trafficMillis = plannedTrafficMillis(scenario, options.records - 1)
      const deadline = startTime + trafficMillis + settleLimitMillis

      /** One simulated second, then a look at the fallback queue. */
      const tick = Effect.gen(function* () {
        yield* TestClock.adjust(Duration.seconds(1))
        const now = yield* Clock.currentTimeMillis
        depth.set(secondOf(now) - 1, yield* fallbackDepth)
        if (now > deadline) {
          return yield* new SimulationError({
            scenario: scenario.name,
            reason: "DidNotSettle",
            message: `the pipeline still had work ${Duration.format(Duration.millis(now - startTime))} into the run`
          })
        }
      })

      /**
       * Runs an operator's step (replay, last delivery, restore) while the clock ticks, since its
       * retries sleep on it; a failure becomes a `PipelineRefused` naming `what`.
       */
      const whileTicking = <A, E extends { readonly message: string }>(
        what: string,
        step: Effect.Effect<A, E>
      ) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(step)
          while (fiber.pollUnsafe() === undefined) yield* tick
          return yield* Fiber.join(fiber).pipe(
            Effect.mapError(
              (error) =>
                new SimulationError({
                  scenario: scenario.name,
                  reason: "PipelineRefused",
                  message: `${what}: ${error.message}`
                })
            )
          )
        })

      /** Ticks until the fibers are done and the pipeline is idle for two ticks in a row. */
      const settle = (fibers: ReadonlyArray<Fiber.Fiber<void, SimulationError>>) =>
        Effect.gen(function* () {
          let idleInARow = 0
          while (idleInARow < 2) {
            yield* tick
            const done = fibers.every((fiber) => fiber.pollUnsafe() !== undefined)
            idleInARow = done && (yield* pipeline.isIdle) ? idleInARow + 1 : 0
          }
          yield* Effect.forEach(fibers, Fiber.join, { discard: true })
        })

      // Warm-up: one well-formed record, alone, fixes the index mapping of payload.value as a number.
      const warmUp = yield* makeRecord(0, "valid")
      ledger.made.push(warmUp)
      yield* send(pipeline, ledger, scenario.name, [warmUp])
      yield* settle([])

      const trafficStart = yield* Clock.currentTimeMillis
      const producer = yield* Effect.forkChild(produce(pipeline, ledger, scenario, options.records))
      const faults = yield* Effect.forkChild(injectFaults(pipeline, scenario, trafficMillis))
      const snapshots = yield* Effect.forkChild(takeSnapshots(pipeline, scenario, trafficMillis))
      yield* settle([producer, faults, snapshots])
      yield* clearAllFaults(pipeline)

      // The operator's last step: the replay tool, once, over every batch the processor gave up on.
      const replay = yield* whileTicking("the replay", pipeline.replayFailures)

      // Firehose delivers its last buffer when the interval elapses; the run ends by delivering it.
      const backup = pipeline.backup
      if (backup === undefined)
        return yield* Effect.die(new Error("the simulated pipeline runs with its backup"))
      yield* whileTicking("the backup could not deliver its last buffer", backup.flush)

      // The pipeline's own writes per id, before a restore writes documents again.
      const writesOf = new Map<string, number>()
      for (const id of ledger.accepted) writesOf.set(id, yield* pipeline.index.writes(id))

      // Disaster recovery, when the scenario lost the index: the last snapshot before the loss,
      // then everything since from the backup archive. The probe stops timing: these writes are
      // the operator's, not the pipeline's delivery.
      let recovery: Report["recovery"] | undefined
      if (scenario.recovery !== undefined) {
        probe.freeze()
        const lostAt = trafficStart + Math.round(scenario.recovery.indexLostAt * trafficMillis)
        const held = new Set((yield* pipeline.index.documents).map((d) => d.id))
        const missingBeforeRestore = [...ledger.accepted].filter((id) => !held.has(id)).length
        const chosen = (yield* pipeline.index.snapshots).filter((s) => s.takenAt < lostAt).at(-1)
        // OpenSearch restores only into a deleted index: the one the pipeline recreated goes first.
        yield* pipeline.index.deleteIndex
        if (chosen !== undefined) yield* Effect.orDie(pipeline.index.restoreSnapshot(chosen.name))
        // Records indexed after the snapshot can have arrived a little before it.
        const from = (chosen?.takenAt ?? startTime) - restoreLookbackMillis
        const restored = yield* whileTicking(
          "the restore could not read the backup archive",
          pipeline.restoreFromArchive({ from, to: yield* Clock.currentTimeMillis })
        )
        recovery = {
          snapshot: chosen?.name ?? "none",
          snapshotDocuments: chosen?.documents ?? 0,
          snapshotsTaken: (yield* pipeline.index.snapshots).length,
          missingBeforeRestore,
          archiveObjects: restored.objects,
          archiveRecords: restored.read,
          rewritten: restored.written,
          failed: restored.failed.length,
          unreadableObjects: restored.unreadable.length
        }
      }
      const end = yield* Clock.currentTimeMillis
      const seconds = secondOf(end)

      // What the index holds, timed by the probe.
      const indexed = new Set<string>()
      const delays: Array<number> = []
      const indexedPerSecond = new PerSecond()
      const delaysPerSecond: Array<Array<number>> = []
      let unexpectedDocuments = 0
      let unexplainedDelays = 0
      let writtenMoreThanOnce = 0
      for (const document of yield* pipeline.index.documents) {
        if (!ledger.accepted.has(document.id)) unexpectedDocuments++
        indexed.add(document.id)
        if ((writesOf.get(document.id) ?? 0) > 1) writtenMoreThanOnce++
        const attempts = probe.attempts(document.id)
        const receivedAt = Date.parse(String(document.source.receivedAt))
        if (attempts === undefined || Number.isNaN(receivedAt) || attempts.lastEndedAt < receivedAt) {
          unexplainedDelays++
          continue
        }
        const delay = attempts.lastEndedAt - receivedAt
        const second = secondOf(attempts.lastEndedAt)
        delays.push(delay)
        indexedPerSecond.add(second)
        while (delaysPerSecond.length <= second) delaysPerSecond.push([])
        delaysPerSecond[second]!.push(delay)
      }

      // Poison records: not indexed, read back from an on-failure range, and refused again for their
      // content, with the reason. A record that failed the replay for a transient reason (the index
      // was down) is not settled: it counts as lost until a replay writes it.
      const reportedFailing = new Set(
        replay.failed.flatMap((f) =>
          f.recordId !== undefined && !f.retryable && f.reason.length > 0 ? [f.recordId] : []
        )
      )
      const onFailure = [...ledger.accepted].filter((id) => !indexed.has(id) && reportedFailing.has(id))
      // A record the pipeline never wrote is lost even if a restore from the backup wrote it since:
      // the restore must not hide a loss on the live path.
      const lost = [...ledger.accepted].filter(
        (id) => (!indexed.has(id) || (writesOf.get(id) ?? 0) === 0) && !reportedFailing.has(id)
      )

      // Copies in the stream of records written exactly once were skipped by the processor.
      const copies = new Map<string, number>()
      for (const record of yield* pipeline.stream.records) {
        copies.set(record.partitionKey, (copies.get(record.partitionKey) ?? 0) + 1)
      }
      let duplicatesSkipped = 0
      for (const id of indexed) {
        if (writesOf.get(id) === 1) duplicatesSkipped += (copies.get(id) ?? 1) - 1
      }

      // The backup, read back as a restore would: every accepted record must be in the archive.
      const archive = yield* Archive.readEnvelopes({ from: startTime, to: end }).pipe(
        Effect.provideService(Archive.Archive, pipeline.archive),
        Effect.catch((error) =>
          Effect.die(
            new Error(`the in-memory archive refused a read after its faults ended: ${error.message}`)
          )
        )
      )
      const backedUp = new Set<string>(archive.envelopes.map((e) => e.record.id))
      const missingFromBackup = [...ledger.accepted].filter((id) => !backedUp.has(id))
      const backupCounters = yield* backup.counters

      const processor = yield* pipeline.processor.counters
      const redriver = yield* pipeline.redriver.stats
      const queue = yield* pipeline.queue.stats
      const stream = yield* pipeline.stream.stats
      const index = yield* pipeline.index.stats
      const retriesBy = {
        sinkWrites: probe.repeatedAttempts(),
        processorBatches: processor.retries,
        redriverMessages: Math.max(0, redriver.delivered - queue.sent),
        // Every entry PutRecords refused (collector or redriver) is parked and put again later.
        streamEntries: stream.throttledEntries + stream.injectedEntryFailures,
        // Whole calls refused during an outage: puts are parked, polls and redrives tried again.
        streamCalls: stream.rejectedCalls
      }
      const sorted = [...delays].sort((a, b) => a - b)
      const timelineLength = Math.max(seconds, indexedPerSecond.values.length, ledger.sent.values.length)

      return {
        scenario: scenario.name,
        summary: scenario.summary,
        seed: options.seed,
        records: {
          sent: ledger.made.length,
          accepted: ledger.accepted.size,
          rejected: ledger.rejected.size,
          indexed: indexed.size,
          duplicatesSkipped,
          onFailure: onFailure.length,
          lost: lost.length
        },
        retries: Object.values(retriesBy).reduce((a, b) => a + b, 0),
        retriesBy,
        delayMs: {
          avg: round1(sorted.length === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / sorted.length),
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          max: sorted.at(-1) ?? 0
        },
        simulatedSeconds: seconds,
        trafficSeconds: round1(trafficMillis / 1000),
        fallbackParked: ledger.parked,
        fallbackMaxDepth: Math.max(0, ...depth.values),
        duplicatesSent: ledger.duplicatesSent,
        clientResends: ledger.clientResends,
        faults: {
          injected: scenario.faults.map((f) =>
            f.from === f.to
              ? `${f.name} (at ${Math.round(f.from * 100)}% of traffic)`
              : `${f.name} (${Math.round(f.from * 100)}–${Math.round(f.to * 100)}% of traffic)`
          ),
          streamThrottledEntries: stream.throttledEntries,
          streamInjectedEntryFailures: stream.injectedEntryFailures,
          streamRejectedCalls: stream.rejectedCalls,
          indexRejections: index.rejections,
          indexParseErrors: index.parseErrors,
          processorBatchesDiscarded: processor.batchesDiscarded
        },
        ...(recovery === undefined ? {} : { recovery }),
        backup: {
          archived: ledger.accepted.size - missingFromBackup.length,
          objects: archive.objects,
          deliveryErrors: backupCounters.deliveryErrors
        },
        replay: {
          read: replay.read,
          written: replay.written,
          skipped: replay.skipped,
          failed: replay.failed.length,
          unreadableRanges: replay.unreadable.length
        },
        integrity: {
          writtenMoreThanOnce,
          invalidAccepted: ledger.invalidAccepted,
          validRejected: ledger.validRejected,
          rejectedWithoutReason: ledger.rejectedWithoutReason,
          unexpectedDocuments,
          unexplainedDelays,
          deadLettered: (yield* pipeline.deadLetterQueue.stats).total,
          missingFromBackup: missingFromBackup.length,
          lostIds: lost.slice(0, 20)
        },
        timeline: Array.from({ length: timelineLength }, (_, second) => {
          const inSecond = [...(delaysPerSecond[second] ?? [])].sort((a, b) => a - b)
          return {
            second,
            sent: ledger.sent.at(second),
            accepted: ledger.acceptedPerSecond.at(second),
            rejected: ledger.rejectedPerSecond.at(second),
            indexed: indexedPerSecond.at(second),
            delayAvgMs: round1(
              inSecond.length === 0 ? 0 : inSecond.reduce((a, b) => a + b, 0) / inSecond.length
            ),
            delayP99Ms: percentile(inSecond, 0.99),
            fallbackDepth: depth.at(second)
          }
        })
      } satisfies Report
    })
  )

const validate = (name: string, options: RunOptions): Effect.Effect<Scenario, SimulationError> => {
  const invalid = (message: string) =>
    Effect.fail(new SimulationError({ scenario: name, reason: "InvalidOptions", message }))
  if (!isScenarioName(name))
    return invalid(`unknown scenario ${JSON.stringify(name)}; known: ${scenarioNames.join(", ")}`)
  if (!Number.isSafeInteger(options.seed)) return invalid(`seed must be an integer, got ${options.seed}`)
  if (!Number.isInteger(options.records) || options.records < 1 || options.records > maxRecords) {
    return invalid(
      `records must be an integer in 1–${maxRecords.toLocaleString("en-US")}, got ${options.records}`
    )
  }
  return Effect.succeed(scenarios[name])
}

/**
 * Runs `name` with `options.records` records on a fresh in-memory pipeline, its own `TestClock` and
 * a `Random` seeded with `options.seed`. Needs nothing from the caller's environment: the CLI runs
 * it on the live runtime, tests inside `it.effect`.
 */
export const runScenario = Effect.fn("Simulation.runScenario")(function* (
  name: ScenarioName | (string & {}),
  options: RunOptions,
  provideTime: TimeProvider = VirtualTime.provide
): Effect.fn.Return<Report, SimulationError> {
  const scenario = yield* validate(name, options)
  return yield* simulate(scenario, options).pipe(
    Random.withSeed(options.seed),
    // TestClock warns through the logger when real time passes between adjustments; that says
    // nothing about the simulated pipeline and must not reach a `--json` stdout.
    Effect.provideService(References.MinimumLogLevel, "Error"),
    provideTime
  )
})

/**
 * Where a run's virtual time comes from: `VirtualTime.provide` (the default), or
 * `Effect.provide(TestClock.layer())` — Effect's stock `TestClock` — to check that both give the
 * same report.
 */
export type TimeProvider = <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
