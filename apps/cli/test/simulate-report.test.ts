/**
 * `spillway simulate --report`: the HTML page opens offline in a real browser (headless Chromium
 * through playwright-core, with every non-`file:` request aborted), draws every chart without a
 * console or page error, and its summary table shows each scenario with nothing lost. Each
 * scenario's section draws the charts of its plan (`reportCharts.ts`): the figures it is about
 * (backup deliveries and refusals, the loss and the restore, on-failure and the replay) with the
 * report's values, and the table fits the page at common widths. Text taken from a report cannot
 * break out of the page's markup or its JSON data block.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Scenario, Simulation, type Report as SimulationReport } from "@spillway/simulator"
import { Effect, Schema } from "effect"
import { chromium } from "playwright-core"
import { escapeHtml, renderHtml, scriptJson, writeReport } from "../src/simulate/htmlReport.js"
import { plans } from "../src/simulate/reportCharts.js"

const { runScenario } = Simulation
type Report = SimulationReport.Report

const options = { seed: 7, records: 2500 }
const executablePath = "/usr/bin/chromium"

const runBoth = Effect.all([runScenario("steady", options), runScenario("black-friday", options)])

/** What the page shows once loaded, as `inspectPage` reads it inside the browser. */
const PageState = Schema.Struct({
  charts: Schema.Array(
    Schema.Struct({
      report: Schema.String,
      kind: Schema.String,
      /** Which of the section's bar charts, for `figures`; null for the per-second charts. */
      set: Schema.NullOr(Schema.String),
      /** The x labels (seconds) or the bars' labels, as drawn. */
      labelTexts: Schema.Array(Schema.String),
      /** Points per dataset of the Chart.js instance bound to the canvas. */
      datasets: Schema.Array(Schema.Number),
      labels: Schema.Number,
      /** Non-transparent pixels on the canvas. */
      painted: Schema.Number
    })
  ),
  rows: Schema.Array(Schema.Struct({ scenario: Schema.String, lost: Schema.String }))
})

/** Runs in the page (the cli project has no DOM types, so it is a string, and its result is decoded). */
const inspectPage = `(() => {
  const charts = Array.from(document.querySelectorAll("canvas[data-chart]")).map((canvas) => {
    const chart = Chart.getChart(canvas);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return {
      report: canvas.dataset.report,
      kind: canvas.dataset.chart,
      set: canvas.dataset.set ?? null,
      labelTexts: chart ? chart.data.labels.map(String) : [],
      datasets: chart ? chart.data.datasets.map((d) => d.data.length) : [],
      labels: chart ? chart.data.labels.length : -1,
      painted
    };
  });
  const rows = Array.from(document.querySelectorAll("#summary tbody tr")).map((row) => ({
    scenario: row.querySelector("th").textContent,
    lost: row.querySelector('td[data-column="lost"]').textContent
  }));
  return { charts, rows };
})()`

/** Headless Chromium, closed with the scope. */
const launchBrowser = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  ),
  (b) => Effect.promise(() => b.close())
)

describe("simulate --report", () => {
  it.live(
    "renders a self-contained page that draws every chart in headless Chromium, offline",
    () =>
      Effect.gen(function* () {
        const reports = yield* runBoth
        const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "spillway-report-")))
        yield* Effect.addFinalizer(() => Effect.promise(() => rm(dir, { recursive: true, force: true })))
        const file = join(dir, "report.html")
        yield* writeReport(file, reports)
        const html = yield* Effect.promise(() => readFile(file, "utf8"))
        // Offline by construction: nothing in the page points at a network address.
        expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/i)

        const browser = yield* launchBrowser
        const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 900 } }))
        const blocked: Array<string> = []
        const consoleErrors: Array<string> = []
        const pageErrors: Array<string> = []
        page.on("console", (message) => {
          if (message.type() === "error") consoleErrors.push(message.text())
        })
        page.on("pageerror", (error) => pageErrors.push(error.message))
        yield* Effect.promise(() =>
          page.route("**/*", (route) => {
            const url = route.request().url()
            if (url.startsWith("file:")) return route.continue()
            blocked.push(url)
            return route.abort()
          })
        )
        yield* Effect.promise(() => page.goto(pathToFileURL(file).href, { waitUntil: "load" }))

        const state = yield* Effect.promise(() => page.evaluate(inspectPage)).pipe(
          Effect.flatMap(Schema.decodeUnknownEffect(PageState))
        )
        const screenshot = join(tmpdir(), "spillway-report.png")
        yield* Effect.promise(() => page.screenshot({ path: screenshot, fullPage: true }))

        expect(blocked).toEqual([])
        expect(consoleErrors).toEqual([])
        expect(pageErrors).toEqual([])

        const expectedDatasets = { delay: 2, throughput: 2, fallback: 1 } as const
        // steady: delay and throughput, no flat-zero fallback chart; black-friday: the fallback queue too.
        expect(plans.steady.timeline.map((c) => c.kind)).toEqual(["delay", "throughput"])
        expect(plans["black-friday"].timeline.map((c) => c.kind)).toEqual(["throughput", "fallback", "delay"])
        expect(state.charts).toHaveLength(5)
        reports.forEach((report, index) => {
          const kinds = plans[report.scenario].timeline.map((c) => c.kind)
          expect(
            state.charts.filter((c) => c.report === String(index)).map((c) => c.kind),
            report.scenario
          ).toEqual(kinds)
          for (const kind of kinds) {
            const chart = state.charts.find((c) => c.report === String(index) && c.kind === kind)
            expect(chart, `${report.scenario} ${kind}`).toBeDefined()
            expect(report.timeline.length).toBeGreaterThan(1)
            expect(chart?.labels).toBe(report.timeline.length)
            expect(chart?.datasets).toEqual(Array(expectedDatasets[kind]).fill(report.timeline.length))
            // Axes, ticks and lines: thousands of non-transparent pixels, not a blank canvas.
            expect(chart?.painted ?? 0).toBeGreaterThan(2000)
          }
        })
        expect(state.rows).toEqual([
          { scenario: "steady", lost: "0" },
          { scenario: "black-friday", lost: "0" }
        ])
        // The black-friday fallback queue really filled: its chart draws more than a flat zero line.
        const blackFriday = reports[1]
        expect(blackFriday?.fallbackMaxDepth ?? 0).toBeGreaterThan(0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "each scenario's section shows what it is about, and the summary table fits the page",
    () =>
      Effect.gen(function* () {
        const reports = yield* Effect.forEach(Scenario.scenarioNames, (name) =>
          runScenario(name, { seed: 1, records: 3000 })
        )
        const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "spillway-report-")))
        yield* Effect.addFinalizer(() => Effect.promise(() => rm(dir, { recursive: true, force: true })))
        const file = join(dir, "every-scenario.html")
        yield* writeReport(file, reports)
        const browser = yield* launchBrowser
        const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 900 } }))
        yield* Effect.promise(() => page.goto(pathToFileURL(file).href, { waitUntil: "load" }))
        const state = yield* Effect.promise(() => page.evaluate(inspectPage)).pipe(
          Effect.flatMap(Schema.decodeUnknownEffect(PageState))
        )
        const bars = (scenario: string, set = "0") => {
          const index = String(reports.findIndex((r) => r.scenario === scenario))
          return state.charts.find((c) => c.report === index && c.kind === "figures" && c.set === set)
        }
        const byName = (name: string) => reports.find((r) => r.scenario === name)
        // Every chart of every plan is drawn, and painted.
        expect(state.charts).toHaveLength(
          reports.reduce(
            (n, r) => n + plans[r.scenario].figures.length + plans[r.scenario].timeline.length,
            0
          )
        )
        for (const chart of state.charts)
          expect(chart.painted, `${chart.report} ${chart.kind}`).toBeGreaterThan(2000)

        const backup = byName("backup-outage")
        expect(backup?.backup.deliveryErrors ?? 0).toBeGreaterThan(0)
        expect(bars("backup-outage")?.labelTexts).toEqual([
          `deliveries refused (retried): ${backup?.backup.deliveryErrors.toLocaleString("en-US")}`,
          `archive objects written: ${backup?.backup.objects.toLocaleString("en-US")}`
        ])
        expect(bars("backup-outage", "1")?.labelTexts).toContain("missing from the archive: 0")

        const lost = byName("index-lost")?.recovery
        expect(bars("index-lost")?.labelTexts).toEqual(
          expect.arrayContaining([
            `missing after the loss: ${lost?.missingBeforeRestore.toLocaleString("en-US")}`,
            `written again from the archive: ${lost?.rewritten.toLocaleString("en-US")}`,
            "lost: 0"
          ])
        )

        const poison = byName("poison-records")
        expect(poison?.records.onFailure ?? 0).toBeGreaterThan(0)
        expect(bars("poison-records")?.labelTexts).toEqual(
          expect.arrayContaining([
            `on-failure (poison): ${poison?.records.onFailure.toLocaleString("en-US")}`,
            `replay: refused again, with reason: ${poison?.replay.failed.toLocaleString("en-US")}`
          ])
        )
        // A fallback queue that stays empty is not drawn.
        expect(
          state.charts.filter((c) => c.kind === "fallback").map((c) => reports[Number(c.report)]?.scenario)
        ).toEqual(["kinesis-throttling", "kinesis-outage", "black-friday"])

        // From a small laptop up, the table fits; narrower, it scrolls in its own box, not the page.
        const measure = `(() => {
          const box = document.querySelector(".table-box");
          return {
            page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            table: document.getElementById("summary").getBoundingClientRect().right - document.documentElement.clientWidth,
            boxScrolls: box.scrollWidth > box.clientWidth
          };
        })()`
        const Layout = Schema.Struct({
          page: Schema.Number,
          table: Schema.Number,
          boxScrolls: Schema.Boolean
        })
        for (const width of [1024, 1280, 1440, 1920, 390]) {
          // A fresh page per width, opened at that width as a reader would (resizing an open page
          // races Chart.js's own resize of its canvases).
          const sized = yield* Effect.promise(() => browser.newPage({ viewport: { width, height: 900 } }))
          yield* Effect.promise(() => sized.goto(pathToFileURL(file).href, { waitUntil: "load" }))
          const layout = yield* Effect.promise(() => sized.evaluate(measure)).pipe(
            Effect.flatMap(Schema.decodeUnknownEffect(Layout))
          )
          expect(layout.page, `page overflow at ${width} px`).toBeLessThanOrEqual(0)
          if (width >= 1024) {
            expect(layout.table, `table overflow at ${width} px`).toBeLessThanOrEqual(0)
            expect(layout.boxScrolls, `table box scrolls at ${width} px`).toBe(false)
          } else expect(layout.boxScrolls).toBe(true)
        }
        yield* Effect.promise(() =>
          page.screenshot({ path: join(tmpdir(), "spillway-report-every-scenario.png"), fullPage: true })
        )
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect("escapes hostile report text in the HTML and in the JSON data block", () =>
    Effect.gen(function* () {
      const steady = yield* runScenario("steady", { seed: 1, records: 50 })
      const hostile = `</script><script>alert("x")</script><img src=x onerror=alert(1)> & '\u2028`
      const report: Report = {
        ...steady,
        summary: hostile,
        faults: { ...steady.faults, injected: [hostile] }
      }
      const html = renderHtml([report])
      expect(html).not.toContain(hostile)
      expect(html).not.toContain("<script>alert")
      expect(html).not.toContain("<img src=x")
      expect(html).toContain(escapeHtml(hostile))
      expect(escapeHtml(hostile)).toBe(
        "&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#39;\u2028"
      )
      // Exactly the three script elements the page brings: data, Chart.js, drawing code.
      expect(html.match(/<script[\s>]/g)).toHaveLength(3)
      expect(html.match(/<\/script>/g)).toHaveLength(3)
      const data =
        /<script type="application\/json" id="spillway-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? ""
      expect(data).not.toContain("<")
      expect(JSON.parse(data)).toEqual([expect.objectContaining({ scenario: "steady" })])
      // The data block's encoding itself: a hostile string survives the round trip without a `<`.
      const encoded = scriptJson({ scenario: hostile })
      expect(encoded).not.toMatch(/[<>&\u2028]/)
      expect(JSON.parse(encoded)).toEqual({ scenario: hostile })
    })
  )
})

describe("spillway simulate --report (the command)", () => {
  it("writes the page for a scenario run from the command line, keeping stdout for the report", async () => {
    const { execFile } = await import("node:child_process")
    const dir = await mkdtemp(join(tmpdir(), "spillway-cli-report-"))
    const file = join(dir, "steady.html")
    try {
      const { code, stdout, stderr } = await new Promise<{
        code: number | null
        stdout: string
        stderr: string
      }>((resolve) => {
        execFile(
          process.execPath,
          [
            "apps/cli/bin/spillway.js",
            "simulate",
            "--scenario",
            "steady",
            "--records",
            "800",
            "--json",
            "--report",
            file
          ],
          { cwd: join(import.meta.dirname, "../../.."), timeout: 90_000 },
          (error, out, err) =>
            resolve({ code: error === null ? 0 : (error.code as number | null), stdout: out, stderr: err })
        )
      })
      expect(code).toBe(0)
      expect(stderr).toContain(`report written to ${file}`)
      expect(JSON.parse(stdout.trim()).scenario).toBe("steady")
      const html = await readFile(file, "utf8")
      expect(html).toContain('id="spillway-data"')
      expect(html).toContain("steady")
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
