/**
 * The one error a simulation ends with, shared by the scenarios and the comparison. It travels
 * (the CLI prints it, `--json` callers read it), so it is a `Schema.TaggedError`. Exported to
 * users as `Simulation.SimulationError`.
 */
import { Schema } from "effect"

export class SimulationError extends Schema.TaggedError<SimulationError>()("SimulationError", {
  /** The scenario's name, "compare" for the comparison, "" when no run was named. */
  scenario: Schema.String,
  /**
   * - `InvalidOptions`: the caller's seed, record count or scenario name; retrying cannot help.
   * - `PipelineRefused`: the in-memory pipeline answered an error where it should not (a bug).
   * - `DidNotSettle`: the pipeline still had work long after the traffic (a stuck run).
   */
  reason: Schema.Literals(["InvalidOptions", "PipelineRefused", "DidNotSettle"]),
  message: Schema.String
}) {}

/** Maps an error of the pipeline into `PipelineRefused`, naming the run it happened in. */
export const refused =
  (scenario: string) =>
  (error: { readonly _tag: string; readonly message: string }): SimulationError =>
    new SimulationError({ scenario, reason: "PipelineRefused", message: `${error._tag}: ${error.message}` })
