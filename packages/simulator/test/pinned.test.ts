/**
 * The simulator's output, pinned: reports written by an earlier run of the same code path (the
 * files in `fixtures/`, produced by `spillway simulate ... --json` before the simulator left the
 * CLI) and compared byte for byte. A change to the engine, the scenarios, the helpers or the order
 * of random draws that moves any figure fails here; a deliberate change regenerates the fixtures
 * with the commands below and says so in its commit.
 *
 *   npx spillway simulate --seed 3 --records 1200 --json --report /tmp/r.html \
 *     > packages/simulator/test/fixtures/every-scenario-seed-3-records-1200.jsonl
 *   npx spillway simulate --scenario index-lost --seed 3 --records 2000 --json \
 *     > packages/simulator/test/fixtures/index-lost-seed-3-records-2000.jsonl
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Scenario, Simulation } from "../src/index.js"

const fixture = (name: string): string => readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8")

describe("pinned reports", () => {
  it.effect(
    "index-lost, seed 3, 2,000 records: the same bytes as the pinned run",
    () =>
      Effect.gen(function* () {
        const report = yield* Simulation.runScenario("index-lost", { seed: 3, records: 2000 })
        expect(`${JSON.stringify(report)}\n`).toBe(fixture("index-lost-seed-3-records-2000.jsonl"))
      }),
    60_000
  )

  it.effect(
    "every scenario, seed 3, 1,200 records: the same bytes as the pinned run, in the command's order",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        for (const name of Scenario.scenarioNames) {
          lines.push(JSON.stringify(yield* Simulation.runScenario(name, { seed: 3, records: 1200 })))
        }
        expect(`${lines.join("\n")}\n`).toBe(fixture("every-scenario-seed-3-records-1200.jsonl"))
      }),
    120_000
  )
})
