/**
 * What the HTML report shows for each scenario: the charts that tell its story, not the same three
 * for every one. A scenario whose point is a count (the backup's refused deliveries, the records a
 * lost index cost and the restore brought back, the poison records' way through on-failure and the
 * replay) gets bar charts of those figures first, read from its report, each bar labelled with its
 * value (a handful of refused deliveries next to a thousand records would otherwise not show). The
 * per-second charts follow, only those where something happens in that scenario (a fallback queue
 * that stays empty is not drawn), each with a caption that says what to look for.
 */
import type { Scenario, Report as SimulationReport } from "@spillway/simulator"

type Report = SimulationReport.Report

export type TimelineKind = "delay" | "throughput" | "fallback"

export interface TimelineChart {
  readonly kind: TimelineKind
  readonly title: string
}

export interface FiguresChart {
  readonly title: string
  /** Label and value of each bar, in order. */
  readonly figures: (report: Report) => ReadonlyArray<readonly [string, number]>
}

export interface ChartPlan {
  readonly figures: ReadonlyArray<FiguresChart>
  readonly timeline: ReadonlyArray<TimelineChart>
}

const delay = (note = "average and p99 per second"): TimelineChart => ({
  kind: "delay",
  title: `Delay to index (ms): ${note}`
})
const throughput = (note = "sent and indexed"): TimelineChart => ({
  kind: "throughput",
  title: `Throughput (records per second): ${note}`
})
const fallback = (note: string): TimelineChart => ({
  kind: "fallback",
  title: `Fallback queue depth: ${note}`
})

export const plans: { readonly [K in Scenario.ScenarioName]: ChartPlan } = {
  steady: { figures: [], timeline: [delay("the baseline, average and p99 per second"), throughput()] },
  "kinesis-throttling": {
    figures: [],
    timeline: [
      fallback("the throttled entries parked during each burst, then put back by the redriver"),
      throughput(),
      delay()
    ]
  },
  "kinesis-outage": {
    figures: [],
    timeline: [
      fallback("everything parked while the stream is down, drained once it is back"),
      throughput("nothing indexed during the outage, the backlog after it"),
      delay("the outage shows as the records that waited it out")
    ]
  },
  "poison-records": {
    figures: [
      {
        title: "Poison records: isolated by the processor, sent to on-failure, refused again by the replay",
        figures: (r) => [
          ["items refused for their content", r.faults.indexParseErrors],
          ["batches sent to on-failure", r.faults.processorBatchesDiscarded],
          ["replay: records read back", r.replay.read],
          ["replay: already indexed, skipped", r.replay.skipped],
          ["replay: refused again, with reason", r.replay.failed],
          ["on-failure (poison)", r.records.onFailure],
          ["lost", r.records.lost]
        ]
      }
    ],
    timeline: [throughput(), delay("the batches held up while the poison is isolated")]
  },
  "opensearch-rejections": {
    figures: [
      {
        title: "429s from the index and the writes sent again until every record is indexed",
        figures: (r) => [
          ["items answered 429", r.faults.indexRejections],
          ["documents sent again", r.retriesBy.sinkWrites],
          ["accepted", r.records.accepted],
          ["indexed", r.records.indexed],
          ["lost", r.records.lost]
        ]
      }
    ],
    timeline: [delay("the backoff of the retried writes"), throughput()]
  },
  "black-friday": {
    figures: [],
    timeline: [
      throughput("the 10× spike, past the shard's limit"),
      fallback("the entries Kinesis throttled, parked and brought back after the spike"),
      delay()
    ]
  },
  "backup-outage": {
    figures: [
      {
        title: "Firehose through the S3 outage: deliveries refused, each retried until it went through",
        figures: (r) => [
          ["deliveries refused (retried)", r.backup.deliveryErrors],
          ["archive objects written", r.backup.objects]
        ]
      },
      {
        title: "The archive at the end: every accepted record in it",
        figures: (r) => [
          ["accepted", r.records.accepted],
          ["archived", r.backup.archived],
          ["missing from the archive", r.integrity.missingFromBackup]
        ]
      }
    ],
    timeline: [delay("unchanged by the outage: the processor never waits on the backup")]
  },
  "index-lost": {
    figures: [
      {
        title: "The loss and the restore: the last snapshot before the loss, then the archive",
        figures: (r) => [
          ["accepted", r.records.accepted],
          ["missing after the loss", r.recovery?.missingBeforeRestore ?? 0],
          ["restored from the snapshot", r.recovery?.snapshotDocuments ?? 0],
          ["read from the archive", r.recovery?.archiveRecords ?? 0],
          ["written again from the archive", r.recovery?.rewritten ?? 0],
          ["indexed at the end", r.records.indexed],
          ["lost", r.records.lost]
        ]
      }
    ],
    timeline: [throughput("indexing goes on into the recreated index"), delay()]
  }
}
