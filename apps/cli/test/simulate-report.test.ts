/**
 * `spillway simulate --report`: the HTML page opens offline in a real browser (headless Chromium
 * through playwright-core, with every non-`file:` request aborted), draws every chart without a
 * console or page error, and its summary table shows each scenario with nothing lost. Text taken
 * from a report cannot break out of the page's markup or its JSON data block.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { chromium } from "playwright-core"
import { runScenario } from "../src/simulate/engine.js"
import { escapeHtml, renderHtml, scriptJson, writeReport } from "../src/simulate/htmlReport.js"
import type { Report } from "../src/simulate/report.js"

const options = { seed: 7, records: 2500 }
const executablePath = "/usr/bin/chromium"

const runBoth = Effect.all([runScenario("steady", options), runScenario("black-friday", options)])

/** What the page shows once loaded, as `inspectPage` reads it inside the browser. */
const PageState = Schema.Struct({
  charts: Schema.Array(
    Schema.Struct({
      report: Schema.String,
      kind: Schema.String,
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

        const browser = yield* Effect.acquireRelease(
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
        expect(state.charts).toHaveLength(reports.length * 3)
        reports.forEach((report, index) => {
          for (const kind of ["delay", "throughput", "fallback"] as const) {
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
