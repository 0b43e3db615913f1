/**
 * Stages: where Spillway is deployed and with which settings. A stage is one region and the
 * settings of each part; each stage is its own stack (`Spillway-<name>`), deployed on its own
 * (`cdk deploy Spillway-<name>`). The original ran a collector per region: here that is one stage
 * per region, each a whole pipeline (`prod-us` and `prod-eu` below share their settings and differ
 * only by region).
 *
 * Every setting is optional; what a stage leaves out takes the default documented on the
 * construct's props (`IngestionSettings`, `ProcessingSettings`, `SearchDomainSettings`,
 * `BackupSettings`, `ObservabilitySettings`, `FunctionDefaults`). The clickstream metrics path is
 * deployed only on a stage that sets `clickstream` (`ClickstreamSettings`, whose `metricFormat`
 * it must name; here `dev` and `prod-us`).
 */
import { Duration } from "aws-cdk-lib"
import * as logs from "aws-cdk-lib/aws-logs"
import type { BackupSettings } from "./Backup.js"
import type { ClickstreamSettings } from "./Clickstream.js"
import type { ClickstreamObservabilitySettings } from "./ClickstreamObservability.js"
import type { IngestionSettings } from "./Ingestion.js"
import type { ObservabilitySettings } from "./Observability.js"
import type { ProcessingSettings } from "./Processing.js"
import type { SearchDomainSettings } from "./SearchDomain.js"
import type { FunctionDefaults } from "./SpillwayFunction.js"

/** The clickstream metrics path of a stage, with its alarms' thresholds. */
export interface ClickstreamStageSettings extends ClickstreamSettings {
  /** @default the defaults of `ClickstreamObservabilitySettings` */
  readonly observability?: ClickstreamObservabilitySettings
}

export interface StageConfig {
  /** 2–19 characters of a-z, 0-9 and '-': the stack is `Spillway-<name>`, the domain `spillway-<name>`. */
  readonly name: string
  /** The AWS region the whole stage runs in. */
  readonly region: string
  /** The account. @default the account of the credentials `cdk deploy` runs with */
  readonly account?: string
  /**
   * Keep the stream, queues, key store, archive (bucket and key) and domain when the stack is
   * deleted. With `false` they are deleted with it (the archive bucket only once emptied).
   * @default true
   */
  readonly retainData?: boolean
  /** `METRICS_NAMESPACE` of every function, and the namespace the alarms read. @default "Spillway/<name>" */
  readonly metricsNamespace?: string
  /** @default the defaults of `FunctionDefaults` */
  readonly functions?: Omit<FunctionDefaults, "metricsNamespace">
  readonly ingestion?: IngestionSettings
  readonly processing?: ProcessingSettings
  readonly search?: SearchDomainSettings
  readonly backup?: BackupSettings
  readonly observability?: ObservabilitySettings
  /** The clickstream metrics path (README "Clickstream metrics"). @default none: the stage has no clickstream resources */
  readonly clickstream?: ClickstreamStageSettings
}

/** A small, cheap stage: one search node, a function URL, data deleted with the stack. */
export const dev: StageConfig = {
  name: "dev",
  region: "eu-west-1",
  retainData: false,
  functions: { logRetention: logs.RetentionDays.ONE_WEEK },
  ingestion: {
    capacity: { mode: "on-demand" },
    retention: Duration.hours(24),
    endpoint: { kind: "function-url" },
    apiKeys: { kind: "ssm-parameter" }
  },
  // Records older than 6 hours go to the on-failure queue, well inside the 24 hours the stream keeps them.
  processing: { maxRecordAge: Duration.hours(6) },
  search: {
    dataNodes: 1,
    dataNodeInstanceType: "t3.small.search",
    availabilityZones: 1,
    volumeSizeGiB: 10
  },
  backup: { expireAfter: Duration.days(120) },
  // EMF lines: CloudWatch builds the clickstream metrics too, so dev shows them without Datadog.
  clickstream: { metricFormat: "emf", metrics: { tags: ["env:dev"] } }
}

/** Production settings: provisioned shards read through an enhanced fan-out consumer, a three-zone domain. */
const production: Omit<StageConfig, "name" | "region"> = {
  retainData: true,
  ingestion: {
    capacity: { mode: "provisioned", shards: 4 },
    retention: Duration.days(7),
    endpoint: { kind: "http-api", rateLimit: 2000, burstLimit: 5000 },
    apiKeys: { kind: "secrets-manager" }
  },
  processing: {
    reader: "enhanced-fan-out",
    batchSize: 500,
    parallelizationFactor: 2,
    retryAttempts: 5,
    maxRecordAge: Duration.hours(12)
  },
  search: {
    dataNodes: 3,
    dataNodeInstanceType: "r7g.large.search",
    masterNodes: 3,
    masterNodeInstanceType: "m7g.large.search",
    availabilityZones: 3,
    volumeSizeGiB: 200
  },
  backup: { expireAfter: Duration.days(365) },
  observability: { delayP99Threshold: Duration.seconds(2) }
}

export const prodUs: StageConfig = {
  name: "prod-us",
  region: "us-east-1",
  ...production,
  // One production stage with the clickstream path (prod-eu shows a stage without it). Datadog
  // lines: no CloudWatch custom metrics for what Datadog already shows; two shards per stream,
  // twice the capacity the simulator's peak needs (950 events/s on one shard).
  clickstream: {
    metricFormat: "datadog",
    rawStream: { capacity: { mode: "provisioned", shards: 2 } },
    cleanStream: { capacity: { mode: "provisioned", shards: 2 } },
    metrics: { tags: ["env:prod"] }
  }
}
export const prodEu: StageConfig = { name: "prod-eu", region: "eu-central-1", ...production }

/** Every stage `npm run synth` synthesizes and `cdk deploy Spillway-<name>` deploys. */
export const stages: ReadonlyArray<StageConfig> = [dev, prodUs, prodEu]
