import { describe, expect, it } from "@effect/vitest"
import * as MetricLine from "../../src/MetricLine.js"
import type * as MetricsSink from "../../src/MetricsSink.js"

const samples: ReadonlyArray<MetricsSink.Sample> = [
  {
    metric: "clickstream.events",
    kind: "count",
    value: 3,
    timestamp: 1_795_766_400,
    tags: ["event_type:page_view", "platform:web"]
  },
  {
    metric: "clickstream.events",
    kind: "count",
    value: 2,
    timestamp: 1_795_766_400,
    tags: ["event_type:page_view", "platform:web"]
  },
  {
    metric: "clickstream.sessions.active",
    kind: "count",
    value: 7,
    timestamp: 1_795_766_400,
    tags: ["platform:web"]
  },
  { metric: "queue.depth", kind: "gauge", value: 4, timestamp: 1_795_766_460, tags: ["platform:web"] }
]

const samplesOf = (lines: ReadonlyArray<string>) =>
  lines.flatMap((line) => {
    const parsed = MetricLine.parse(line)
    if (parsed._tag !== "Samples") throw new Error(`${line}: ${parsed._tag}`)
    return parsed.samples
  })

describe("MetricLine", () => {
  it("writes datadog-lambda-js' own line and reads it back, a gauge marked as such", () => {
    const lines = MetricLine.encode(samples, "datadog", "unused")
    expect(lines[0]).toBe(
      '{"e":1795766400,"m":"clickstream.events","t":["event_type:page_view","platform:web"],"v":3}'
    )
    expect(lines[3]).toContain('"type":"gauge"')
    expect(samplesOf(lines)).toEqual(samples)
  })

  it("writes EMF, one document per second and tag set, counts summed, and reads it back", () => {
    const lines = MetricLine.encode(samples, "emf", "Clickstream")
    expect(lines).toHaveLength(3)
    const first = JSON.parse(lines[0]!)
    expect(first._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: "Clickstream",
      Dimensions: [["event_type", "platform"]],
      Metrics: [{ Name: "clickstream.events", Unit: "Count" }]
    })
    expect(first["clickstream.events"]).toBe(5)
    const read = samplesOf(lines)
    expect(read).toContainEqual({ ...samples[0]!, value: 5 })
    expect(read).toContainEqual(samples[2])
    expect(read).toContainEqual(samples[3])
  })

  it("tells the function's other lines from metric lines", () => {
    for (const line of [
      "START RequestId: 8f2d Version: $LATEST",
      "REPORT RequestId: 8f2d\tDuration: 2.1 ms",
      '{"timestamp":"2026-11-27T08:00:00Z","level":"INFO","message":"processed 200 records"}',
      "[1, 2, 3]",
      ""
    ]) {
      expect(MetricLine.parse(line)).toEqual({ _tag: "NotMetric" })
    }
  })

  it("reads a line behind console.log's prefix", () => {
    const line = `2026-11-27T08:00:00.000Z\t8f2d\tINFO\t${MetricLine.encodeDatadogLine(samples[2]!)}`
    expect(samplesOf([line])).toEqual([samples[2]])
  })

  it("calls a metric line it cannot read malformed, with the reason", () => {
    const reasons = [
      '{"e":1795766400,"m":"x","t":[],"v":',
      '{"_aws":{"Timestamp":1795766400000,"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[[',
      '{"e":1795766400,"m":"x","t":[],"v":"3"}',
      '{"e":1795766400,"m":"","t":[],"v":3}',
      '{"e":1795766400,"m":"x","t":"a:b","v":3}',
      '{"e":1795766400,"m":"x","t":[],"v":3,"type":"histogram"}',
      '{"_aws":{"Timestamp":1795766400000,"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[["k"]],"Metrics":[{"Name":"n"}]}]},"k":"v"}',
      '{"_aws":{"Timestamp":1795766400000,"CloudWatchMetrics":[{"Namespace":"C","Dimensions":[["k"]],"Metrics":[{"Name":"n"}]}]},"n":1}',
      '{"_aws":{"CloudWatchMetrics":[]}}'
    ].map((line) => {
      const parsed = MetricLine.parse(line)
      return parsed._tag === "Malformed" ? parsed.reason : parsed._tag
    })
    expect(reasons).toEqual([
      "truncated or invalid JSON",
      "truncated or invalid JSON",
      "v (the value) must be a finite number",
      "the metric name must be a non-empty string",
      "t (the tags) must be a list of strings",
      "type must be count, rate or gauge",
      'metric "n" has no finite numeric value in the document',
      'dimension "k" has no string value in the document',
      "_aws.Timestamp must be epoch milliseconds"
    ])
  })

  it("skips EMF documents of namespaces it was not told to forward", () => {
    const [line] = MetricLine.encode([samples[2]!], "emf", "Spillway")
    expect(MetricLine.parse(line!, { namespaces: new Set(["Clickstream"]) })).toEqual({
      _tag: "Skipped",
      namespace: "Spillway"
    })
  })
})
