/**
 * `spillway dev --backend emulators` run as a user runs it: a child process from the repository
 * root that starts kinesalite and fauxqs in-process, runs the collector and the redriver on the
 * AWS layers and the processor on a shard poller over the real Kinesis API. A `--records` run
 * must end by itself with exit code 0 and a summary showing every record indexed, none lost.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { it as effectIt } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as EmulatorPipeline from "../src/dev/EmulatorPipeline.js"
import { record } from "./harness.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))

const run = (args: ReadonlyArray<string>, ms: number) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["apps/cli/bin/spillway.js", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" }
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`no exit within ${ms} ms; output:\n${output}`))
    }, ms)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

const figure = (output: string, label: string): number => {
  const match = output.match(new RegExp(`^\\s+${label}\\s+(\\d+)`, "m"))
  if (match?.[1] === undefined) throw new Error(`no "${label}" row in the summary:\n${output}`)
  return Number(match[1])
}

describe("spillway dev --backend emulators", () => {
  it("indexes every accepted record through kinesalite and fauxqs, then exits 0", {
    timeout: 90_000
  }, async () => {
    const { code, output } = await run(
      ["dev", "--backend", "emulators", "--port", "0", "--records", "2000"],
      85_000
    )
    // The banner names the emulators: the run did not fall back to the memory backend.
    expect(output).toContain("kinesalite")
    expect(output).toMatch(/collector listening on http:\/\/127\.0\.0\.1:\d+\/v1\/telemetry/)
    expect(figure(output, "sent")).toBe(2000)
    expect(figure(output, "indexed")).toBe(2000)
    expect(figure(output, "lost")).toBe(0)
    expect(output).not.toContain("pipeline not drained in time")
    expect(code).toBe(0)
  })

  it("refuses an unknown backend with exit code 1 or 2 and no summary", { timeout: 30_000 }, async () => {
    const { code, output } = await run(
      ["dev", "--backend", "dynamo", "--port", "0", "--records", "1"],
      25_000
    )
    expect(code).not.toBe(0)
    expect(output).not.toContain("summary")
  })
})

// In-process, on the live clock: the emulators are real servers and the pollers wait real seconds.
describe("EmulatorPipeline", () => {
  effectIt.live(
    "redrives a parked record from the SQS fallback queue into the stream, and the processor indexes it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* EmulatorPipeline.make()
          const envelope = { tenant: "demo", receivedAt: Date.now(), record: record("parked-1") }
          const outcomes = yield* pipeline.queue.send([
            { id: "m0", body: JSON.stringify({ version: 1, attempt: 0, records: [envelope] }) }
          ])
          expect(outcomes[0]?._tag).toBe("Sent")
          // Not idle while the message waits: the drain must not end before the redriver ran.
          expect(yield* pipeline.isIdle).toBe(false)
          const deadline = Date.now() + 20_000
          while (!(yield* pipeline.isIdle) && Date.now() < deadline) yield* Effect.sleep("100 millis")
          expect(yield* pipeline.isIdle).toBe(true)
          expect((yield* pipeline.index.get("parked-1"))?.source).toMatchObject({
            id: "parked-1",
            tenant: "demo"
          })
          expect((yield* pipeline.queue.stats).total).toBe(0)
          expect((yield* pipeline.processor.counters).invocations).toBeGreaterThanOrEqual(1)
        })
      ),
    30_000
  )
})
