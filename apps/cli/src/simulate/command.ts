/**
 * `spillway simulate --scenario <name> [--seed N] [--records N] [--json] [--report file.html]`: runs
 * a scenario through the whole pipeline on virtual time (`@spillway/simulator`'s `Simulation`) and
 * prints the report, as a table (`reportTable.ts`) or as exactly one JSON object on stdout;
 * `--report` also writes the HTML page (`htmlReport.ts`), and without `--scenario` runs every
 * scenario into it. `spillway simulate --compare <seed> [--json]` runs the published before/after
 * experiment instead (the simulator's `Comparison`, printed by `comparisonTable.ts`). The same
 * arguments print the same bytes.
 */

import { Comparison, Scenario, Simulation } from "@spillway/simulator"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { renderComparison } from "./comparisonTable.js"
import { writeReport } from "./htmlReport.js"
import { renderTable } from "./reportTable.js"

const { scenarioNames, scenarios } = Scenario

const scenario = Flag.Literals("scenario", scenarioNames).pipe(
  Flag.withDescription(
    `What to rehearse: ${scenarioNames.map((name) => `${name} (${scenarios[name].summary})`).join(" ")}`
  ),
  Flag.optional
)

const compare = Flag.Int("compare").pipe(
  Flag.withDescription(
    "Instead of a scenario, run the published before/after experiment with this seed: the same traffic and faults through the original configuration, the published fix and Spillway's design, next to the published delays."
  ),
  Flag.optional
)

const seed = Flag.Int("seed").pipe(
  Flag.withDefault(1),
  Flag.withDescription(
    "Seeds every random draw of the run (default 1); the same seed prints the same report."
  )
)

const records = Flag.Int("records").pipe(
  Flag.withDefault(5000),
  Flag.withDescription("Records the producer sends (1–1,000,000; default 5000).")
)

const report = Flag.String("report").pipe(
  Flag.withDescription(
    "Also write a self-contained HTML page (charts of delay, throughput and fallback depth, readable offline) to this file. Without --scenario, every scenario is run into one page."
  ),
  Flag.optional
)

const json = Flag.Boolean("json").pipe(
  Flag.withoutNegation,
  Flag.withDefault(false),
  Flag.withDescription("Print the report as one JSON object (with a per-second timeline) instead of a table.")
)

export const simulateCommand = Command.make(
  "simulate",
  { scenario, compare, seed, records, json, report },
  (args) =>
    Option.match(args.compare, {
      onSome: (compareSeed) =>
        Comparison.runComparison(compareSeed).pipe(
          Effect.flatMap((comparison) =>
            Console.log(args.json ? JSON.stringify(comparison) : renderComparison(comparison))
          )
        ),
      onNone: () =>
        Effect.gen(function* () {
          const names = Option.match(args.scenario, {
            onSome: (name) => [name],
            // A report without a scenario covers them all, one row and one set of charts each.
            onNone: () => (Option.isSome(args.report) ? [...scenarioNames] : [])
          })
          if (names.length === 0) {
            return yield* new Simulation.SimulationError({
              scenario: "",
              reason: "InvalidOptions",
              message: `give --scenario (${scenarioNames.join(", ")}), --report <file> or --compare <seed>`
            })
          }
          const reports = []
          for (const name of names) {
            const result = yield* Simulation.runScenario(name, { seed: args.seed, records: args.records })
            reports.push(result)
            yield* Console.log(args.json ? JSON.stringify(result) : renderTable(result))
          }
          if (Option.isSome(args.report)) {
            yield* writeReport(args.report.value, reports)
            // stderr, so that --json still prints exactly one JSON object per scenario on stdout.
            yield* Console.error(`report written to ${args.report.value}`)
          }
        })
    })
).pipe(
  Command.withDescription(
    "Run a failure scenario through the in-memory pipeline on simulated time and report delay, retries and losses."
  )
)
