/**
 * `spillway simulate --scenario <name> [--seed N] [--records N] [--shards N] [--json] [--report file.html]`: runs
 * a scenario through the whole pipeline on virtual time (`@spillway/simulator`'s `Simulation`) and
 * prints the report, as a table (`reportTable.ts`) or as exactly one JSON object on stdout;
 * `--report` also writes the HTML page (`htmlReport.ts`), and without `--scenario` runs every
 * scenario into it. `spillway simulate --compare <seed> [--json]` runs the published before/after
 * experiment instead (the simulator's `Comparison`, printed by `comparisonTable.ts`). The same
 * arguments print the same bytes. `--scenario clickstream-peak` runs the clickstream path's own
 * simulation (`ClickstreamPeak`: inline Datadog calls against logs + forwarder) and prints its table.
 */

import { ClickstreamPeak, Comparison, Scenario, Simulation } from "@spillway/simulator"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { renderComparison } from "./comparisonTable.js"
import { writeReport } from "./htmlReport.js"
import { renderTable } from "./reportTable.js"

const { scenarioNames, scenarios } = Scenario

/** The clickstream path's scenario: its own simulation and table (`ClickstreamPeak`), not a `Report`. */
const clickstreamPeak = ClickstreamPeak.scenarioName

const scenario = Flag.Literals("scenario", [...scenarioNames, clickstreamPeak]).pipe(
  Flag.withDescription(
    `What to rehearse: ${scenarioNames.map((name) => `${name} (${scenarios[name].summary})`).join(" ")} ${clickstreamPeak} (the clickstream path on a peak day: metrics sent to Datadog inline by the metrics function, against log lines and a separate forwarder; iterator age and metric delay for both) (default: none; give --scenario, --report or --compare)`
  ),
  Flag.optional
)

const compare = Flag.Int("compare").pipe(
  Flag.withDescription(
    "Instead of a scenario, run the published before/after experiment with this seed: the same traffic and faults through the original configuration, the published fix and Spillway's design, next to the published delays (default: none)"
  ),
  Flag.optional
)

const seed = Flag.Int("seed").pipe(
  Flag.withDefault(1),
  Flag.withDescription(
    "Seeds every random draw of the run; the same seed prints the same report (default: 1)"
  )
)

const records = Flag.Int("records").pipe(
  Flag.filter(
    (n) => n >= 1 && n <= 1_000_000,
    () => "--records must be 1–1,000,000"
  ),
  Flag.optional,
  Flag.withDescription(
    `Records the producer sends, 1–1,000,000 (default: 5,000; ${ClickstreamPeak.defaultEvents.toLocaleString("en-US")} events for ${clickstreamPeak}, at least 1,000)`
  )
)

const shards = Flag.Int("shards").pipe(
  Flag.filter(
    (n) => n >= 1 && n <= Simulation.maxShards,
    () => `--shards must be 1–${Simulation.maxShards.toLocaleString("en-US")}`
  ),
  Flag.withDescription(
    "Provisioned shards of the stream, each taking 1,000 records/s, instead of the scenario's one (default: the scenario's)"
  ),
  Flag.optional
)

const report = Flag.String("report").pipe(
  Flag.withDescription(
    "Also write a self-contained HTML page (charts of delay, throughput and fallback depth, readable offline) to this file. Without --scenario, every scenario is run into one page (default: none)"
  ),
  Flag.optional
)

const json = Flag.Boolean("json").pipe(
  Flag.withoutNegation,
  Flag.withDefault(false),
  Flag.withDescription(
    "Print the report as one JSON object (with a per-second timeline) instead of a table (default: off)"
  )
)

export const simulateCommand = Command.make(
  "simulate",
  { scenario, compare, seed, records, shards, json, report },
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
          if (Option.isSome(args.scenario) && args.scenario.value === clickstreamPeak) {
            const refused = [
              ...(Option.isSome(args.shards) ? ["--shards"] : []),
              ...(Option.isSome(args.report) ? ["--report"] : [])
            ]
            if (refused.length > 0) {
              return yield* new Simulation.SimulationError({
                scenario: clickstreamPeak,
                reason: "InvalidOptions",
                message: `${refused.join(" and ")} ${refused.length === 1 ? "does" : "do"} not go with --scenario ${clickstreamPeak}: it runs one shard of each stream and prints its own table`
              })
            }
            const peak = yield* ClickstreamPeak.runClickstreamPeak({
              seed: args.seed,
              events: Option.getOrElse(args.records, () => ClickstreamPeak.defaultEvents)
            })
            return yield* Console.log(args.json ? JSON.stringify(peak) : ClickstreamPeak.renderTable(peak))
          }
          const names = Option.match(args.scenario, {
            onSome: (name) => [name],
            // A report without a scenario covers them all, one row and one set of charts each.
            onNone: () => (Option.isSome(args.report) ? [...scenarioNames] : [])
          })
          if (names.length === 0) {
            return yield* new Simulation.SimulationError({
              scenario: "",
              reason: "InvalidOptions",
              message: `say what to run: --scenario <name> (one of ${scenarioNames.join(", ")}), --report <file> for every scenario, or --compare <seed>; spillway simulate --help lists the options`
            })
          }
          const reports = []
          for (const name of names) {
            const result = yield* Simulation.runScenario(name as Scenario.ScenarioName, {
              seed: args.seed,
              records: Option.getOrElse(args.records, () => 5000),
              ...Option.match(args.shards, {
                onNone: () => ({}),
                onSome: (n) => ({ stream: { mode: "provisioned" as const, shards: n } })
              })
            })
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
