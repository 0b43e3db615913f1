/**
 * `spillway simulate --scenario <name> [--seed N] [--records N] [--json]`: runs a scenario through
 * the whole pipeline on virtual time (see `engine.ts`) and prints the report, as a table or as
 * exactly one JSON object on stdout. `spillway simulate --compare <seed> [--json]` runs the
 * published before/after experiment instead (see `compare.ts`). The same arguments print the same
 * bytes.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { renderComparison, runComparison } from "./compare.js"
import { runScenario, SimulationError } from "./engine.js"
import { renderTable } from "./report.js"
import { scenarioNames, scenarios } from "./scenarios.js"

const scenario = Options.choice("scenario", scenarioNames).pipe(
  Options.withDescription(
    `What to rehearse: ${scenarioNames.map((name) => `${name} (${scenarios[name].summary})`).join(" ")}`
  ),
  Options.optional
)

const compare = Options.integer("compare").pipe(
  Options.withDescription(
    "Instead of a scenario, run the published before/after experiment with this seed: the same traffic and faults through the original configuration, the published fix and Spillway's design, next to the published delays."
  ),
  Options.optional
)

const seed = Options.integer("seed").pipe(
  Options.withDefault(1),
  Options.withDescription("Seeds every random draw of the run; the same seed prints the same report.")
)

const records = Options.integer("records").pipe(
  Options.withDefault(5000),
  Options.withDescription("Records the producer sends (1–1,000,000).")
)

const json = Options.boolean("json").pipe(
  Options.withDescription(
    "Print the report as one JSON object (with a per-second timeline) instead of a table."
  )
)

export const simulateCommand = Command.make("simulate", { scenario, compare, seed, records, json }, (args) =>
  Option.match(args.compare, {
    onSome: (compareSeed) =>
      runComparison(compareSeed).pipe(
        Effect.flatMap((comparison) =>
          Console.log(args.json ? JSON.stringify(comparison) : renderComparison(comparison))
        )
      ),
    onNone: () =>
      Option.match(args.scenario, {
        onNone: () =>
          new SimulationError({
            scenario: "",
            reason: "InvalidOptions",
            message: `give --scenario (${scenarioNames.join(", ")}) or --compare <seed>`
          }),
        onSome: (name) =>
          runScenario(name, { seed: args.seed, records: args.records }).pipe(
            Effect.flatMap((report) => Console.log(args.json ? JSON.stringify(report) : renderTable(report)))
          )
      })
  })
).pipe(
  Command.withDescription(
    "Run a failure scenario through the in-memory pipeline on simulated time and report delay, retries and losses."
  )
)
