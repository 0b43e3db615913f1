/**
 * The pipeline's metrics as CloudWatch Embedded Metric Format (docs/aws-behaviour.md §7.2): JSON
 * lines on stdout that CloudWatch Logs turns into metrics, with no API call and nothing to flush
 * on shutdown.
 *
 * Each invocation runs with a metric registry of its own (`Recorder`), so what is written is what
 * that invocation did, not a running total of the execution environment: the counters of
 * `@spillway/core`'s `Metrics` (and any other counter or gauge the stages update) as values, and
 * the end-to-end delay (`Metrics.endToEndDelay`) as its samples, one per record written, so
 * CloudWatch computes its own percentiles over every invocation. The lines are written once, when
 * the invocation ends. EMF takes at most 100 values per metric in a document, so an invocation
 * that wrote more than 100 records spreads its samples over as many documents as needed (the
 * counters are in the first); nothing is written for an invocation that updated no metric.
 */
import { Metrics } from "@spillway/core"
import { Context, type Metric } from "effect"

/** The metrics whose every sample is kept (EMF gets values, CloudWatch the percentiles). */
const sampled: ReadonlyMap<string, Unit> = new Map([[Metrics.endToEndDelay.id, "Milliseconds"]])

export type Unit = "Count" | "Milliseconds"

/** EMF's limit on values per metric in one document. */
export const maxValuesPerDocument = 100

type Metadata = Metric.MetricRegistry extends Map<string, infer M> ? M : never

/**
 * A metric registry for one invocation (`Metric.MetricRegistry` is a plain `Map` the metrics
 * register into on their first update). It also keeps every sample of the `sampled` metrics,
 * which a summary's state does not.
 */
export class Recorder extends Map<string, Metadata> {
  readonly samples = new Map<string, Array<number>>()

  override set(key: string, metadata: Metadata): this {
    if (sampled.has(metadata.id)) {
      const values = this.samples.get(metadata.id) ?? []
      this.samples.set(metadata.id, values)
      const hooks = metadata.hooks
      // In place: a metric registering itself reads `metadata.hooks` back after `set` for the
      // update that registered it, so the first sample goes through these hooks too.
      ;(metadata as { hooks: Metadata["hooks"] }).hooks = {
        ...hooks,
        update: (input: unknown, context) => {
          // A summary's series takes `[value, timestamp]` pairs (`Metric.summary` maps its input so).
          const value = Array.isArray(input) ? input[0] : input
          if (typeof value === "number") values.push(value)
          hooks.update(input, context)
        }
      }
    }
    return super.set(key, metadata)
  }
}

export interface DocumentOptions {
  readonly namespace: string
  /** Dimension name → value: every metric of the document is filed under all of them. */
  readonly dimensions: Readonly<Record<string, string>>
  /** More top-level fields (searchable in Logs Insights, not dimensions). */
  readonly properties?: Readonly<Record<string, unknown>>
  /** Epoch milliseconds. */
  readonly timestamp: number
}

/** A counter's or gauge's value in the invocation's registry (summed over attribute sets). */
const valuesOf = (recorder: Recorder): ReadonlyMap<string, number> => {
  const totals = new Map<string, number>()
  for (const metadata of recorder.values()) {
    if (sampled.has(metadata.id) || (metadata.type !== "Counter" && metadata.type !== "Gauge")) continue
    // A counter's and a gauge's state do not depend on the context they are read in.
    const state: unknown = metadata.hooks.get(Context.empty())
    const value =
      metadata.type === "Counter"
        ? (state as { readonly count: number | bigint }).count
        : (state as { readonly value: number | bigint }).value
    totals.set(metadata.id, (totals.get(metadata.id) ?? 0) + Number(value))
  }
  return totals
}

/** The EMF documents of what `recorder` holds, as JSON lines; none when it holds nothing. */
export const render = (recorder: Recorder, options: DocumentOptions): ReadonlyArray<string> => {
  const counters = valuesOf(recorder)
  const samples = [...recorder.samples].filter(([, values]) => values.length > 0)
  if (counters.size === 0 && samples.length === 0) return []
  const documents = Math.max(
    1,
    ...samples.map(([, values]) => Math.ceil(values.length / maxValuesPerDocument))
  )
  const lines: Array<string> = []
  for (let d = 0; d < documents; d++) {
    const metrics: Array<{ readonly Name: string; readonly Unit: Unit }> = []
    const values: Record<string, number | ReadonlyArray<number>> = {}
    if (d === 0) {
      for (const [name, value] of counters) {
        metrics.push({ Name: name, Unit: "Count" })
        values[name] = value
      }
    }
    for (const [name, all] of samples) {
      const part = all.slice(d * maxValuesPerDocument, (d + 1) * maxValuesPerDocument)
      if (part.length === 0) continue
      metrics.push({ Name: name, Unit: sampled.get(name) ?? "Count" })
      values[name] = part
    }
    lines.push(
      JSON.stringify({
        _aws: {
          Timestamp: options.timestamp,
          CloudWatchMetrics: [
            {
              Namespace: options.namespace,
              Dimensions: [Object.keys(options.dimensions)],
              Metrics: metrics
            }
          ]
        },
        ...options.properties,
        ...options.dimensions,
        ...values
      })
    )
  }
  return lines
}
