/**
 * The scenarios the simulator knows (`spillway simulate --scenario`): a traffic shape and the
 * faults injected into the in-memory backends, each named after the production incident it
 * rehearses.
 *
 * A scenario is data. Traffic is described by phases that share out the run's records (so
 * `--records` scales a scenario without changing its shape), and fault windows are fractions of
 * the planned traffic time. Every scenario runs on a one-shard stream, provisioned as a team
 * would for its normal traffic: 1,000 records/s of write capacity (docs/aws-behaviour.md §1.6) for 300
 * records/s, so normal traffic never meets the limit and a 10× spike always does.
 */
import type { MemoryPipeline } from "@spillway/memory"
import { Effect } from "effect"

export const scenarioNames = [
  "steady",
  "kinesis-throttling",
  "kinesis-outage",
  "poison-records",
  "opensearch-rejections",
  "black-friday",
  "backup-outage",
  "index-lost"
] as const
export type ScenarioName = (typeof scenarioNames)[number]

export const isScenarioName = (name: string): name is ScenarioName =>
  (scenarioNames as ReadonlyArray<string>).includes(name)

export interface Phase {
  /** Fraction of the run's records sent in this phase; the shares of a scenario add up to 1. */
  readonly share: number
  readonly recordsPerSecond: number
}

export interface Fault {
  /** What is injected, for the report. */
  readonly name: string
  /** When the fault starts and stops, as fractions (0–1) of the planned traffic time. */
  readonly from: number
  readonly to: number
  /** Starts the fault; `until` is the epoch millisecond at which it is planned to stop. */
  readonly start: (pipeline: MemoryPipeline.Pipeline, until: number) => Effect.Effect<void>
  readonly stop: (pipeline: MemoryPipeline.Pipeline) => Effect.Effect<void>
}

/**
 * A scenario that loses the index and recovers it as an operator would (docs/aws-behaviour.md §6.7): the
 * service snapshots the index at `snapshotsAt` (its hourly automated snapshots, scaled down like
 * the run); the index is deleted at `indexLostAt`; after the traffic the operator restores the
 * last snapshot taken before the loss and writes everything since again from the backup archive.
 * Times are fractions of the planned traffic time.
 */
export interface Recovery {
  readonly snapshotsAt: ReadonlyArray<number>
  readonly indexLostAt: number
}

export interface Scenario {
  readonly name: ScenarioName
  /** One line for people: what happens and what the pipeline is expected to do about it. */
  readonly summary: string
  readonly shardCount: number
  readonly phases: ReadonlyArray<Phase>
  /** Fraction of records whose `payload.value` is a string where the index maps a number. */
  readonly poisonRate: number
  readonly faults: ReadonlyArray<Fault>
  readonly recovery?: Recovery
}

/** Records per second of normal traffic: 3 requests of 100 records, 30% of the stream's capacity. */
export const baseRate = 300

const steadyTraffic: ReadonlyArray<Phase> = [{ share: 1, recordsPerSecond: baseRate }]

/**
 * Per-entry `ProvisionedThroughputExceededException` on half the entries: what a producer sees
 * when a hot partition key or a neighbour takes the shard's budget. PutRecords answers per entry,
 * so the collector must park exactly the refused entries.
 */
const throttlingBurst = (from: number, to: number): Fault => ({
  name: "stream throttles 50% of entries",
  from,
  to,
  start: (pipeline) => pipeline.stream.failRandomEntries(0.5, "ProvisionedThroughputExceededException"),
  stop: (pipeline) => pipeline.stream.injectEntryFailures(undefined)
})

/** Every item answered 429 (es_rejected_execution_exception): the write thread pool queue is full. */
const rejectionBurst = (from: number, to: number): Fault => ({
  name: "index answers 429 to every item",
  from,
  to,
  start: (pipeline, until) => pipeline.index.rejectUntil(until),
  stop: (pipeline) => pipeline.index.rejectUntil(Number.NEGATIVE_INFINITY)
})

export const scenarios: { readonly [K in ScenarioName]: Scenario & { readonly name: K } } = {
  steady: {
    name: "steady",
    summary: "Normal traffic, no faults: the baseline for delay and cost.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: []
  },
  "kinesis-throttling": {
    name: "kinesis-throttling",
    summary:
      "Three bursts in which Kinesis throttles half of the PutRecords entries: the collector parks them in the fallback queue and the redriver puts them back.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: [throttlingBurst(0.1, 0.25), throttlingBurst(0.4, 0.55), throttlingBurst(0.7, 0.85)]
  },
  "kinesis-outage": {
    name: "kinesis-outage",
    summary:
      "The stream is unavailable for 35% of the traffic time: everything is parked, the processor cannot read, and the backlog drains when the stream is back.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: [
      {
        name: "stream unavailable (every call 5xx)",
        from: 0.25,
        to: 0.6,
        start: (pipeline, until) => pipeline.stream.startOutage({ until }),
        stop: (pipeline) => pipeline.stream.clearFaults
      }
    ]
  },
  "poison-records": {
    name: "poison-records",
    summary:
      "0.5% of records carry a string where the index maps a number: the processor isolates them, the shard moves on, and they reach the on-failure destination and the replay report.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0.005,
    faults: []
  },
  "opensearch-rejections": {
    name: "opensearch-rejections",
    summary:
      "OpenSearch refuses 15% of items with 429 throughout, and every item during two bursts: writes are retried with backoff until every record is indexed.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: [
      {
        name: "index answers 429 to 15% of items",
        from: 0,
        to: 1,
        start: (pipeline) => pipeline.index.setRejectionRate(0.15),
        stop: (pipeline) => pipeline.index.setRejectionRate(0)
      },
      rejectionBurst(0.2, 0.3),
      rejectionBurst(0.6, 0.7)
    ]
  },
  "black-friday": {
    name: "black-friday",
    summary:
      "A 10× traffic spike carries 70% of the records: past 1,000 records/s per shard, Kinesis throttles entries, the collector parks them and the redriver brings them back once the spike passes.",
    shardCount: 1,
    phases: [
      { share: 0.15, recordsPerSecond: baseRate },
      { share: 0.7, recordsPerSecond: baseRate * 10 },
      { share: 0.15, recordsPerSecond: baseRate }
    ],
    poisonRate: 0,
    faults: []
  },
  "backup-outage": {
    name: "backup-outage",
    summary:
      "S3 refuses every write for 40% of the traffic time: Firehose retries its deliveries while the index is unaffected, and the archive ends with every record.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: [
      {
        name: "backup archive unavailable (every S3 call 503)",
        from: 0.2,
        to: 0.6,
        start: (pipeline, until) => pipeline.archive.startOutage({ until }),
        stop: (pipeline) => pipeline.archive.endOutage
      }
    ]
  },
  "index-lost": {
    name: "index-lost",
    summary:
      "The index is deleted at 60% of the traffic (every document and the mapping): the processor carries on into a new index; afterwards the operator restores the last snapshot taken before the loss and writes everything since again from the backup archive.",
    shardCount: 1,
    phases: steadyTraffic,
    poisonRate: 0,
    faults: [
      {
        name: "index deleted",
        from: 0.6,
        to: 0.6,
        start: (pipeline) => pipeline.index.deleteIndex,
        stop: () => Effect.void
      }
    ],
    // A snapshot after the loss too, as the automated ones go on: the operator must not pick it.
    recovery: { snapshotsAt: [0.2, 0.4, 0.8], indexLostAt: 0.6 }
  }
}

/** Planned traffic time in milliseconds: how long the phases take at their rates. */
export const plannedTrafficMillis = (scenario: Scenario, records: number): number =>
  scenario.phases.reduce((sum, phase) => sum + ((phase.share * records) / phase.recordsPerSecond) * 1000, 0)

/** Ends every fault a scenario can inject, whatever its window. */
export const clearAllFaults = (pipeline: MemoryPipeline.Pipeline): Effect.Effect<void> =>
  Effect.all(
    [
      pipeline.stream.clearFaults,
      pipeline.index.setRejectionRate(0),
      pipeline.index.rejectUntil(Number.NEGATIVE_INFINITY),
      pipeline.index.rejectNext(0),
      pipeline.index.endOutage,
      pipeline.queue.endOutage,
      pipeline.archive.endOutage
    ],
    { discard: true }
  )
