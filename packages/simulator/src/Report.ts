/**
 * What a simulation run reports, as a `Schema`, so that the `--json` output, the table, the HTML
 * report and the tests agree on one shape. The renderings are the CLI's; this is the data.
 *
 * Every figure is counted per run from what the backends hold (the index, the stream, the queues,
 * the probe sink), never from the process-global Effect metrics.
 */
import { Schema } from "effect"
import { scenarioNames } from "./Scenario.js"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Millis = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))

/** Distinct records, by id. `accepted = indexed + onFailure + lost`, and `sent = accepted + rejected`. */
export const RecordFigures = Schema.Struct({
  /** Records the producer made (the warm-up record included; client re-sends and duplicates not). */
  sent: Count,
  /** Valid records the collector took (into the stream or the fallback queue). */
  accepted: Count,
  /** Records the collector refused at validation, each with its reason. */
  rejected: Count,
  /** Accepted records the index holds at the end. */
  indexed: Count,
  /** Extra copies of indexed records in the stream (client duplicates, redrives) the processor did not write again. */
  duplicatesSkipped: Count,
  /** Accepted records not indexed that reached the on-failure destination and that the replay reports refused for their content (poison), with the reason. */
  onFailure: Count,
  /** Accepted records neither indexed nor reported: data loss. */
  lost: Count
})

export const DelayFigures = Schema.Struct({
  /** Milliseconds from the collector's `receivedAt` to the confirmed index write, over indexed records. */
  avg: Millis,
  p50: Millis,
  p99: Millis,
  max: Millis
})

/** One simulated second: what came in, what was indexed, and how deep the fallback queue was at its end. */
export const TimelineEntry = Schema.Struct({
  second: Count,
  /** Record items in requests (re-sends and duplicates included). */
  sent: Count,
  /** Records accepted for the first time. */
  accepted: Count,
  rejected: Count,
  /** Records whose index write was confirmed in this second. */
  indexed: Count,
  delayAvgMs: Millis,
  delayP99Ms: Millis,
  /** Records held by the fallback queue (visible or in flight) at the end of the second. */
  fallbackDepth: Count
})

export const Report = Schema.Struct({
  scenario: Schema.Literals(scenarioNames),
  summary: Schema.String,
  seed: Schema.Int,
  /**
   * Present when the run was given a stream other than the scenario's (`--shards`, on-demand):
   * its capacity mode and the shards it was read through.
   */
  stream: Schema.optional(
    Schema.Struct({
      mode: Schema.Literals(["provisioned", "onDemand"]),
      shards: Count
    })
  ),
  records: RecordFigures,
  /** Every retry, summed: `retriesBy` tells which. */
  retries: Count,
  retriesBy: Schema.Struct({
    /** Documents sent to the index again (after a 429, an outage, or a retried batch). */
    sinkWrites: Count,
    /** Kinesis batches the event source mapping delivered again. */
    processorBatches: Count,
    /** Fallback messages the redriver received again after a failure. */
    redriverMessages: Count,
    /** PutRecords entries refused one by one (throttled or failed), parked and put again. */
    streamEntries: Count,
    /** Stream calls refused whole (outage): puts parked, reads and redrives tried again. */
    streamCalls: Count
  }),
  delayMs: DelayFigures,
  /** Simulated time from the first record to the end of the replay. */
  simulatedSeconds: Count,
  /** Planned time of the traffic phases. */
  trafficSeconds: Millis,
  /** Records the collector parked in the fallback queue. */
  fallbackParked: Count,
  fallbackMaxDepth: Count,
  /** Copies of already accepted records the producer sent again. */
  duplicatesSent: Count,
  /** Records the collector answered `unavailable`, which the producer sent again. */
  clientResends: Count,
  faults: Schema.Struct({
    injected: Schema.Array(Schema.String),
    streamThrottledEntries: Count,
    streamInjectedEntryFailures: Count,
    streamRejectedCalls: Count,
    indexRejections: Count,
    indexParseErrors: Count,
    processorBatchesDiscarded: Count
  }),
  /** Present when the scenario lost the index: what the operator's restore found and did. */
  recovery: Schema.optional(
    Schema.Struct({
      /** The snapshot restored: the last one taken before the loss ("none" if there was none). */
      snapshot: Schema.String,
      snapshotDocuments: Count,
      snapshotsTaken: Count,
      /** Accepted records the index did not hold before the restore: what the loss cost. */
      missingBeforeRestore: Count,
      archiveObjects: Count,
      archiveRecords: Count,
      /** Documents the restore wrote from the archive. */
      rewritten: Count,
      failed: Count,
      /** Archive objects the restore could not read (their records not restored). */
      unreadableObjects: Count
    })
  ),
  /** The Firehose backup of the stream, read back from the archive at the end of the run. */
  backup: Schema.Struct({
    /** Accepted records found in the archive. */
    archived: Count,
    objects: Count,
    /** Deliveries the archive refused (each retried until it went through). */
    deliveryErrors: Count
  }),
  replay: Schema.Struct({
    read: Count,
    written: Count,
    skipped: Count,
    failed: Count,
    unreadableRanges: Count
  }),
  /** Each of these is 0 in a correct pipeline; the tests hold every scenario to it. */
  integrity: Schema.Struct({
    writtenMoreThanOnce: Count,
    invalidAccepted: Count,
    validRejected: Count,
    rejectedWithoutReason: Count,
    unexpectedDocuments: Count,
    unexplainedDelays: Count,
    deadLettered: Count,
    /** Accepted records not in the backup archive. */
    missingFromBackup: Count,
    lostIds: Schema.Array(Schema.String)
  }),
  timeline: Schema.Array(TimelineEntry)
})
export type Report = typeof Report.Type
