/**
 * `spillway dev` run as a user runs it: a child process from the repository root, stdout a pipe
 * (so the live view prints plain lines). A `--records` run must end by itself with exit code 0 and
 * a summary showing every record indexed; SIGTERM must drain and print the summary too.
 */
import { describe, expect, it } from "vitest"
import { record } from "./harness.js"
import { type Run, start, waitFor } from "./support/cliProcess.js"

const withDeadline = <A>(promise: Promise<A>, ms: number, run: Run): Promise<A> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => {
        run.child.kill("SIGKILL")
        reject(new Error(`did not exit within ${ms} ms; output:\n${run.output()}`))
      }, ms).unref()
    )
  ])

const summaryFigure = (output: string, label: string): number => {
  // Figures are printed with thousands separators (20,000).
  const match = output.match(new RegExp(`^\\s+${label}\\s+([\\d,]+)`, "m"))
  if (match?.[1] === undefined) throw new Error(`no "${label}" in the summary:\n${output}`)
  return Number(match[1].replaceAll(",", ""))
}

describe("spillway dev", () => {
  it("--records 20000 sends them, waits until all are indexed, prints a summary and exits 0", async () => {
    const run = start(["dev", "--port", "0", "--records", "20000"])
    const { code } = await withDeadline(run.exit, 90_000, run)
    const output = run.output()
    expect(code, output).toBe(0)
    expect(output).toMatch(/collector listening on http:\/\/127\.0\.0\.1:\d+\/v1\/telemetry/)
    // Live view, as plain lines: stdout is not a terminal.
    expect(output).toMatch(/^\[\d+\.\ds\]\s+in [\d,]+\/s\s+out [\d,]+\/s\s+delay avg \d+ ms p99 \d+ ms/m)
    expect(output).not.toContain("\x1b[")
    expect(summaryFigure(output, "sent")).toBe(20_000)
    expect(summaryFigure(output, "indexed")).toBe(20_000)
    expect(summaryFigure(output, "lost")).toBe(0)
    expect(summaryFigure(output, "on-failure")).toBe(0)
    expect(summaryFigure(output, "rejected")).toBe(0)
    // Firehose's last buffer is delivered on the way out: the archive, read back, holds every record.
    expect(summaryFigure(output, "backed up")).toBe(20_000)
    expect(output).toMatch(/backed up\s+20,000\s+in [\d,]+ objects? in spillway-backup; 0 missing/)
    expect(output).toMatch(/^\[\d+\.\ds\].*backup [\d,]+ \([\d,]+ objects?, [\d,]+ buffered\)/m)
    expect(output).toMatch(/delay \(ms\)\s+avg [\d,]+\s+p50 [\d,]+\s+p99 [\d,]+\s+max [\d,]+/)
  }, 100_000)

  it("a --records run that outruns the processor waits until its backlog is indexed, past the drain timeout", async () => {
    // The demo traffic is sent as fast as the collector accepts it (about 10,000 records/s here),
    // faster than the processor indexes (about 4,000/s): at the end of the run the backlog takes
    // longer than the drain timeout to index. The run keeps waiting while the index grows.
    const run = start(["dev", "--port", "0", "--records", "100000", "--drain-timeout", "20"])
    const { code } = await withDeadline(run.exit, 240_000, run)
    const output = run.output()
    expect(code, output).toBe(0)
    expect(output).toContain("giving up after 20 s without progress")
    expect(summaryFigure(output, "indexed")).toBe(100_000)
    expect(summaryFigure(output, "lost")).toBe(0)
    expect(output).toMatch(/backed up\s+100,000\s+in [\d,]+ objects? in spillway-backup; 0 missing/)
  }, 250_000)

  it("exits 1 when accepted records did not reach the index (no time given to drain)", async () => {
    const run = start(["dev", "--port", "0", "--records", "5000", "--drain-timeout", "0"])
    const { code } = await withDeadline(run.exit, 90_000, run)
    const output = run.output()
    expect(code, output).toBe(1)
    expect(summaryFigure(output, "lost")).toBeGreaterThan(0)
    expect(output).toContain("pipeline not drained in time")
  }, 100_000)

  it("--allow-origin lets a browser page on that origin post; other origins are refused", async () => {
    const run = start(["dev", "--port", "0", "--no-demo", "--allow-origin", "https://app.example.com"])
    try {
      const [, url] = await waitFor(run, /collector listening on (http:\/\/\S+)/, 60_000)
      const preflight = (origin: string) =>
        fetch(url!, {
          method: "OPTIONS",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-api-key"
          }
        })
      const allowed = await preflight("https://app.example.com")
      expect(allowed.status).toBe(204)
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com")
      // localhost stays allowed next to the configured origin; a foreign site is refused.
      expect((await preflight("http://localhost:5173")).status).toBe(204)
      expect((await preflight("https://elsewhere.example")).status).toBe(403)
    } finally {
      run.child.kill("SIGTERM")
      await withDeadline(run.exit, 45_000, run)
    }
  }, 100_000)

  it("refuses an unknown backend with exit code 1 or 2 and no summary", async () => {
    const run = start(["dev", "--backend", "dynamo", "--port", "0", "--records", "1"])
    const { code } = await withDeadline(run.exit, 25_000, run)
    expect(code).not.toBe(0)
    expect(run.output()).not.toContain("summary")
  }, 30_000)

  it("refuses a bad --opensearch-url or --opensearch-index, and either one without --backend emulators, with one clear line, exit 2 and no stack trace", async () => {
    // No node is needed: every case is refused before anything starts.
    const cases: ReadonlyArray<{ args: ReadonlyArray<string>; code: number; says: ReadonlyArray<string> }> = [
      {
        args: ["--backend", "emulators", "--opensearch-url", "not a url"],
        code: 2,
        says: [
          'spillway dev: --opensearch-url "not a url" is not valid: expected an http:// URL such as http://127.0.0.1:9200'
        ]
      },
      {
        args: ["--backend", "emulators", "--opensearch-url", "https://127.0.0.1:9200"],
        code: 2,
        says: ["a plain http:// URL", "security plugin"]
      },
      {
        args: ["--backend", "emulators", "--opensearch-url", "http://127.0.0.1:9200/some/path?x=1"],
        code: 2,
        says: ["the node's root URL", "without credentials, path or query"]
      },
      {
        args: ["--backend", "emulators", "--opensearch-index", "Spillway_Dev"],
        code: 2,
        says: [
          'spillway dev: --opensearch-index "Spillway_Dev" is not valid',
          "not a valid index name: lower-case letters"
        ]
      },
      {
        args: ["--opensearch-url", "http://127.0.0.1:9200"],
        code: 2,
        says: [
          "spillway dev: --opensearch-url goes with --backend emulators only: the memory backend keeps its index in memory"
        ]
      },
      {
        args: [
          "--backend",
          "memory",
          "--opensearch-url",
          "http://127.0.0.1:9200",
          "--opensearch-index",
          "logs"
        ],
        code: 2,
        says: ["spillway dev: --opensearch-url and --opensearch-index go with --backend emulators only"]
      }
    ]
    await Promise.all(
      cases.map(async ({ args, code, says }) => {
        const run = start(["dev", "--port", "0", ...args])
        const exit = await withDeadline(run.exit, 25_000, run)
        const output = run.output()
        expect(exit.code, output).toBe(code)
        for (const text of says) expect(output).toContain(text)
        // Refused before anything started, and no stack trace.
        expect(output).not.toContain("collector listening")
        expect(output).not.toContain("starting OpenSearch")
        expect(output).not.toMatch(/^\s+at /m)
        expect(output.trim().split("\n")).toHaveLength(1)
      })
    )
  }, 60_000)

  it("SIGTERM stops the collector, drains what it accepted, prints the summary and exits 0", async () => {
    const run = start(["dev", "--port", "0", "--rate", "100"])
    try {
      const [, url] = await waitFor(run, /collector listening on (http:\/\/\S+)/, 60_000)
      const mine = Array.from({ length: 5 }, (_, i) => record(`sigterm-${i}`))
      const response = await fetch(url!, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "demo-key" },
        body: JSON.stringify(mine)
      })
      expect(response.status).toBe(202)
      expect(await response.json()).toEqual({ accepted: 5, rejected: [], unavailable: [] })
      const health = await fetch(url!.replace("/v1/telemetry", "/healthz"))
      expect(await health.json()).toEqual({ ok: true })

      run.child.kill("SIGTERM")
      const { code } = await withDeadline(run.exit, 45_000, run)
      const output = run.output()
      expect(code, output).toBe(0)
      expect(output).toContain("stopping: collector closed")
      expect(summaryFigure(output, "lost")).toBe(0)
      // The five posted records plus the demo records accepted before the signal.
      expect(summaryFigure(output, "indexed")).toBeGreaterThanOrEqual(5)
      // Every distinct id the collector accepted is in the index.
      const distinct = Number(
        output.match(/accepted\s+[\d,]+\s+([\d,]+) distinct ids?/)?.[1]?.replaceAll(",", "")
      )
      expect(summaryFigure(output, "indexed")).toBe(distinct)
      expect(summaryFigure(output, "backed up")).toBe(distinct)
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL")
    }
  }, 100_000)
})
