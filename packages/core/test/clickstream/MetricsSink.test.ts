import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as MetricsSink from "../../src/MetricsSink.js"

const series = (
  metric: string,
  points: number,
  from = 1_795_766_400,
  tags = ["platform:web"]
): MetricsSink.Series => ({
  metric,
  kind: "count",
  tags,
  points: Array.from({ length: points }, (_, i) => ({ timestamp: from + i * 60, value: i + 1 }))
})

const pointsOf = (chunks: ReadonlyArray<ReadonlyArray<MetricsSink.Series>>) =>
  chunks.flatMap((chunk) =>
    chunk.flatMap((s) => s.points.map((p) => `${s.metric}|${s.tags.join(",")}|${p.timestamp}|${p.value}`))
  )

describe("MetricsSink", () => {
  it("aggregates samples: counts summed per second and tag set (in any tag order), a gauge keeps its last value", () => {
    const aggregated = MetricsSink.aggregate([
      { metric: "a", kind: "count", value: 1, timestamp: 100.2, tags: ["x:1", "y:2"] },
      { metric: "a", kind: "count", value: 2, timestamp: 100.9, tags: ["y:2", "x:1", "x:1"] },
      { metric: "a", kind: "count", value: 5, timestamp: 40, tags: ["x:1", "y:2"] },
      { metric: "g", kind: "gauge", value: 7, timestamp: 100, tags: [] },
      { metric: "g", kind: "gauge", value: 3, timestamp: 100, tags: [] }
    ])
    expect(aggregated).toEqual([
      {
        metric: "a",
        kind: "count",
        tags: ["x:1", "y:2"],
        points: [
          { timestamp: 40, value: 5 },
          { timestamp: 100, value: 3 }
        ]
      },
      { metric: "g", kind: "gauge", tags: [], points: [{ timestamp: 100, value: 3 }] }
    ])
  })

  it("encodes the v2 payload with Datadog's type codes", () => {
    expect(
      JSON.parse(MetricsSink.encodeV2Payload([{ ...series("a", 1), kind: "gauge", unit: "request" }]))
    ).toEqual({
      series: [
        {
          metric: "a",
          type: 3,
          points: [{ timestamp: 1_795_766_400, value: 1 }],
          tags: ["platform:web"],
          unit: "request"
        }
      ]
    })
  })

  it("packs payloads within the points and byte limits, cutting a long series, keeping every point once", () =>
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 400 }), fc.string({ maxLength: 60 })), {
          minLength: 1,
          maxLength: 30
        }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 2_000, max: 40_000 }),
        (shapes, maxPoints, maxBytes) => {
          const limits = {
            maxPointsPerPayload: maxPoints,
            maxUncompressedBytes: maxBytes,
            maxCompressedBytes: maxBytes
          }
          const input = shapes.map(([n, tag], i) => series(`m${i}`, n, 1_795_766_400, [tag]))
          const chunks = MetricsSink.chunkSeries(input, limits)
          expect(pointsOf(chunks)).toEqual(pointsOf([input]))
          for (const chunk of chunks) {
            expect(MetricsSink.countPoints(chunk)).toBeLessThanOrEqual(maxPoints)
            expect(Buffer.byteLength(MetricsSink.encodeV2Payload(chunk))).toBeLessThanOrEqual(maxBytes)
          }
        }
      ),
      { numRuns: 60 }
    ))

  it("packs to Datadog's 10,000 points per payload by default", () => {
    const chunks = MetricsSink.chunkSeries([series("a", 25_000)])
    expect(chunks.map(MetricsSink.countPoints)).toEqual([10_000, 10_000, 5_000])
  })

  it("halves a payload by points; a single point cannot be halved", () => {
    const halves = MetricsSink.halve([series("a", 3), series("b", 2)])
    expect(halves?.map(MetricsSink.countPoints)).toEqual([3, 2])
    expect(pointsOf(halves!)).toEqual(pointsOf([[series("a", 3), series("b", 2)]]))
    expect(MetricsSink.halve([series("a", 1)])).toBeUndefined()
  })

  it("splits points by the intake's window: at most an hour old, ten minutes ahead", () => {
    const now = 1_795_770_000
    const { current, outside } = MetricsSink.splitByWindow(
      [
        {
          metric: "a",
          kind: "count",
          tags: [],
          points: [now - 3601, now - 3600, now, now + 600, now + 601].map((timestamp) => ({
            timestamp,
            value: 1
          }))
        }
      ],
      now
    )
    expect(current[0]!.points.map((p) => p.timestamp)).toEqual([now - 3600, now, now + 600])
    expect(outside[0]!.points.map((p) => p.timestamp)).toEqual([now - 3601, now + 601])
  })

  it("says which failures a retry can help", () => {
    const error = (reason: MetricsSink.ErrorReason) =>
      new MetricsSink.MetricsSinkError({ sink: "s", reason, message: "" })
    expect(MetricsSink.ErrorReason.literals.filter((r) => error(r).isRetryable)).toEqual([
      "Throttled",
      "Unavailable"
    ])
  })
})
