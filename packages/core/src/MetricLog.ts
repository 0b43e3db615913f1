/**
 * Where `derive` writes its metric lines: the function's own log in production (Lambda's stdout,
 * which CloudWatch Logs stores in the function's log group, whose subscription filter hands the
 * lines to the forwarder), a log group emulated in memory in tests and local runs
 * (`@spillway/memory`'s `MemoryLogGroup`).
 *
 * Writing a line is the whole of the hot path's metric work: no network call, nothing to flush,
 * nothing that can fail or slow the stream down — which is why `write` has no error channel.
 * A backend keeps the lines of one `write` together and in order.
 */
import { Context, type Effect } from "effect"

export interface Service {
  readonly write: (lines: ReadonlyArray<string>) => Effect.Effect<void>
}

export class MetricLog extends Context.Service<MetricLog, Service>()("spillway/MetricLog") {}
