/**
 * `spillway simulate --report file.html`: the simulation reports as one self-contained HTML page:
 * a summary table with a row per scenario, then a section per scenario with the charts that tell
 * its story (`reportCharts.ts`). The table fits the page from 1,024 px wide up; narrower, it
 * scrolls in its own box and the page itself does not.
 *
 * Guarantees: the page opens offline and makes no network request. Chart.js's UMD build is read
 * from `node_modules` at render time and inlined, and a Content-Security-Policy forbids every
 * fetch, so a report attached to a ticket or opened on an air-gapped laptop looks the same. Every
 * text taken from a report is escaped for where it lands: HTML text and attributes, and the
 * `<script type="application/json">` data block, where a `<` is written `\u003c` so that no
 * string can close the script element early.
 */
import { readFileSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import type { Report as SimulationReport } from "@spillway/simulator"
import { Effect, Schema } from "effect"
import { plans } from "./reportCharts.js"

type Report = SimulationReport.Report

export class ReportWriteError extends Schema.TaggedError<ReportWriteError>()("ReportWriteError", {
  path: Schema.String,
  message: Schema.String
}) {}

const require = createRequire(import.meta.url)

let chartJsSource: string | undefined

/**
 * Chart.js's minified UMD build. The package's `exports` map does not list `dist/chart.umd.min.js`,
 * so it is found next to the entry point `require` resolves (`dist/chart.cjs`).
 */
const chartJs = (): string => {
  if (chartJsSource === undefined) {
    const source = readFileSync(join(dirname(require.resolve("chart.js")), "chart.umd.min.js"), "utf8")
    // An HTML parser ends a script element at the first `</script`, whatever the JS around it.
    chartJsSource = source.replace(/<\/(script)/gi, "<\\/$1")
  }
  return chartJsSource
}

const htmlEscapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;"
}

/** Escapes text for HTML content and for quoted attribute values. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => htmlEscapes[c] ?? c)

/**
 * JSON that is safe inside a `<script>` element: `<`, `>` and `&` as unicode escapes (no `</script>`,
 * no `<!--`), and U+2028/U+2029, which older JS parsers read as line ends inside strings.
 */
export const scriptJson = (value: unknown): string =>
  JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

const number = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 1 })

const millis = (ms: number): string =>
  ms >= 10_000 ? `${number(Math.round(ms / 100) / 10)} s` : `${number(Math.round(ms))} ms`

const summaryColumns: ReadonlyArray<readonly [string, (r: Report) => string]> = [
  ["sent", (r) => number(r.records.sent)],
  ["accepted", (r) => number(r.records.accepted)],
  ["rejected", (r) => number(r.records.rejected)],
  ["indexed", (r) => number(r.records.indexed)],
  ["duplicates skipped", (r) => number(r.records.duplicatesSkipped)],
  ["on-failure", (r) => number(r.records.onFailure)],
  ["lost", (r) => number(r.records.lost)],
  ["missing from backup", (r) => number(r.integrity.missingFromBackup)],
  ["retries", (r) => number(r.retries)],
  // p50 and max are in each scenario's section: two more columns would not fit a laptop's width.
  ["delay avg", (r) => millis(r.delayMs.avg)],
  ["delay p99", (r) => millis(r.delayMs.p99)]
]

const summaryTable = (reports: ReadonlyArray<Report>): string => {
  const head = ["scenario", ...summaryColumns.map(([name]) => name)]
    .map((name) => `<th scope="col">${escapeHtml(name)}</th>`)
    .join("")
  const rows = reports
    .map((report, index) => {
      const cells = summaryColumns
        .map(([name, cell]) => {
          const lost =
            (name === "lost" && report.records.lost > 0) ||
            (name === "missing from backup" && report.integrity.missingFromBackup > 0)
              ? ' class="bad"'
              : ""
          return `<td data-column="${escapeHtml(name)}"${lost}>${escapeHtml(cell(report))}</td>`
        })
        .join("")
      return `<tr data-report="${index}"><th scope="row"><a href="#report-${index}">${escapeHtml(report.scenario)}</a></th>${cells}</tr>`
    })
    .join("\n")
  return `<div class="table-box"><table id="summary"><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table></div>`
}

const figure = (
  index: number,
  chart: { readonly kind: string; readonly set?: number },
  label: string,
  title: string,
  height?: number
): string => {
  const set = chart.set === undefined ? "" : ` data-set="${chart.set}"`
  const style = height === undefined ? "" : ` style="height: ${height}px"`
  // A bar chart takes the whole row: its labels are sentences, and a third of the row clips them.
  const wide = chart.kind === "figures" ? ' class="wide"' : ""
  return `<figure${wide}><figcaption>${escapeHtml(title)}</figcaption><div class="chart"${style}><canvas data-report="${index}" data-chart="${chart.kind}"${set} aria-label="${escapeHtml(`${label}: ${title}`)}" role="img"></canvas></div></figure>`
}

/** A bar per figure, readable without squeezing. */
const barsHeight = (bars: number): number => 60 + 30 * bars

const section = (report: Report, index: number): string => {
  const faults = report.faults.injected.length === 0 ? ["none"] : report.faults.injected
  const plan = plans[report.scenario]
  const canvases = [
    ...plan.figures.map((chart, set) =>
      figure(
        index,
        { kind: "figures", set },
        report.scenario,
        chart.title,
        barsHeight(chart.figures(report).length)
      )
    ),
    ...plan.timeline.map((chart) => figure(index, chart, report.scenario, chart.title))
  ].join("\n")
  const d = report.delayMs
  return `<section id="report-${index}">
<h2>${escapeHtml(report.scenario)}</h2>
<p>${escapeHtml(report.summary)}</p>
<p class="meta">seed ${escapeHtml(String(report.seed))} · simulated ${escapeHtml(number(report.simulatedSeconds))} s · parked in fallback ${escapeHtml(number(report.fallbackParked))} (max depth ${escapeHtml(number(report.fallbackMaxDepth))})</p>
<p class="meta">delay avg ${escapeHtml(millis(d.avg))} · p50 ${escapeHtml(millis(d.p50))} · p99 ${escapeHtml(millis(d.p99))} · max ${escapeHtml(millis(d.max))}</p>
<p class="meta">faults: ${faults.map(escapeHtml).join("; ")}</p>
<div class="charts">
${canvases}
</div>
</section>`
}

/** Only what the charts draw goes into the data block, column-wise to keep the page small. */
const chartData = (reports: ReadonlyArray<Report>) =>
  reports.map((report) => ({
    scenario: report.scenario,
    second: report.timeline.map((s) => s.second),
    sent: report.timeline.map((s) => s.sent),
    indexed: report.timeline.map((s) => s.indexed),
    // A second that indexed nothing has no delay: a gap in the line, not a misleading 0 ms.
    delayAvgMs: report.timeline.map((s) => (s.indexed === 0 ? null : Math.round(s.delayAvgMs))),
    delayP99Ms: report.timeline.map((s) => (s.indexed === 0 ? null : Math.round(s.delayP99Ms))),
    fallbackDepth: report.timeline.map((s) => s.fallbackDepth),
    // Each bar's label carries its value: bars of a handful next to bars of a thousand stay readable.
    figures: plans[report.scenario].figures.map((chart) =>
      chart.figures(report).map(([label, value]) => ({ label: `${label}: ${number(value)}`, value }))
    )
  }))

/**
 * Draws every canvas from the data block. Animation is off so that a chart is complete as soon as
 * the page has loaded (a screenshot or a print shows the final picture).
 */
const drawCharts = `(() => {
  const data = JSON.parse(document.getElementById("spillway-data").textContent);
  const line = (label, values, color, fill) => ({
    label, data: values, borderColor: color, backgroundColor: color + "33", fill,
    borderWidth: 1.5, pointRadius: 2, tension: 0
  });
  const options = (yTitle) => ({
    animation: false, responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
    scales: { x: { title: { display: true, text: "simulated second" } }, y: { beginAtZero: true, title: { display: true, text: yTitle } } }
  });
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const report = data[Number(canvas.dataset.report)];
    const labels = report.second;
    const chart = canvas.dataset.chart;
    const bars = chart === "figures" ? report.figures[Number(canvas.dataset.set)] : [];
    const config =
      chart === "figures"
        ? { type: "bar", data: { labels: bars.map((f) => f.label), datasets: [{ label: "count", data: bars.map((f) => f.value), backgroundColor: "#2563eb" }] },
            options: { animation: false, responsive: true, maintainAspectRatio: false, indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } } }
        : chart === "delay"
        ? { type: "line", data: { labels, datasets: [line("avg", report.delayAvgMs, "#2563eb", false), line("p99", report.delayP99Ms, "#dc2626", false)] }, options: options("ms") }
        : chart === "throughput"
          ? { type: "line", data: { labels, datasets: [line("sent", report.sent, "#64748b", false), line("indexed", report.indexed, "#16a34a", false)] }, options: options("records / s") }
          : { type: "line", data: { labels, datasets: [line("fallback depth", report.fallbackDepth, "#d97706", true)] }, options: options("records") };
    new Chart(canvas, config);
  }
})();`

const style = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #0f172a; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #cbd5e1; }
.table-box { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.45rem; border-bottom: 1px solid #e2e8f0; text-align: right; white-space: nowrap; }
thead th { white-space: normal; vertical-align: bottom; font-size: 0.9em; }
th[scope="row"], thead th:first-child { text-align: left; }
td.bad { color: #b91c1c; font-weight: 600; }
.meta { color: #475569; margin: 0.2rem 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(360px, 100%), 1fr)); gap: 1rem; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figcaption { font-weight: 600; margin-bottom: 0.3rem; }
.chart { position: relative; height: 240px; }
`

/** The whole page: summary table first, then one section of charts per report. */
export const renderHtml = (reports: ReadonlyArray<Report>): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(`spillway simulate: ${reports.map((r) => r.scenario).join(", ")}`)}</title>
<style>${style}</style>
</head>
<body>
<h1>spillway simulate</h1>
${summaryTable(reports)}
${reports.map(section).join("\n")}
<script type="application/json" id="spillway-data">${scriptJson(chartData(reports))}</script>
<script>${chartJs()}</script>
<script>${drawCharts}</script>
</body>
</html>
`

/** Renders the reports and writes the page; a missing chart library or a failed write is a typed error. */
export const writeReport = Effect.fn("Simulation.writeReport")(function* (
  path: string,
  reports: ReadonlyArray<Report>
) {
  yield* Effect.tryPromise({
    try: () => writeFile(path, renderHtml(reports), "utf8"),
    catch: (cause) =>
      new ReportWriteError({ path, message: cause instanceof Error ? cause.message : String(cause) })
  })
})
