/**
 * What a simulation run reports, as a `Schema` so that the `--json` output, the tests and a
 * future HTML report agree on one shape, and its rendering as a table for people.
 *
 * Every figure is counted per run from what the backends hold (the index, the stream, the queues,
 * the probe sink), never from the process-global Effect metrics.
 */
import { Schema } from "effect"
import { scenarioNames } from "./scenarios.js"

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

const number = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 1 })

const seconds = (millis: number): string =>
  millis >= 10_000 ? `${number(Math.round(millis / 100) / 10)} s` : `${number(Math.round(millis))} ms`

/** Pads columns to a common width; `numbers` right-aligns every column but the first. */
const padTable = (rows: ReadonlyArray<ReadonlyArray<string>>, numbers = false): Array<string> => {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? []
  return rows.map((row) =>
    row
      .map((cell, column) =>
        column === 0 || !numbers ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)
      )
      .join("  ")
      .trimEnd()
  )
}

/** At most this many timeline rows in the table: longer runs are shown in buckets of several seconds. */
const maxTimelineRows = 20

const timelineRows = (report: Report): Array<Array<string>> => {
  const bucket = Math.max(1, Math.ceil(report.timeline.length / maxTimelineRows))
  const rows: Array<Array<string>> = [
    ["seconds", "sent", "accepted", "indexed", "delay avg", "delay p99", "fallback"]
  ]
  for (let from = 0; from < report.timeline.length; from += bucket) {
    const slice = report.timeline.slice(from, from + bucket)
    const indexed = slice.reduce((n, s) => n + s.indexed, 0)
    const avg = indexed === 0 ? 0 : slice.reduce((n, s) => n + s.delayAvgMs * s.indexed, 0) / indexed
    const last = slice.at(-1)
    rows.push([
      bucket === 1 ? `${from}` : `${from}–${from + slice.length - 1}`,
      number(slice.reduce((n, s) => n + s.sent, 0)),
      number(slice.reduce((n, s) => n + s.accepted, 0)),
      number(indexed),
      indexed === 0 ? "–" : seconds(avg),
      indexed === 0 ? "–" : seconds(Math.max(...slice.map((s) => s.delayP99Ms))),
      number(last?.fallbackDepth ?? 0)
    ])
  }
  return rows
}

/** The report as people read it in a terminal. */
export const renderTable = (report: Report): string => {
  const r = report.records
  const summary = padTable([
    ["scenario", report.scenario],
    ["seed", String(report.seed)],
    ["simulated time", `${number(report.simulatedSeconds)} s (traffic ${number(report.trafficSeconds)} s)`],
    ["records sent", number(r.sent)],
    ["  accepted", number(r.accepted)],
    ["  rejected (invalid)", number(r.rejected)],
    ["  indexed", number(r.indexed)],
    ["  on-failure (poison)", number(r.onFailure)],
    ["  lost", number(r.lost)],
    [
      "backed up",
      `${number(report.backup.archived)} in ${number(report.backup.objects)} objects (missing ${number(report.integrity.missingFromBackup)}, deliveries refused ${number(report.backup.deliveryErrors)})`
    ],
    ...(report.recovery === undefined
      ? []
      : [
          [
            "recovery",
            `${number(report.recovery.missingBeforeRestore)} missing after the loss; restored ${report.recovery.snapshot} (${number(report.recovery.snapshotDocuments)} documents), then ${number(report.recovery.rewritten)} written from ${number(report.recovery.archiveObjects)} archive objects (${number(report.recovery.failed)} failed, ${number(report.recovery.unreadableObjects)} objects unreadable)`
          ]
        ]),
    ["duplicates sent / skipped", `${number(report.duplicatesSent)} / ${number(r.duplicatesSkipped)}`],
    ["parked in fallback", `${number(report.fallbackParked)} (max depth ${number(report.fallbackMaxDepth)})`],
    [
      "retries",
      `${number(report.retries)} (stream entries ${number(report.retriesBy.streamEntries)}, stream calls ${number(report.retriesBy.streamCalls)}, redriver messages ${number(report.retriesBy.redriverMessages)}, processor batches ${number(report.retriesBy.processorBatches)}, sink writes ${number(report.retriesBy.sinkWrites)})`
    ],
    [
      "delay",
      `avg ${seconds(report.delayMs.avg)}, p50 ${seconds(report.delayMs.p50)}, p99 ${seconds(report.delayMs.p99)}, max ${seconds(report.delayMs.max)}`
    ],
    ["faults", report.faults.injected.length === 0 ? "none" : report.faults.injected.join("; ")]
  ])
  return [
    `spillway simulate: ${report.scenario}`,
    report.summary,
    "",
    ...summary,
    "",
    ...padTable(timelineRows(report), true),
    ""
  ].join("\n")
}
