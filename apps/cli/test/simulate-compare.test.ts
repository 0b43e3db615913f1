/**
 * `spillway simulate --compare <seed>`: the before/after experiment is reproducible, its "before"
 * column lands near the published figures, the published fix and Spillway's design each cut the
 * delay, and no column loses a record.
 *
 * The default-seed comparison runs once and is shared by the tests that read it.
 */
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect } from "effect"
import { simulateCommand } from "../src/simulate/command.js"
import {
  type Comparison,
  columnNames,
  model,
  published,
  renderComparison,
  runComparison,
  runComparisonWith
} from "../src/simulate/compare.js"
import { SimulationError } from "../src/simulate/engine.js"

let shared: Promise<Comparison> | undefined
const comparison = Effect.promise(() => {
  shared ??= Effect.runPromise(runComparison(1))
  return shared
})

/**
 * How near the model must come to the published "before": the average within 25%; the p99 only
 * within 60%, because the model's tail is short of the published one (10.9 s against 23.3 s for
 * seed 1) and the test must say so rather than hide it.
 */
const beforeAvgTolerance = 0.25
const beforeP99Tolerance = 0.6

describe("spillway simulate --compare", () => {
  it.effect(
    "the same seed gives the same JSON, byte for byte",
    () =>
      Effect.gen(function* () {
        const first = yield* comparison
        const again = yield* Effect.promise(() => Effect.runPromise(runComparison(1)))
        expect(JSON.stringify(again)).toBe(JSON.stringify(first))
      }),
    60_000
  )

  it.effect(
    "the before column is near the published 4.4 s avg / 23.3 s p99",
    () =>
      Effect.gen(function* () {
        const { columns, errors } = yield* comparison
        const before = columns.before.delayMs
        expect(Math.abs(before.avg - published.before.avgMs)).toBeLessThanOrEqual(
          published.before.avgMs * beforeAvgTolerance
        )
        expect(Math.abs(before.p99 - published.before.p99Ms)).toBeLessThanOrEqual(
          published.before.p99Ms * beforeP99Tolerance
        )
        expect(errors.before.avgPct).toBeCloseTo(((before.avg - 4400) / 4400) * 100, 0)
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
    "the table sets the model next to the published figures, and --compare prints it",
    () =>
      Effect.gen(function* () {
        const c = yield* comparison
        const table = renderComparison(c)
        expect(table).toContain("4.4 s")
        expect(table).toContain("23.3 s")
        expect(table).toContain("1.3 s")
        expect(table).toContain("3.9 s")
        expect(table).toContain(`${(c.columns.after.delayMs.p99 / 1000).toFixed(1)} s`)

        const stdout: Array<string> = []
        const cli = Command.run(Command.make("spillway").pipe(Command.withSubcommands([simulateCommand])), {
          name: "spillway",
          version: "test"
        })
        const ignore = () => Effect.void
        const console: Console.Console = {
          [Console.TypeId]: Console.TypeId,
          assert: ignore,
          clear: Effect.void,
          count: ignore,
          countReset: ignore,
          debug: ignore,
          dir: ignore,
          dirxml: ignore,
          error: ignore,
          group: ignore,
          groupEnd: Effect.void,
          info: ignore,
          log: (...args) => Effect.sync(() => void stdout.push(args.join(" "))),
          table: ignore,
          time: ignore,
          timeEnd: ignore,
          timeLog: ignore,
          trace: ignore,
          warn: ignore,
          unsafe: globalThis.console
        }
        yield* cli(["node", "spillway", "simulate", "--compare", "1", "--json"]).pipe(
          Effect.withConsole(console),
          Effect.provide(NodeContext.layer)
        )
        expect(stdout).toEqual([JSON.stringify(c)])
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
