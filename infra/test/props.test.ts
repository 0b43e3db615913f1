/**
 * Settings that cannot be deployed, or that the design forbids, stop the app while it is being
 * built (`cdk synth` fails) with a message naming the construct, the setting, the value given and
 * the limit; the limits themselves are accepted.
 */
import { App, Duration } from "aws-cdk-lib"
import { afterAll, describe, expect, it } from "vitest"
import { processorTimeout, sinkRetryBudget } from "../src/Processing.js"
import { SpillwayStack } from "../src/SpillwayStack.js"
import { dev, prodUs, type StageConfig } from "../src/Stages.js"
import { removeTemporaryFolders, temporaryFolder, testCodeDirectory } from "./support/synth.js"

afterAll(removeTemporaryFolders)

let count = 0
let outdir: string | undefined
// An App without `outdir` makes a folder under the OS's temporary folder and stages assets into it.
const build = (stage: StageConfig, codeDirectory = testCodeDirectory()): SpillwayStack => {
  outdir ??= temporaryFolder("spillway-infra-props-")
  return new SpillwayStack(new App({ outdir }), `Props${count++}`, { stage, codeDirectory })
}

const withClickstream = (clickstream: Partial<NonNullable<StageConfig["clickstream"]>>): StageConfig => ({
  ...dev,
  clickstream: { metricFormat: "emf", ...clickstream }
})

const withProcessing = (processing: StageConfig["processing"]): StageConfig => ({
  ...dev,
  processing: { ...dev.processing, ...processing }
})

describe("bad processing props fail synth with a clear message", () => {
  it("a batch size above 10,000 (or below 1)", () => {
    expect(() => build(withProcessing({ batchSize: 10_001 }))).toThrow(
      "Props0/Processing: batchSize must be a whole number from 1 to 10000, got 10001: Lambda's limit for Kinesis"
    )
    expect(() => build(withProcessing({ batchSize: 0 }))).toThrow(
      /batchSize must be a whole number from 1 to 10000, got 0/
    )
    expect(build(withProcessing({ batchSize: 10_000 })).processing).toBeDefined()
  })

  it("retry attempts out of range, infinite (-1) included", () => {
    expect(() => build(withProcessing({ retryAttempts: -1 }))).toThrow(
      /retryAttempts must be a whole number from 0 to 10000, got -1: a finite count \(-1, retrying until the record expires, lets one poison record block its shard/
    )
    expect(() => build(withProcessing({ retryAttempts: 10_001 }))).toThrow(/retryAttempts .* got 10001/)
    expect(() => build(withProcessing({ retryAttempts: 2.5 }))).toThrow(/retryAttempts .* got 2\.5/)
    expect(build(withProcessing({ retryAttempts: 0 })).processing).toBeDefined()
  })

  it("a batching window over 5 minutes", () => {
    expect(() => build(withProcessing({ maxBatchingWindow: Duration.seconds(301) }))).toThrow(
      /Processing: maxBatchingWindow must be from 0 seconds to 5 minutes, got 5 minutes 1 second: Lambda's limit/
    )
    expect(build(withProcessing({ maxBatchingWindow: Duration.minutes(5) })).processing).toBeDefined()
  })

  it("a function timeout shorter than the retry budget", () => {
    const budget = sinkRetryBudget.toHumanString()
    expect(() => build(withProcessing({ timeout: Duration.seconds(20) }))).toThrow(
      `Processing: timeout (20 seconds) is shorter than the sink's retry budget (${budget}): a write that is retrying would be cut off before its retries are spent. Use at least the budget; processorTimeout(budget) = ${processorTimeout().toHumanString()} also leaves room for the last request and the deadline margin`
    )
    // A stage's own budget (another schedule in its processor bundle) moves the floor with it.
    expect(() =>
      build(withProcessing({ retryBudget: Duration.seconds(60), timeout: Duration.seconds(59) }))
    ).toThrow(/timeout \(59 seconds\) is shorter than the sink's retry budget \(1 minute\)/)
    const atTheBudget = build(withProcessing({ timeout: sinkRetryBudget }))
    expect(atTheBudget.processing.timeout.toMilliseconds()).toBe(sinkRetryBudget.toMilliseconds())
    expect(() => build(withProcessing({ timeout: Duration.minutes(16) }))).toThrow(
      /timeout must be from 1 second to 15 minutes, got 16 minutes/
    )
  })

  it("a record age that is unbounded in Lambda's sense, too short, or not shorter than the stream's retention", () => {
    expect(() => build(withProcessing({ maxRecordAge: Duration.seconds(30) }))).toThrow(
      /maxRecordAge must be from 1 minute to 7 days, got 30 seconds/
    )
    expect(() => build(withProcessing({ maxRecordAge: Duration.hours(24) }))).toThrow(
      /maxRecordAge \(1 day\) must be shorter than the stream's retention \(1 day\): the failure reprocessor reads a failed batch back from the stream/
    )
  })

  it("a parallelization factor outside 1–10", () => {
    expect(() => build(withProcessing({ parallelizationFactor: 11 }))).toThrow(
      /parallelizationFactor must be a whole number from 1 to 10, got 11/
    )
  })
})

describe("other bad settings fail synth with a clear message", () => {
  it("a code directory without the bundles", () => {
    expect(() => build(dev, "/nonexistent/dist")).toThrow(
      /Ingestion\/Collector: codeDirectory has no collector bundle \(\/nonexistent\/dist\/collector\/index\.mjs is missing\): run `npm run build` first/
    )
  })

  it("a stage name that cannot name the stack, the domain and the alarms", () => {
    expect(() => build({ ...dev, name: "Dev_1" })).toThrow(
      /stage\.name must be 2–19 characters of a-z, 0-9 and '-'/
    )
  })

  it("stream capacity and retention outside Kinesis's limits", () => {
    expect(() =>
      build({ ...dev, ingestion: { ...dev.ingestion, capacity: { mode: "provisioned", shards: 0 } } })
    ).toThrow(/Ingestion: capacity\.shards must be a whole number from 1 to 10000, got 0/)
    expect(() => build({ ...dev, ingestion: { ...dev.ingestion, retention: Duration.hours(12) } })).toThrow(
      /Ingestion: retention must be from 1 day to 365 days, got 12 hours/
    )
  })

  it("a domain whose data nodes do not divide over its zones", () => {
    expect(() => build({ ...prodUs, search: { ...prodUs.search, dataNodes: 4 } })).toThrow(
      /Search: dataNodes must be a multiple of availabilityZones \(3\)/
    )
  })

  it("an archive prefix or lifecycle the replayer or S3 would not take", () => {
    expect(() => build({ ...dev, backup: { prefix: "archive" } })).toThrow(
      /Backup: prefix must be empty or folders ending in '\/'/
    )
    expect(() => build({ ...dev, backup: { glacierInstantRetrievalAfter: Duration.days(45) } })).toThrow(
      /glacierInstantRetrievalAfter \(45 days\) must be at least 30 days after infrequentAccessAfter \(30 days\)/
    )
  })
})

describe("bad clickstream props fail synth with a clear message", () => {
  it("a mapping's batch size, retries, record age or parallelization outside Lambda's limits", () => {
    expect(() => build(withClickstream({ cleaner: { batchSize: 10_001 } }))).toThrow(
      /\/Clickstream: cleaner\.batchSize must be a whole number from 1 to 10000, got 10001: Lambda's limit for Kinesis$/
    )
    expect(() => build(withClickstream({ metrics: { batchSize: 0 } }))).toThrow(
      /Clickstream: metrics\.batchSize must be a whole number from 1 to 10000, got 0/
    )
    expect(() => build(withClickstream({ cleaner: { retryAttempts: -1 } }))).toThrow(
      /Clickstream: cleaner\.retryAttempts must be a whole number from 0 to 10000, got -1: a finite count/
    )
    expect(() => build(withClickstream({ metrics: { maxRecordAge: Duration.seconds(30) } }))).toThrow(
      /Clickstream: metrics\.maxRecordAge must be from 1 minute to 7 days, got 30 seconds/
    )
    expect(() => build(withClickstream({ cleaner: { maxRecordAge: Duration.hours(24) } }))).toThrow(
      /Clickstream: cleaner\.maxRecordAge \(1 day\) must be shorter than the stream's retention \(1 day\)/
    )
    expect(() => build(withClickstream({ cleaner: { parallelizationFactor: 11 } }))).toThrow(
      /cleaner\.parallelizationFactor must be a whole number from 1 to 10, got 11/
    )
    expect(() => build(withClickstream({ metrics: { maxBatchingWindow: Duration.seconds(301) } }))).toThrow(
      /metrics\.maxBatchingWindow must be from 0 seconds to 5 minutes, got 5 minutes 1 second/
    )
    // The limits themselves are accepted; a longer retention allows a longer record age.
    const atLimits = build(
      withClickstream({
        rawStream: { retention: Duration.hours(48) },
        cleaner: { batchSize: 10_000, retryAttempts: 0, maxRecordAge: Duration.hours(47) }
      })
    )
    expect(atLimits.clickstream).toBeDefined()
  })

  it("streams outside Kinesis's limits", () => {
    expect(() =>
      build(withClickstream({ cleanStream: { capacity: { mode: "provisioned", shards: 0 } } }))
    ).toThrow(/Clickstream: cleanStream\.capacity\.shards must be a whole number from 1 to 10000, got 0/)
    expect(() => build(withClickstream({ rawStream: { retention: Duration.hours(12) } }))).toThrow(
      /Clickstream: rawStream\.retention must be from 1 day to 365 days, got 12 hours/
    )
  })

  it("cleaner settings the cleaner would refuse at start", () => {
    expect(() => build(withClickstream({ cleaner: { piiFields: ["sessionId"] } }))).toThrow(
      /Clickstream: cleaner\.piiFields "sessionId" cannot be removed: the metrics are keyed on it/
    )
    expect(() => build(withClickstream({ cleaner: { piiFields: [] } }))).toThrow(
      /cleaner\.piiFields must name at least one field: an empty CLEAN_PII_FIELDS reads as unset/
    )
    expect(() => build(withClickstream({ cleaner: { botUserAgents: "bot|(crawler" } }))).toThrow(
      /cleaner\.botUserAgents must be a regular expression, got "bot\|\(crawler": SyntaxError/
    )
    expect(() => build(withClickstream({ cleaner: { eventTypes: [] } }))).toThrow(
      /cleaner\.eventTypes must be "\*" or one or more event types/
    )
    expect(() => build(withClickstream({ cleaner: { maxEventAge: Duration.hours(2) } }))).toThrow(
      /cleaner\.maxEventAge must be from 1 second to 1 hour, got 2 hours: Datadog takes points up to an hour old/
    )
    expect(() => build(withClickstream({ cleaner: { maxClockSkew: Duration.millis(1500) } }))).toThrow(
      /cleaner\.maxClockSkew must be whole seconds, got 1 second 500 millis/
    )
    expect(() => build(withClickstream({ cleaner: { timeout: Duration.seconds(20) } }))).toThrow(
      /Clickstream: cleaner\.timeout \(20 seconds\) is shorter than the cleaner's put budget \(26 seconds\)/
    )
  })

  it("metric settings the metrics function or the forwarder would get wrong", () => {
    expect(() => build(withClickstream({ metrics: { tags: ["env prod"] } }))).toThrow(
      /Clickstream: metrics\.tags must be key:value tags .*got "env prod"/
    )
    expect(() => build(withClickstream({ metrics: { emfNamespace: "Spillway/dev" } }))).toThrow(
      /metrics\.emfNamespace \(Spillway\/dev\) must differ from the functions' METRICS_NAMESPACE: the forwarder would ship their operational metrics to Datadog/
    )
    expect(() => build(withClickstream({ metrics: { prefix: "1shop" } }))).toThrow(
      /metrics\.prefix must start with a letter/
    )
  })

  it("a forwarder that could be cut off before it spools, a retrier shorter than one entry, a bad site or prefix", () => {
    expect(() => build(withClickstream({ forwarder: { timeout: Duration.seconds(40) } }))).toThrow(
      "/Clickstream/Forwarder: timeout (40 seconds) is shorter than one payload's submit budget, last request and spool write (30 seconds + 10 seconds + 10 seconds): an invocation still retrying Datadog would be cut off before it spooled what it could not send. Use at least that; forwarderTimeout(requestTimeout) = 56 seconds also leaves the deadline margin"
    )
    expect(build(withClickstream({ forwarder: { timeout: Duration.seconds(50) } })).clickstream).toBeDefined()
    expect(() => build(withClickstream({ forwarder: { retrierTimeout: Duration.seconds(30) } }))).toThrow(
      /Forwarder: retrierTimeout must be from 56 seconds to 15 minutes, got 30 seconds/
    )
    expect(() => build(withClickstream({ forwarder: { site: "datadog com" } }))).toThrow(
      /Forwarder: site must be a Datadog site such as datadoghq\.com/
    )
    expect(() => build(withClickstream({ forwarder: { spoolPrefix: "spool" } }))).toThrow(
      /Forwarder: spoolPrefix must be folders ending in '\/'/
    )
    expect(() => build(withClickstream({ forwarder: { parkedExpiration: Duration.hours(36) } }))).toThrow(
      /Forwarder: parkedExpiration must be whole days/
    )
    expect(() =>
      build(
        withClickstream({ forwarder: { apiKeySecret: { kind: "existing", secretName: "shop datadog" } } })
      )
    ).toThrow(/Forwarder: apiKeySecret\.secretName must be a Secrets Manager secret name/)
  })

  it("alarm thresholds outside what the metrics can show", () => {
    expect(() =>
      build(withClickstream({ observability: { spoolAgeThreshold: Duration.seconds(30) } }))
    ).toThrow(
      /ClickstreamObservability: spoolAgeThreshold must be from 1 minute to 1 hour, got 30 seconds: the retrier reports every minute/
    )
  })
})
