/**
 * `spillway simulate --compare <seed>`: the before/after experiment is reproducible, its "before"
 * and "after" columns land near the published figures, the tail comes from the modelled overload,
 * the published fix and Spillway's design each cut the delay, and no column loses a record.
 *
 * The default-seed comparison runs once and is shared by the tests that read it.
 */
import { readFileSync } from "node:fs"
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Comparison, Simulation } from "@spillway/simulator"
import { Console, Effect, Layer } from "effect"
import { Command } from "effect/cli"
import * as CliOutput from "../src/cliOutput.js"
import { simulateCommand } from "../src/simulate/command.js"
import { renderComparison } from "../src/simulate/comparisonTable.js"
import { captureConsole } from "./harness.js"

const fixture = (name: string): string => readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8")

const { columnNames, model, published, runComparison, runComparisonWith } = Comparison
const { SimulationError } = Simulation

let shared: Promise<Comparison.Comparison> | undefined
const comparison = Effect.promise(() => {
  shared ??= Effect.runPromise(runComparison(1))
  return shared
})

/**
 * How near seed 1 must come to the published figures. The model is calibrated on the mean over
 * seeds 1–10 (`npm run bench:compare` on Effect 4.1: before −3.4% / −0.5%, after −6.1% / +1.0%);
 * one seed is one sample, and "before" swings between seeds by nature (seed 1: 3.7 s / 24.5 s),
 * so its bounds are wider than "after"'s. A change that moves the model off its calibration fails
 * here.
 */
const tolerance = {
  before: { avg: 0.25, p99: 0.2 },
  after: { avg: 0.1, p99: 0.1 }
} as const

describe("spillway simulate --compare", () => {
  it.effect(
    "the before and after columns land near the published 4.4 s / 23.3 s and 1.3 s / 3.9 s",
    () =>
      Effect.gen(function* () {
        const { columns, errors } = yield* comparison
        for (const name of ["before", "after"] as const) {
          const model = columns[name].delayMs
          const reference = published[name]
          expect(Math.abs(model.avg - reference.avgMs), `${name} avg ${model.avg}`).toBeLessThanOrEqual(
            reference.avgMs * tolerance[name].avg
          )
          expect(Math.abs(model.p99 - reference.p99Ms), `${name} p99 ${model.p99}`).toBeLessThanOrEqual(
            reference.p99Ms * tolerance[name].p99
          )
          expect(errors[name].avgPct).toBeCloseTo(((model.avg - reference.avgMs) / reference.avgMs) * 100, 0)
          expect(errors[name].p99Pct).toBeCloseTo(((model.p99 - reference.p99Ms) / reference.p99Ms) * 100, 0)
        }
      }),
    60_000
  )

  it.effect(
    "the published fix cuts the delay far below before, and Spillway is no worse than it on p99",
    () =>
      Effect.gen(function* () {
        const { columns } = yield* comparison
        const { before, after, spillway } = columns
        expect(after.delayMs.avg).toBeLessThan(before.delayMs.avg / 2)
        expect(after.delayMs.p99).toBeLessThan(before.delayMs.p99 / 2)
        expect(spillway.delayMs.p99).toBeLessThanOrEqual(after.delayMs.p99)
        // Each column really ran its configuration: whole-batch retries rewrote documents only
        // without the cache, bisection only where it is on, function errors not with partial responses.
        expect(before.rewrites).toBeGreaterThan(0)
        expect(after.rewrites).toBe(0)
        expect(before.bisections).toBe(0)
        expect(after.bisections).toBeGreaterThan(0)
        expect(spillway.functionErrors).toBe(0)
      }),
    60_000
  )

  it.effect(
    "the before tail comes from the overload windows: without them its p99 falls by more than half",
    () =>
      Effect.gen(function* () {
        // 100 s of traffic instead of 300 s, with and without the overload windows of seed 1.
        const short = { ...model, records: 8000 }
        const withOverloads = yield* Effect.promise(() => Effect.runPromise(runComparisonWith(1, short)))
        const without = yield* Effect.promise(() =>
          Effect.runPromise(runComparisonWith(1, { ...short, overloadThrottleRate: 0 }))
        )
        expect(withOverloads.overloads.length).toBeGreaterThan(0)
        expect(without.overloads).toEqual([])
        expect(without.columns.before.delayMs.p99).toBeLessThan(withOverloads.columns.before.delayMs.p99 / 2)
        // The published fix absorbs the same windows: its p99 moves by seconds, not tens of them.
        expect(withOverloads.columns.after.delayMs.p99 - without.columns.after.delayMs.p99).toBeLessThan(3000)
      }),
    60_000
  )

  it.effect(
    "no column loses a record",
    () =>
      Effect.gen(function* () {
        const { columns } = yield* comparison
        for (const name of columnNames) {
          const records = columns[name].records
          expect(records.accepted, name).toBe(model.records)
          expect(records.lost, name).toBe(0)
          expect(records.indexed, name).toBe(model.records)
        }
      }),
    60_000
  )

  it.effect(
    "with 5% sticky records every column still indexes every record (they clear, so before does not block forever)",
    () =>
      Effect.gen(function* () {
        // Two hundred records, each failing a few times: every column still indexes all of them.
        const small = { ...model, records: 200, stickyRate: 0.05 }
        const result = yield* Effect.promise(() => Effect.runPromise(runComparisonWith(3, small)))
        for (const name of columnNames) expect(result.columns[name].records.lost, name).toBe(0)
        expect(result.columns.before.functionErrors).toBeGreaterThan(0)
      }),
    60_000
  )

  it.effect(
    "the table sets the model next to the published figures; --compare 1 --json prints, byte for byte, what an earlier run of seed 1 returned",
    () =>
      Effect.gen(function* () {
        const c = yield* comparison
        const table = renderComparison(c)
        expect(table).toContain("4.4 s")
        expect(table).toContain("23.3 s")
        expect(table).toContain("1.3 s")
        expect(table).toContain("3.9 s")
        expect(table).toContain(`${(c.columns.after.delayMs.p99 / 1000).toFixed(1)} s`)

        const { console, stdout } = captureConsole()
        const cli = Command.runWith(
          Command.make("spillway").pipe(Command.withSubcommands([simulateCommand])),
          { version: "test" }
        )
        yield* cli(["simulate", "--compare", "1", "--json"]).pipe(
          Effect.provideService(Console.Console, console),
          Effect.provide(Layer.merge(NodeServices.layer, CliOutput.presenter))
        )
        expect(stdout).toEqual([JSON.stringify(c)])
        // Pinned: the bytes an earlier run of seed 1 printed (`spillway simulate --compare 1 --json`
        // and without `--json`, before the simulator left the CLI). Regenerate both on purpose only.
        expect(`${stdout[0]}\n`).toBe(fixture("compare-seed-1.jsonl"))
        expect(`${table}\n`).toBe(fixture("compare-seed-1.txt"))
      }),
    60_000
  )

  it.effect("refuses a seed that is not a safe integer", () =>
    Effect.gen(function* () {
      const error = yield* runComparison(2 ** 60).pipe(Effect.flip)
      expect(error).toBeInstanceOf(SimulationError)
      expect(error.reason).toBe("InvalidOptions")
    })
  )
})
