/**
 * The simulation of a scenario: runs it through the whole in-memory pipeline (collector → stream /
 * fallback queue → redriver → processor → index, on-failure destination and replay, and the
 * Firehose backup into the hourly archive) on virtual time, and reports what became of every
 * record.
 *
 * A run goes in four steps, one function each below: the warm-up and the traffic with its faults
 * (`rehearse`); the operator's last steps (`operate`: the replay of what the processor gave up on,
 * the backup's last delivery); the disaster recovery when the scenario lost the index; and the
 * reading of the backends into a `Report` (`measure`).
 *
 * Guarantees:
 * - no real waiting: time is Effect's `TestClock`, moved one second at a time by the run harness
 *   (`internal/harness.ts`), so minutes of pipeline time take seconds of CPU;
 * - reproducible: the clock starts at a fixed instant and every random draw (traffic, record mix,
 *   faults, sequence numbers, jitter) comes from one `Random` seeded with `seed`, so the same
 *   scenario, seed and record count give the same report, byte for byte
 *   (`test/pinned.test.ts` holds it to reports written before the simulator became a package);
 * - self-contained figures: everything is counted from what this run's backends hold and from a
 *   probe sink, never from the process-global Effect metrics, so runs in one process do not mix;
 * - honest loss accounting: `lost` is counted, not assumed (see `internal/measure.ts`), and
 *   `integrity.missingFromBackup` counts accepted ids the archive, read back after Firehose's
 *   last delivery, does not hold.
 *
 * Before the traffic, one well-formed record is sent alone and indexed, so the index maps
 * `payload.value` as a number, as it would in a live index: that is what makes a string there a
 * poison record.
 */
import type { Replay } from "@spillway/core"
import { type FirehoseDelivery, MemoryPipeline, type MemoryStream } from "@spillway/memory"
import { Clock, Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { refused, SimulationError } from "./internal/error.js"
import { describeFaults, injectFaults, takeSnapshots } from "./internal/faults.js"
import {
  type ClockDriver,
  isolate,
  makeClockDriver,
  secondOf,
  startTime,
  type TimeProvider
} from "./internal/harness.js"
import * as Measure from "./internal/measure.js"
import * as Probe from "./internal/probe.js"
import { recover } from "./internal/recovery.js"
import { ascending, PerSecond, round1, summarize } from "./internal/stats.js"
import { emptyLedger, type Ledger, makeRecord, produce, send } from "./internal/traffic.js"
import type { Report } from "./Report.js"
import {
  clearAllFaults,
  isScenarioName,
  plannedTrafficMillis,
  type Scenario,
  type ScenarioName,
  scenarioNames,
  scenarios
} from "./Scenario.js"

export { SimulationError, startTime, type TimeProvider }

/**
 * The stream a run writes to, instead of the scenario's provisioned shards: another shard count
 * (`spillway simulate --shards N`), or on-demand capacity (`MemoryStream.CapacityMode`) whose last
 * 30 days were the scenario's normal traffic, read through the 4 shards of its initial capacity.
 */
export type StreamCapacity =
  | { readonly mode: "provisioned"; readonly shards: number }
  | { readonly mode: "onDemand" }

export interface RunOptions {
  readonly seed: number
  /** Records the producer makes, the warm-up record included. 1–1,000,000. */
  readonly records: number
  /** @default the scenario's provisioned shard count */
  readonly stream?: StreamCapacity
}

export const maxRecords = 1_000_000
/** Shards a run's stream may have (`--shards`): a bound on a run's cost, each shard having its own readers. */
export const maxShards = 1000
/** On-demand streams in a run are read through as many shards as their initial 4 MB/s take. */
const onDemandShards = 4
/** `_bulk` round trip of a small OpenSearch domain. */
const bulkLatency = Duration.millis(25)
/** How long the pipeline may take to drain after the traffic before the run is declared stuck. */
const settleLimitMillis = 2 * 3_600_000

/**
 * Firehose's buffering, scaled down like the runs (a run's traffic lasts seconds to minutes, not
 * hours): 2 s, so even a short run sees several deliveries, and a backup outage meets some.
 */
const backupConfig = { ...MemoryPipeline.defaultBackupConfig, bufferingIntervalSeconds: 2 }

/** The memory stream for a run: the scenario's shards, or the run's own capacity. */
const streamOptions = (scenario: Scenario, stream: StreamCapacity | undefined): MemoryStream.Options => {
  if (stream === undefined) return { shardCount: scenario.shardCount }
  if (stream.mode === "provisioned") return { shardCount: stream.shards }
  // The last 30 days were normal traffic: the slowest phase, at the top of the clients' ±20% jitter.
  const normalPeak = 1.2 * Math.min(...scenario.phases.map((phase) => phase.recordsPerSecond))
  return {
    shardCount: onDemandShards,
    capacity: { mode: "onDemand", previousPeakRecordsPerSecond: normalPeak }
  }
}

/** What one run works with: its pipeline, its probe, its ledger and its clock. */
interface Run {
  readonly scenario: Scenario
  readonly options: RunOptions
  readonly pipeline: MemoryPipeline.Pipeline
  readonly probe: Probe.Probe
  readonly ledger: Ledger
  readonly driver: ClockDriver
  /** Records in the fallback queue at the end of each simulated second. */
  readonly depth: PerSecond
  readonly trafficMillis: number
}

const start = (scenario: Scenario, options: RunOptions) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(startTime)
    const probe = Probe.make(bulkLatency)
    const pipeline = yield* MemoryPipeline.make({
      stream: streamOptions(scenario, options.stream),
      index: { bulkLatency },
      extraSinks: [probe.sink],
      backup: backupConfig
    }).pipe(Effect.mapError(refused(scenario.name)))
    const depth = new PerSecond()
    const fallbackDepth = Measure.fallbackDepthGauge(pipeline)
    const trafficMillis = plannedTrafficMillis(scenario, options.records - 1)
    const driver = makeClockDriver({
      scenario: scenario.name,
      deadline: startTime + trafficMillis + settleLimitMillis,
      stuckMessage: (now) =>
        `the pipeline still had work ${Duration.format(Duration.millis(now - startTime))} into the run`,
      isIdle: pipeline.isIdle,
      afterSecond: (now) => Effect.map(fallbackDepth, (n) => depth.set(secondOf(now) - 1, n))
    })
    return {
      scenario,
      options,
      pipeline,
      probe,
      ledger: emptyLedger(),
      driver,
      depth,
      trafficMillis
    } satisfies Run
  })

/** The warm-up record, then the traffic with its faults and snapshots, until the pipeline settles. */
const rehearse = (run: Run) =>
  Effect.gen(function* () {
    const { pipeline, ledger, scenario, driver, trafficMillis } = run
    // Warm-up: one well-formed record, alone, fixes the index mapping of payload.value as a number.
    const warmUp = yield* makeRecord(0, "valid")
    ledger.made.push(warmUp)
    yield* send(pipeline, ledger, scenario.name, [warmUp])
    yield* driver.settle([])

    const trafficStart = yield* Clock.currentTimeMillis
    const producer = yield* Effect.forkChild(produce(pipeline, ledger, scenario, run.options.records))
    const faults = yield* Effect.forkChild(injectFaults(pipeline, scenario, trafficMillis))
    const snapshots = yield* Effect.forkChild(takeSnapshots(pipeline, scenario, trafficMillis))
    yield* driver.settle([producer, faults, snapshots])
    yield* clearAllFaults(pipeline)
    return trafficStart
  })

/** The operator's last steps: the replay tool, once, over every batch the processor gave up on; the last delivery. */
const operate = (run: Run) =>
  Effect.gen(function* () {
    const replay = yield* run.driver.whileTicking("the replay", run.pipeline.replayFailures)
    // Firehose delivers its last buffer when the interval elapses; the run ends by delivering it.
    const backup = run.pipeline.backup
    if (backup === undefined)
      return yield* Effect.die(new Error("the simulated pipeline runs with its backup"))
    yield* run.driver.whileTicking("the backup could not deliver its last buffer", backup.flush)
    return { replay, backup } satisfies Operated
  })

interface Operated {
  readonly replay: Replay.ReplayResult
  readonly backup: FirehoseDelivery.Delivery
}

/** The backends of a finished run, read into its report. */
const measure = (
  run: Run,
  { replay, backup: delivery }: Operated,
  writesOf: ReadonlyMap<string, number>,
  recovery: Report["recovery"] | undefined
) =>
  Effect.gen(function* () {
    const { pipeline, ledger, scenario } = run
    const end = yield* Clock.currentTimeMillis
    const seconds = secondOf(end)
    const indexed = yield* Measure.readIndex(pipeline, ledger, run.probe, writesOf)
    const { onFailure, lost } = Measure.settleAccounts(ledger.accepted, indexed.ids, writesOf, replay)
    const duplicatesSkipped = yield* Measure.duplicatesSkipped(pipeline, indexed.ids, writesOf)
    const backup = yield* Measure.readBackup(pipeline, ledger.accepted, end)
    const backupCounters = yield* delivery.counters
    const retriesBy = yield* Measure.retries(pipeline, run.probe)
    const faults = yield* Measure.faultCounts(pipeline)
    const timelineLength = Math.max(seconds, indexed.perSecond.values.length, ledger.sent.values.length)
    const stream = run.options.stream
    return {
      scenario: scenario.name,
      summary: scenario.summary,
      seed: run.options.seed,
      ...(stream === undefined
        ? {}
        : {
            stream: {
              mode: stream.mode,
              shards: stream.mode === "provisioned" ? stream.shards : onDemandShards
            }
          }),
      records: {
        sent: ledger.made.length,
        accepted: ledger.accepted.size,
        rejected: ledger.rejected.size,
        indexed: indexed.ids.size,
        duplicatesSkipped,
        onFailure: onFailure.length,
        lost: lost.length
      },
      retries: Object.values(retriesBy).reduce((a, b) => a + b, 0),
      retriesBy,
      delayMs: summarize(ascending(indexed.delays)),
      simulatedSeconds: seconds,
      trafficSeconds: round1(run.trafficMillis / 1000),
      fallbackParked: ledger.parked,
      fallbackMaxDepth: Math.max(0, ...run.depth.values),
      duplicatesSent: ledger.duplicatesSent,
      clientResends: ledger.clientResends,
      faults: { injected: describeFaults(scenario), ...faults },
      ...(recovery === undefined ? {} : { recovery }),
      backup: {
        archived: ledger.accepted.size - backup.missing.length,
        objects: backup.objects,
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
        writtenMoreThanOnce: indexed.writtenMoreThanOnce,
        invalidAccepted: ledger.invalidAccepted,
        validRejected: ledger.validRejected,
        rejectedWithoutReason: ledger.rejectedWithoutReason,
        unexpectedDocuments: indexed.unexpectedDocuments,
        unexplainedDelays: indexed.unexplainedDelays,
        deadLettered: (yield* pipeline.deadLetterQueue.stats).total,
        missingFromBackup: backup.missing.length,
        lostIds: lost.slice(0, 20)
      },
      timeline: Measure.timeline(timelineLength, ledger, indexed, run.depth)
    } satisfies Report
  })

const simulate = (scenario: Scenario, options: RunOptions): Effect.Effect<Report, SimulationError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const run = yield* start(scenario, options)
      const trafficStart = yield* rehearse(run)
      const operated = yield* operate(run)
      const writesOf = yield* Measure.pipelineWrites(run.pipeline, run.ledger.accepted)
      // Disaster recovery, when the scenario lost the index. The probe stops timing: these writes
      // are the operator's, not the pipeline's delivery.
      let recovery: Report["recovery"] | undefined
      if (scenario.recovery !== undefined) {
        run.probe.freeze()
        recovery = yield* recover(run.pipeline, run.driver, {
          recovery: scenario.recovery,
          trafficStart,
          trafficMillis: run.trafficMillis,
          accepted: run.ledger.accepted
        })
      }
      return yield* measure(run, operated, writesOf, recovery)
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
  const stream = options.stream
  if (stream !== undefined && stream.mode !== "provisioned" && stream.mode !== "onDemand") {
    return invalid(
      `stream mode must be provisioned or onDemand, got ${String((stream as { mode: unknown }).mode)}`
    )
  }
  if (
    stream?.mode === "provisioned" &&
    (!Number.isInteger(stream.shards) || stream.shards < 1 || stream.shards > maxShards)
  ) {
    return invalid(
      `shards must be an integer in 1–${maxShards.toLocaleString("en-US")}, got ${stream.shards}`
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
  provideTime?: TimeProvider
): Effect.fn.Return<Report, SimulationError> {
  const scenario = yield* validate(name, options)
  return yield* isolate(options.seed, simulate(scenario, options), provideTime)
})
