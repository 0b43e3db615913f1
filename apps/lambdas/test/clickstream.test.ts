/**
 * The four clickstream functions over a memory `ClickstreamPipeline`'s layers, with events shaped
 * as AWS builds them (checked against Powertools' schemas): the cleaner puts a Kinesis batch into
 * the clean stream; the metrics function writes its lines to its own output; those lines, as a
 * subscription delivery, go through the forwarder into the intake; what the intake refused waits
 * in the spool until the retrier, on its schedule, delivers it. Configuration errors name their
 * variable.
 */
import { CloudWatchLogsSchema, EventBridgeSchema } from "@aws-lambda-powertools/parser/schemas"
import { describe, expect, it } from "@effect/vitest"
import { CloudWatchLogs } from "@spillway/core"
import { ClickstreamPipeline, MemoryMetricsIntake } from "@spillway/memory"
import { ClickstreamFixtures, EventFixtures } from "@spillway/testing"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Cleaner from "../src/functions/Cleaner.js"
import * as ClickstreamMetrics from "../src/functions/ClickstreamMetrics.js"
import * as Forwarder from "../src/functions/Forwarder.js"
import * as ForwardRetrier from "../src/functions/ForwardRetrier.js"
import { capture, context, invocationError, invoke, onTestClock, powertools } from "./fixtures/Events.js"

const start = Date.UTC(2026, 11, 2, 9, 0, 0)

const setup = Effect.gen(function* () {
  yield* TestClock.setTime(start)
  // The pipeline's own mappings poll once an hour: the handlers under test do the work.
  const pipeline = yield* ClickstreamPipeline.make({
    cleaner: { mapping: { pollIntervalMillis: 3_600_000 } },
    metrics: { mapping: { pollIntervalMillis: 3_600_000 } },
    retryIntervalMillis: 3_600_000
  })
  const out = capture()
  const handlers = {
    cleaner: Cleaner.make(yield* onTestClock(pipeline.layers.cleaner), {
      output: out.output,
      shutdown: false,
      env: { CLEAN_EVENT_TYPES: "page_view,add_to_cart,checkout,purchase,product_view,search" }
    }),
    metrics: ClickstreamMetrics.make(yield* onTestClock(pipeline.layers.metrics), {
      output: out.output,
      shutdown: false,
      env: { METRIC_FORMAT: "datadog", METRIC_TAGS: "env:test" }
    }),
    forwarder: Forwarder.make(yield* onTestClock(pipeline.layers.forwarder), {
      output: out.output,
      shutdown: false,
      env: {}
    }),
    retrier: ForwardRetrier.make(yield* onTestClock(pipeline.layers.forwardRetrier), {
      output: out.output,
      shutdown: false,
      env: {}
    })
  }
  for (const handler of Object.values(handlers))
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.dispose()))
  return { pipeline, out, handlers }
})

const subscriptionEvent = (lines: ReadonlyArray<string>): CloudWatchLogs.SubscriptionEvent => {
  const event = {
    awslogs: {
      data: CloudWatchLogs.encodeData({
        messageType: "DATA_MESSAGE",
        owner: "123456789012",
        logGroup: "/aws/lambda/clickstream-metrics",
        logStream: "2026/12/02/[$LATEST]0123456789abcdef",
        subscriptionFilters: ["to-forwarder"],
        logEvents: lines.map((message, i) => ({
          id: String(3_195_310_660_696_698_337_880_902_507_980_421_114n + BigInt(i)),
          timestamp: start,
          message
        }))
      })
    }
  }
  const parsed = CloudWatchLogsSchema.safeParse(event)
  if (!parsed.success)
    throw new Error(`not a subscription event as AWS builds it: ${JSON.stringify(parsed.error.issues)}`)
  return event
}

const scheduledEvent = {
  version: "0",
  id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event",
  source: "aws.events",
  account: "123456789012",
  time: "2026-12-02T09:05:00Z",
  region: "eu-west-1",
  resources: ["arn:aws:events:eu-west-1:123456789012:rule/spillway-forward-retrier"],
  detail: {}
}

const onClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < 5000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })

describe("clickstream functions", () => {
  it.effect(
    "cleaner → metrics → forwarder: a batch's metrics reach the intake, exactly the fixture's totals",
    () =>
      Effect.gen(function* () {
        const { pipeline, out, handlers } = yield* setup
        const events = ClickstreamFixtures.generate({
          seed: 21,
          events: 200,
          start: start - 30_000,
          concurrentSessions: 15
        })
        const raw = EventFixtures.kinesisEvent(
          events.map((e) => ({ partitionKey: e.sessionId, data: JSON.stringify(e.body) })),
          { streamArn: pipeline.raw.streamArn, arrivedAt: start - 1000 }
        )
        powertools.kinesis(raw)
        expect(yield* invoke(handlers.cleaner, raw, yield* context())).toEqual({ batchItemFailures: [] })
        const cleaned = out.logs().find((l) => String(l.message).startsWith("cleaned 200 events"))
        expect(cleaned).toMatchObject({ function: "cleaner", bot: ClickstreamFixtures.labels(events).bot })

        const cleanRecords = yield* pipeline.clean.records
        const cleanEvent = EventFixtures.kinesisEvent(
          cleanRecords.map((r) => ({ partitionKey: r.partitionKey, data: r.data })),
          { streamArn: pipeline.clean.streamArn }
        )
        powertools.kinesis(cleanEvent)
        out.clear()
        expect(yield* invoke(handlers.metrics, cleanEvent, yield* context())).toEqual({
          batchItemFailures: []
        })
        // Its log: metric lines next to its JSON logs and its EMF lines, as CloudWatch stores them.
        const metricLines = out.lines.filter((l) => l.startsWith('{"e":'))
        expect(metricLines.length).toBeGreaterThan(5)

        const response = yield* onClock(
          invoke(handlers.forwarder, subscriptionEvent(out.lines), yield* context())
        )
        // The function's own EMF line (namespace Spillway) stays in CloudWatch: skipped, not forwarded.
        expect(response).toMatchObject({
          metricLines: metricLines.length,
          skippedLines: 1,
          malformedLines: 0,
          spooled: 0
        })
        expect(response.delivered).toBe(response.points)
        const totals = MemoryMetricsIntake.totals(yield* pipeline.intake.points)
        expect(Object.fromEntries(totals)).toEqual(
          Object.fromEntries(ClickstreamFixtures.expected(events, "clickstream", ["env:test"]))
        )
      })
  )

  it.effect(
    "forwarder: an unreadable payload is reported, not thrown; refused points wait in the spool for the retrier",
    () =>
      Effect.gen(function* () {
        const { pipeline, out, handlers } = yield* setup
        const truncated = { awslogs: { data: subscriptionEvent(["x"]).awslogs.data.slice(0, 40) } }
        const answer = yield* invoke(handlers.forwarder, truncated, yield* context())
        expect(answer.invalidPayloads).toHaveLength(1)
        expect(out.logs().find((l) => l.level === "ERROR")?.message).toMatch(/^payload not readable: NotGzip/)

        yield* pipeline.intake.startOutage()
        const line = '{"e":1796202000,"m":"clickstream.events","t":["platform:web"],"v":4}'
        const refused = yield* onClock(
          invoke(handlers.forwarder, subscriptionEvent([line]), yield* context())
        )
        expect(refused).toMatchObject({ delivered: 0, spooled: 1, spoolKeys: 1 })
        expect(yield* pipeline.spool.size("pending")).toBe(1)

        yield* pipeline.intake.endOutage
        const parsed = EventBridgeSchema.safeParse(scheduledEvent)
        expect(parsed.success).toBe(true)
        const run = yield* onClock(invoke(handlers.retrier, scheduledEvent, yield* context()))
        expect(run).toMatchObject({ listed: 1, delivered: 1, deliveredPoints: 1 })
        expect(yield* pipeline.spool.size("pending")).toBe(0)
        expect((yield* pipeline.intake.points).map((p) => p.value)).toEqual([4])
      })
  )

  it.effect("say what is wrong with their configuration, naming the variable", () =>
    Effect.gen(function* () {
      const { pipeline } = yield* setup
      const noFormat = ClickstreamMetrics.make(pipeline.layers.metrics, {
        output: () => {},
        shutdown: false,
        env: {}
      })
      const badPii = Cleaner.make(pipeline.layers.cleaner, {
        output: () => {},
        shutdown: false,
        env: { CLEAN_PII_FIELDS: "sessionId" }
      })
      const badTags = ClickstreamMetrics.make(pipeline.layers.metrics, {
        output: () => {},
        shutdown: false,
        env: { METRIC_FORMAT: "emf", METRIC_TAGS: "env prod" }
      })
      const ctx = yield* context()
      expect((yield* invocationError(noFormat, EventFixtures.kinesisEvent([]), ctx)).message).toMatch(
        /METRIC_FORMAT/
      )
      expect((yield* invocationError(badPii, EventFixtures.kinesisEvent([]), ctx)).message).toMatch(
        /CLEAN_PII_FIELDS: "sessionId" cannot be removed/
      )
      expect((yield* invocationError(badTags, EventFixtures.kinesisEvent([]), ctx)).message).toMatch(
        /METRIC_TAGS/
      )
      for (const h of [noFormat, badPii, badTags]) yield* Effect.promise(() => h.dispose())
    })
  )
})
