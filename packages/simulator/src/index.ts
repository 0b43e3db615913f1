/**
 * @spillway/simulator: the whole pipeline on virtual time. `Scenario` holds the incidents a run
 * rehearses, `Simulation` runs one through the in-memory pipeline, `Report` is the shape of what a
 * run reports, and `Comparison` replays the published before/after experiment on the same
 * pipeline. The renderings (table, JSON, HTML) are the CLI's.
 */

export * as ClickstreamPeak from "./ClickstreamPeak.js"
export * as Comparison from "./Comparison.js"
export * as Report from "./Report.js"
export * as Scenario from "./Scenario.js"
export * as Simulation from "./Simulation.js"
