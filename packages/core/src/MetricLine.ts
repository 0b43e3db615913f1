/**
 * Metrics as log lines: what `derive` writes (no network call in the hot path) and what the
 * forwarder reads back from the log group's subscription. Two formats, chosen by configuration:
 *
 * - `datadog`: the line the Datadog Lambda libraries write with `DD_FLUSH_TO_LOG=true` and the
 *   Datadog Forwarder reads — `{"e":<epoch seconds>,"m":"<name>","t":["k:v",…],"v":<value>}`, one
 *   sample a line. Spillway's forwarder reads such a line as a count (summed) unless it carries
 *   `"type":"gauge"` or `"type":"rate"`; the Datadog Forwarder ignores that extra key, so the
 *   lines stay readable by it.
 * - `emf`: CloudWatch Embedded Metric Format (docs/aws-behaviour.md §7.2), so CloudWatch builds
 *   the same metrics from the same lines: one document per timestamp and tag set, the tags as
 *   dimensions (`k:v` → dimension `k` = `v`), `Unit: "Count"` for counts (read back as counts,
 *   anything else as a gauge).
 *
 * `parse` tells a metric line from the other lines of a function's log (its JSON logs, Lambda's
 * START/END/REPORT lines): those are `NotMetric`. A line that is meant as a metric but cannot be
 * read — truncated JSON, a missing or mistyped field, an EMF document whose metric has no value —
 * is `Malformed`, with the reason, so the forwarder counts and reports it instead of dropping it
 * silently (the Datadog forwarder's silent drops, #462).
 */
import type { Kind, Sample } from "./MetricsSink.js"

export type Format = "datadog" | "emf"

export const formats: ReadonlyArray<Format> = ["datadog", "emf"]

export type Parsed =
  | { readonly _tag: "Samples"; readonly format: Format; readonly samples: ReadonlyArray<Sample> }
  /** An EMF document of a namespace the forwarder was told not to forward. */
  | { readonly _tag: "Skipped"; readonly namespace: string }
  | { readonly _tag: "NotMetric" }
  | { readonly _tag: "Malformed"; readonly reason: string }

/** Datadog's limits on metric names and tags (200 characters each). */
export const maxNameLength = 200
export const maxTagLength = 200

/** EMF: at most 100 metrics per directive, 30 dimensions per set (docs/aws-behaviour.md §7.2). */
export const maxEmfMetricsPerDocument = 100
export const maxEmfDimensions = 30

// ---- writing --------------------------------------------------------------------------------------

/** One `datadog` line; the key order is datadog-lambda-js' own. */
export const encodeDatadogLine = (sample: Sample): string =>
  JSON.stringify({
    e: sample.timestamp,
    m: sample.metric,
    t: sample.tags,
    v: sample.value,
    ...(sample.kind === "count" ? {} : { type: sample.kind })
  })

const dimensionOf = (tag: string): readonly [string, string] => {
  const colon = tag.indexOf(":")
  return colon < 0 ? [tag, "true"] : [tag.slice(0, colon), tag.slice(colon + 1)]
}

/**
 * EMF documents for `samples`: one per epoch second and tag set (at most 100 metrics each), a
 * metric given twice in one document summed when a count, the last value kept otherwise.
 */
export const encodeEmf = (samples: ReadonlyArray<Sample>, namespace: string): ReadonlyArray<string> => {
  const groups = new Map<
    string,
    { timestamp: number; tags: ReadonlyArray<string>; metrics: Map<string, Sample> }
  >()
  for (const sample of samples) {
    const timestamp = Math.floor(sample.timestamp)
    const key = `${timestamp}\u0000${sample.tags.join("\u0000")}`
    let group = groups.get(key)
    if (group === undefined) {
      group = { timestamp, tags: sample.tags, metrics: new Map() }
      groups.set(key, group)
    }
    const before = group.metrics.get(sample.metric)
    group.metrics.set(
      sample.metric,
      before !== undefined && sample.kind === "count"
        ? { ...sample, value: before.value + sample.value }
        : sample
    )
  }
  const lines: Array<string> = []
  for (const group of groups.values()) {
    const dimensions = Object.fromEntries(group.tags.map(dimensionOf))
    const metrics = [...group.metrics.values()]
    for (let i = 0; i < metrics.length; i += maxEmfMetricsPerDocument) {
      const part = metrics.slice(i, i + maxEmfMetricsPerDocument)
      lines.push(
        JSON.stringify({
          _aws: {
            Timestamp: group.timestamp * 1000,
            CloudWatchMetrics: [
              {
                Namespace: namespace,
                Dimensions: [Object.keys(dimensions)],
                Metrics: part.map((m) => ({ Name: m.metric, Unit: m.kind === "count" ? "Count" : "None" }))
              }
            ]
          },
          ...dimensions,
          ...Object.fromEntries(part.map((m) => [m.metric, m.value]))
        })
      )
    }
  }
  return lines
}

/** The lines of `samples` in `format`. */
export const encode = (
  samples: ReadonlyArray<Sample>,
  format: Format,
  namespace: string
): ReadonlyArray<string> =>
  format === "datadog" ? samples.map(encodeDatadogLine) : encodeEmf(samples, namespace)

// ---- reading --------------------------------------------------------------------------------------

export interface ParseOptions {
  /** EMF namespaces to forward; others are `Skipped`. @default every namespace */
  readonly namespaces?: ReadonlySet<string> | undefined
}

const notMetric: Parsed = { _tag: "NotMetric" }
const malformed = (reason: string): Parsed => ({ _tag: "Malformed", reason })

/** `2026-11-27T08:00:00.000Z\t<request id>\tINFO\t{…}`: what `console.log` makes of a line in Lambda's text format. */
const consolePrefix = /^\S+\t\S+\t[A-Z]+\t/

/** A text that starts like a metric line: truncated, it is malformed rather than some other log line. */
const looksLikeMetric = (text: string): boolean =>
  text.startsWith('{"_aws"') ||
  text.startsWith('{"e":') ||
  text.startsWith('{"m":') ||
  /^\{\s*"_aws"\s*:/.test(text)

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const nameProblem = (name: unknown): string | undefined =>
  typeof name !== "string" || name.length === 0
    ? "the metric name must be a non-empty string"
    : name.length > maxNameLength
      ? `the metric name is ${name.length} characters; at most ${maxNameLength}`
      : undefined

const tagsProblem = (tags: unknown): string | undefined => {
  if (!Array.isArray(tags)) return "t (the tags) must be a list of strings"
  for (const tag of tags) {
    if (typeof tag !== "string") return "t (the tags) must be a list of strings"
    if (tag.length > maxTagLength) return `a tag is ${tag.length} characters; at most ${maxTagLength}`
  }
  return undefined
}

const kinds: ReadonlySet<string> = new Set(["count", "rate", "gauge"])

const parseDatadog = (line: Record<string, unknown>): Parsed => {
  const problem =
    nameProblem(line.m) ??
    (typeof line.v !== "number" || !Number.isFinite(line.v)
      ? "v (the value) must be a finite number"
      : undefined) ??
    (typeof line.e !== "number" || !Number.isFinite(line.e) || line.e < 0
      ? "e (the time) must be epoch seconds"
      : undefined) ??
    tagsProblem(line.t) ??
    (line.type !== undefined && !(typeof line.type === "string" && kinds.has(line.type))
      ? "type must be count, rate or gauge"
      : undefined)
  if (problem !== undefined) return malformed(problem)
  return {
    _tag: "Samples",
    format: "datadog",
    samples: [
      {
        metric: line.m as string,
        kind: (line.type as Kind | undefined) ?? "count",
        value: line.v as number,
        timestamp: line.e as number,
        tags: line.t as ReadonlyArray<string>
      }
    ]
  }
}

const parseEmf = (document: Record<string, unknown>, options: ParseOptions): Parsed => {
  const aws = document._aws
  if (!isObject(aws)) return malformed("_aws must be an object")
  const timestamp = aws.Timestamp
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp < 0)
    return malformed("_aws.Timestamp must be epoch milliseconds")
  const directives = aws.CloudWatchMetrics
  if (!Array.isArray(directives) || directives.length === 0)
    return malformed("_aws.CloudWatchMetrics must be a non-empty list")
  const samples: Array<Sample> = []
  let skipped: string | undefined
  for (const directive of directives as ReadonlyArray<unknown>) {
    if (!isObject(directive)) return malformed("a CloudWatchMetrics directive must be an object")
    const namespace = directive.Namespace
    if (typeof namespace !== "string" || namespace.length === 0)
      return malformed("a directive's Namespace must be a non-empty string")
    if (options.namespaces !== undefined && !options.namespaces.has(namespace)) {
      skipped = namespace
      continue
    }
    const sets = directive.Dimensions
    const metrics = directive.Metrics
    if (!Array.isArray(sets) || !Array.isArray(metrics))
      return malformed("a directive needs Dimensions and Metrics lists")
    const tagSets: Array<ReadonlyArray<string>> = []
    for (const set of sets.length === 0 ? [[]] : (sets as ReadonlyArray<unknown>)) {
      if (!Array.isArray(set) || set.length > maxEmfDimensions)
        return malformed(`a dimension set must be a list of at most ${maxEmfDimensions} names`)
      const tags: Array<string> = []
      for (const key of set as ReadonlyArray<unknown>) {
        const value = typeof key === "string" ? document[key] : undefined
        if (typeof value !== "string")
          return malformed(`dimension ${JSON.stringify(key)} has no string value in the document`)
        tags.push(`${key}:${value}`)
      }
      tagSets.push(tags)
    }
    for (const metric of metrics as ReadonlyArray<unknown>) {
      if (!isObject(metric)) return malformed("a metric definition must be an object")
      const problem = nameProblem(metric.Name)
      if (problem !== undefined) return malformed(problem)
      const name = metric.Name as string
      const raw = document[name]
      const values = Array.isArray(raw) ? (raw as ReadonlyArray<unknown>) : [raw]
      if (values.length === 0 || values.some((v) => typeof v !== "number" || !Number.isFinite(v)))
        return malformed(`metric ${JSON.stringify(name)} has no finite numeric value in the document`)
      const kind: Kind = metric.Unit === "Count" ? "count" : "gauge"
      for (const tags of tagSets) {
        for (const value of values as ReadonlyArray<number>) {
          samples.push({ metric: name, kind, value, timestamp: Math.floor(timestamp / 1000), tags })
        }
      }
    }
  }
  if (samples.length === 0 && skipped !== undefined) return { _tag: "Skipped", namespace: skipped }
  return { _tag: "Samples", format: "emf", samples }
}

/** Reads one log line (see the module header for what each outcome means). */
export const parse = (message: string, options: ParseOptions = {}): Parsed => {
  let text = message.trim()
  if (!text.startsWith("{")) {
    const prefix = consolePrefix.exec(text)
    if (prefix === null) return notMetric
    text = text.slice(prefix[0].length)
    if (!text.startsWith("{")) return notMetric
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return looksLikeMetric(text) ? malformed("truncated or invalid JSON") : notMetric
  }
  if (!isObject(value)) return notMetric
  if ("_aws" in value) return parseEmf(value, options)
  if ("m" in value && ("v" in value || "e" in value || "t" in value)) return parseDatadog(value)
  return notMetric
}
