/**
 * A simulation report as people read it in a terminal: the figures of the run, then its timeline
 * in at most 20 rows. The report itself (its shape and every figure) is `@spillway/simulator`'s.
 */
import type { Report } from "@spillway/simulator"

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

const timelineRows = (report: Report.Report): Array<Array<string>> => {
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
export const renderTable = (report: Report.Report): string => {
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
