/**
 * `spillway simulate --scenario clickstream-peak` as a user runs it: the clickstream path's own
 * table (inline Datadog calls against logs + forwarder), the same bytes for the same seed in text
 * and JSON, and a plain refusal of the options that do not go with it.
 */
import { describe, expect, it } from "@effect/vitest"
import { run } from "./support/cliProcess.js"

describe("spillway simulate --scenario clickstream-peak", () => {
  it("prints the table: inline falls behind on the peak, logs + forwarder does not, every event counted", async () => {
    const table = await run([
      "simulate",
      "--scenario",
      "clickstream-peak",
      "--records",
      "20000",
      "--seed",
      "3"
    ])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^clickstream-peak \(seed 3\): 20,000 events/)
    expect(table.stdout).toMatch(/^falling behind\s+yes\s+no$/m)
    expect(table.stdout).toMatch(/^events counted\s+20000\s+20000$/m)

    const json = await run([
      "simulate",
      "--scenario",
      "clickstream-peak",
      "--records",
      "20000",
      "--seed",
      "3",
      "--json"
    ])
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout) as {
      readonly variants: ReadonlyArray<{ readonly variant: string; readonly fallingBehind: boolean }>
    }
    expect(report.variants.map((v) => [v.variant, v.fallingBehind])).toEqual([
      ["inline", true],
      ["logs+forwarder", false]
    ])
    const again = await run([
      "simulate",
      "--scenario",
      "clickstream-peak",
      "--records",
      "20000",
      "--seed",
      "3",
      "--json"
    ])
    expect(again.stdout).toBe(json.stdout)
  })

  it("refuses --shards and --report with one line and exit 2", async () => {
    const refused = await run(["simulate", "--scenario", "clickstream-peak", "--shards", "2"])
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe("")
    expect(refused.stderr.trim().split("\n")).toEqual([
      "spillway simulate: --shards does not go with --scenario clickstream-peak: it runs one shard of each stream and prints its own table"
    ])
  })
})
