/**
 * Template assertions for the clickstream path on the stages that deploy it (dev, prod-us) and its
 * absence on the one that does not (prod-eu): the streams, both event source mappings and their
 * on-failure destinations exactly, the metrics log group's subscription filter (its pattern
 * checked against the lines `MetricLine` writes), the forwarder's asynchronous invocation
 * settings, the spool bucket's lifecycle and policies, the key secret, the retrier's schedule and
 * concurrency, every role's whole policy, and each alarm.
 */

import { Forward, MetricLine, MetricSpool, RetrySpool, Schedules } from "@spillway/core"
import { App, Duration as CdkDuration } from "aws-cdk-lib"
import { Match, Template } from "aws-cdk-lib/assertions"
import type { IConstruct } from "constructs"
import { Duration } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import type { Clickstream } from "../src/Clickstream.js"
import { cleanerTimeout, cleanPutBudget } from "../src/Clickstream.js"
import {
  forwarderMinimum,
  forwarderTimeout,
  metricLinePattern,
  metricsSubmitBudget,
  spoolWriteAllowance
} from "../src/MetricsForwarder.js"
import type { SpillwayFunction } from "../src/SpillwayFunction.js"
import { SpillwayStack } from "../src/SpillwayStack.js"
import { dev, prodEu, prodUs } from "../src/Stages.js"
import {
  removeTemporaryFolders,
  stackOf as stackIn,
  synthesizeAll,
  temporaryFolder,
  testCodeDirectory
} from "./support/synth.js"
import {
  envOf,
  getAtt,
  grants,
  logicalId,
  onlyResource,
  ref,
  resource,
  type Statement,
  statementsOf
} from "./support/template.js"

const synthesized = synthesizeAll()
afterAll(removeTemporaryFolders)
const stackOf = (name: string): SpillwayStack => stackIn(synthesized, name)
const clickstreamOf = (stack: SpillwayStack): Clickstream => {
  if (stack.clickstream === undefined) throw new Error(`${stack.stage.name} has no clickstream path`)
  return stack.clickstream
}
const devStack = stackOf("dev")
const prodStack = stackOf("prod-us")
const devTemplate = synthesized.template(dev)
const prodTemplate = synthesized.template(prodUs)
const devClick = clickstreamOf(devStack)
const prodClick = clickstreamOf(prodStack)

const logsGrant = (fn: SpillwayFunction) => ({
  actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
  resource: getAtt(fn.logGroup)
})
const sendToQueue = (queue: IConstruct) => ({
  actions: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
  resource: getAtt(queue)
})
/** What CDK's Kinesis event source grants the mapping's function on the stream it reads. */
const streamReads = (stream: IConstruct) => ({
  actions: [
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamConsumer",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
    "kinesis:ListStreams",
    "kinesis:SubscribeToShard"
  ],
  resource: getAtt(stream)
})
const spoolObjects = (click: Clickstream, area: "pending" | "parked") => ({
  "Fn::Join": ["", [getAtt(click.forwarder.bucket), `/metric-spool/${area}/*`]]
})
const sorted = <A>(items: ReadonlyArray<A>) =>
  [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

describe("the stages that deploy it", () => {
  it("dev and prod-us have the clickstream path; prod-eu has none of it", () => {
    expect(stackOf("prod-eu").clickstream).toBeUndefined()
    const prodEuTemplate = synthesized.template(prodEu)
    prodEuTemplate.resourceCountIs("AWS::Kinesis::Stream", 1)
    prodEuTemplate.resourceCountIs("AWS::Logs::SubscriptionFilter", 0)
    prodEuTemplate.resourceCountIs("AWS::Events::Rule", 0)
    prodEuTemplate.resourceCountIs("AWS::Lambda::Function", 5)
    for (const template of [devTemplate, prodTemplate]) {
      template.resourceCountIs("AWS::Kinesis::Stream", 3)
      template.resourceCountIs("AWS::Logs::SubscriptionFilter", 1)
      template.resourceCountIs("AWS::Lambda::Function", 9)
    }
  })
})

describe("streams", () => {
  it("raw and clean: on-demand for dev, 2 provisioned shards for prod-us, encrypted with aws/kinesis, 24 hours", () => {
    for (const stream of [devClick.rawStream, devClick.cleanStream]) {
      expect(resource(devTemplate, logicalId(stream)).Properties).toEqual({
        RetentionPeriodHours: 24,
        StreamEncryption: { EncryptionType: "KMS", KeyId: "alias/aws/kinesis" },
        StreamModeDetails: { StreamMode: "ON_DEMAND" },
        Tags: [{ Key: "spillway:stage", Value: "dev" }]
      })
    }
    for (const stream of [prodClick.rawStream, prodClick.cleanStream]) {
      expect(resource(prodTemplate, logicalId(stream))).toMatchObject({
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
        Properties: {
          RetentionPeriodHours: 24,
          ShardCount: 2,
          StreamEncryption: { EncryptionType: "KMS", KeyId: "alias/aws/kinesis" },
          StreamModeDetails: { StreamMode: "PROVISIONED" }
        }
      })
    }
  })
})

describe("cleaner", () => {
  it("its mapping on the raw stream: batch 200, bisect, partial batch responses, 3 retries, 1 hour, on-failure queue", () => {
    for (const [stack, template, click] of [
      [devStack, devTemplate, devClick],
      [prodStack, prodTemplate, prodClick]
    ] as const) {
      const mapping = onlyResource(template, "AWS::Lambda::EventSourceMapping", {
        FunctionName: ref(click.cleaner.function)
      })
      expect(mapping.Properties).toEqual({
        EventSourceArn: getAtt(click.rawStream),
        FunctionName: ref(click.cleaner.function),
        StartingPosition: "TRIM_HORIZON",
        BatchSize: 200,
        MaximumBatchingWindowInSeconds: 0,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 3,
        MaximumRecordAgeInSeconds: 3600,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        ParallelizationFactor: 1,
        DestinationConfig: { OnFailure: { Destination: getAtt(click.cleanerOnFailureQueue) } },
        Tags: [{ Key: "spillway:stage", Value: stack.stage.name }]
      })
    }
  })

  it("its on-failure queue: encrypted, 14 days, its own DLQ after 10 receives, no consumer (SQS's visibility)", () => {
    expect(resource(devTemplate, logicalId(devClick.cleanerOnFailureQueue)).Properties).toEqual({
      MessageRetentionPeriod: 1_209_600,
      RedrivePolicy: {
        deadLetterTargetArn: getAtt(devClick.cleanerOnFailureDeadLetterQueue),
        maxReceiveCount: 10
      },
      SqsManagedSseEnabled: true,
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(devTemplate, logicalId(devClick.cleanerOnFailureDeadLetterQueue)).Properties).toEqual({
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true,
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
  })

  it("writes to the clean stream by ARN; its timeout leaves room for the put budget, a last request and the margin", () => {
    expect(envOf(devTemplate, devClick.cleaner)).toEqual({
      METRICS_NAMESPACE: "Spillway/dev",
      STREAM_ARN: getAtt(devClick.cleanStream),
      REPORT_BATCH_ITEM_FAILURES: "true"
    })
    // cleanPut has sinkWrite's shape: 26 s; (26 s + a 25 s PutRecords) / 0.9, rounded up.
    expect(cleanPutBudget.toMilliseconds()).toBe(Duration.toMillis(Schedules.sinkWriteBudget))
    expect(cleanerTimeout().toSeconds()).toBe(Math.ceil((26 + 25) / 0.9))
    expect(resource(devTemplate, logicalId(devClick.cleaner.function)).Properties.Timeout).toBe(57)
  })

  it("its role: put records into the clean stream, read the raw stream, its on-failure queue, its logs", () => {
    for (const [template, click] of [
      [devTemplate, devClick],
      [prodTemplate, prodClick]
    ] as const) {
      expect(grants(statementsOf(template, click.cleaner.role))).toEqual(
        sorted([
          { actions: ["kinesis:PutRecords"], resource: getAtt(click.cleanStream) },
          streamReads(click.rawStream),
          sendToQueue(click.cleanerOnFailureQueue),
          logsGrant(click.cleaner)
        ])
      )
    }
  })
})

describe("metrics function", () => {
  it("its mapping on the clean stream: the same safe settings, its own on-failure queue", () => {
    const mapping = onlyResource(devTemplate, "AWS::Lambda::EventSourceMapping", {
      FunctionName: ref(devClick.metrics.function)
    })
    expect(mapping.Properties).toEqual({
      EventSourceArn: getAtt(devClick.cleanStream),
      FunctionName: ref(devClick.metrics.function),
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 200,
      MaximumBatchingWindowInSeconds: 0,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 3600,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: getAtt(devClick.metricsOnFailureQueue) } },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(devTemplate, logicalId(devClick.metricsOnFailureQueue)).Properties).toMatchObject({
      RedrivePolicy: {
        deadLetterTargetArn: getAtt(devClick.metricsOnFailureDeadLetterQueue),
        maxReceiveCount: 10
      }
    })
  })

  it("EMF lines in dev, Datadog lines in prod-us, each stage's tag, its EMF namespace apart from METRICS_NAMESPACE", () => {
    expect(envOf(devTemplate, devClick.metrics)).toEqual({
      METRICS_NAMESPACE: "Spillway/dev",
      METRIC_FORMAT: "emf",
      CLICKSTREAM_EMF_NAMESPACE: "Clickstream",
      METRIC_TAGS: "env:dev",
      REPORT_BATCH_ITEM_FAILURES: "true"
    })
    expect(envOf(prodTemplate, prodClick.metrics)).toEqual({
      METRICS_NAMESPACE: "Spillway/prod-us",
      METRIC_FORMAT: "datadog",
      CLICKSTREAM_EMF_NAMESPACE: "Clickstream",
      METRIC_TAGS: "env:prod",
      REPORT_BATCH_ITEM_FAILURES: "true"
    })
    expect(resource(devTemplate, logicalId(devClick.metrics.function)).Properties.Timeout).toBe(30)
  })

  it("logs into an explicit log group with the stage's retention: the group the forwarder is subscribed to", () => {
    for (const [template, click, days] of [
      [devTemplate, devClick, 7],
      [prodTemplate, prodClick, 30]
    ] as const) {
      expect(resource(template, logicalId(click.metrics.logGroup)).Properties.RetentionInDays).toBe(days)
      expect(resource(template, logicalId(click.metrics.function)).Properties.LoggingConfig).toEqual({
        LogFormat: "JSON",
        ApplicationLogLevel: "INFO",
        SystemLogLevel: "WARN",
        LogGroup: ref(click.metrics.logGroup)
      })
    }
  })

  it("its role: read the clean stream, its on-failure queue, its logs; no network call needs anything else", () => {
    expect(grants(statementsOf(devTemplate, devClick.metrics.role))).toEqual(
      sorted([
        streamReads(devClick.cleanStream),
        sendToQueue(devClick.metricsOnFailureQueue),
        logsGrant(devClick.metrics)
      ])
    )
  })
})

/**
 * What the filter pattern below selects, read as CloudWatch Logs reads a JSON pattern: the event
 * must be JSON, and `_aws.Timestamp` a number ≥ 0, or `m` a string and `e` a number ≥ 0.
 */
const selectedByPattern = (message: string): boolean => {
  let value: unknown
  try {
    value = JSON.parse(message)
  } catch {
    return false
  }
  if (typeof value !== "object" || value === null) return false
  const line = value as { _aws?: { Timestamp?: unknown }; m?: unknown; e?: unknown }
  const emf = typeof line._aws?.Timestamp === "number" && line._aws.Timestamp >= 0
  const datadog = typeof line.m === "string" && typeof line.e === "number" && line.e >= 0
  return emf || datadog
}

describe("subscription filter", () => {
  const pattern = '{ ($._aws.Timestamp >= 0) || (($.m = "*") && ($.e >= 0)) }'

  it("on the metrics function's log group, to the forwarder, with the metric-line pattern", () => {
    for (const [template, click] of [
      [devTemplate, devClick],
      [prodTemplate, prodClick]
    ] as const) {
      const filter = onlyResource(template, "AWS::Logs::SubscriptionFilter", {})
      expect(filter.Properties).toEqual({
        LogGroupName: ref(click.metrics.logGroup),
        DestinationArn: getAtt(click.forwarder.forwarder.function),
        FilterName: "spillway-metric-lines",
        FilterPattern: pattern
      })
      // The permission must exist before CloudWatch Logs checks the destination.
      const permission = onlyResource(template, "AWS::Lambda::Permission", {
        Principal: "logs.amazonaws.com"
      })
      expect(permission.Properties).toEqual({
        Action: "lambda:InvokeFunction",
        FunctionName: getAtt(click.forwarder.forwarder.function),
        Principal: "logs.amazonaws.com",
        SourceArn: getAtt(click.metrics.logGroup)
      })
      expect(resource(template, logicalId(click.forwarder.subscription)).DependsOn).toEqual([
        logicalId(click.forwarder.subscription.node.findChild("CanInvokeLambda"))
      ])
    }
    expect(metricLinePattern.logPatternString).toBe(pattern)
  })

  it("selects every line either format writes, and the forwarder reads each of them as samples", () => {
    const samples = [
      {
        metric: "clickstream.events",
        kind: "count" as const,
        value: 42,
        timestamp: 1_795_766_400,
        tags: ["event_type:page_view", "platform:web"]
      },
      {
        metric: "clickstream.checkouts",
        kind: "count" as const,
        value: 3,
        timestamp: 1_795_766_460,
        tags: ["platform:ios"]
      },
      { metric: "clickstream.gauge", kind: "gauge" as const, value: 1.5, timestamp: 1_795_766_460, tags: [] }
    ]
    const lines = [
      ...MetricLine.encode(samples, "datadog", "Clickstream"),
      ...MetricLine.encode(samples, "emf", "Clickstream")
    ]
    expect(lines.length).toBeGreaterThanOrEqual(5)
    for (const line of lines) {
      expect(selectedByPattern(line), line).toBe(true)
      expect(MetricLine.parse(line, { namespaces: new Set(["Clickstream"]) })._tag, line).toBe("Samples")
    }
  })

  it("leaves the function's own logs in the log group (lines the forwarder would skip anyway)", () => {
    const ownLogs = [
      '{"timestamp":"2026-11-27T08:00:00.000Z","level":"INFO","requestId":"c0ffee","message":"derived 12 metric points from 200 events (0 already counted) into 5 lines","function":"metrics","events":200,"lines":5}',
      '{"timestamp":"2026-11-27T08:00:00.000Z","level":"ERROR","requestId":"c0ffee","message":"clean record not readable, skipped: not JSON","function":"metrics","sequenceNumber":"4955"}',
      "START RequestId: c0ffee Version: $LATEST",
      "REPORT RequestId: c0ffee\tDuration: 12.3 ms\tBilled Duration: 13 ms"
    ]
    for (const line of ownLogs) {
      expect(selectedByPattern(line), line).toBe(false)
      expect(MetricLine.parse(line)._tag, line).toBe("NotMetric")
    }
  })
})

describe("forwarder", () => {
  it("its timeout: the submit budget from Schedules, a last request and the spool write, after the deadline margin", () => {
    expect(metricsSubmitBudget.toMilliseconds()).toBe(Duration.toMillis(Schedules.metricsSubmitBudget))
    expect(forwarderMinimum().toSeconds()).toBe(30 + 10 + spoolWriteAllowance.toSeconds())
    expect(forwarderTimeout().toSeconds()).toBe(Math.ceil((30 + 10 + 10) / 0.9))
    for (const [template, click] of [
      [devTemplate, devClick],
      [prodTemplate, prodClick]
    ] as const) {
      const timeout = resource(template, logicalId(click.forwarder.forwarder.function)).Properties.Timeout
      expect(timeout).toBe(56)
      expect(timeout as number).toBeGreaterThanOrEqual(forwarderMinimum().toSeconds())
    }
  })

  it("asynchronous invocations: 2 retries over up to 6 hours, then the on-failure queue", () => {
    expect(
      onlyResource(devTemplate, "AWS::Lambda::EventInvokeConfig", {
        FunctionName: ref(devClick.forwarder.forwarder.function)
      }).Properties
    ).toEqual({
      FunctionName: ref(devClick.forwarder.forwarder.function),
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 21_600,
      DestinationConfig: { OnFailure: { Destination: getAtt(devClick.forwarder.onFailureQueue) } }
    })
    expect(resource(devTemplate, logicalId(devClick.forwarder.onFailureQueue)).Properties).toEqual({
      MessageRetentionPeriod: 1_209_600,
      RedrivePolicy: {
        deadLetterTargetArn: getAtt(devClick.forwarder.onFailureDeadLetterQueue),
        maxReceiveCount: 10
      },
      SqsManagedSseEnabled: true,
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
  })

  it("its variables: the site, the key's secret, the request timeout, the spool, the namespaces the metrics use", () => {
    expect(envOf(devTemplate, devClick.forwarder.forwarder)).toEqual({
      METRICS_NAMESPACE: "Spillway/dev",
      DD_SITE: "datadoghq.com",
      DD_API_KEY_SECRET_ID: ref(devClick.forwarder.node.findChild("DatadogApiKey")),
      DD_TIMEOUT_MS: "10000",
      SPOOL_BUCKET: ref(devClick.forwarder.bucket),
      SPOOL_PREFIX: "metric-spool/",
      FORWARD_EMF_NAMESPACES: envOf(devTemplate, devClick.metrics).CLICKSTREAM_EMF_NAMESPACE
    })
    expect(
      resource(devTemplate, logicalId(devClick.forwarder.forwarder.function)).Properties
    ).not.toHaveProperty("ReservedConcurrentExecutions")
  })

  it("its role: put under pending/ and parked/, read the key, its on-failure destination, its logs", () => {
    const click = prodClick
    expect(grants(statementsOf(prodTemplate, click.forwarder.forwarder.role))).toEqual(
      sorted([
        {
          actions: ["s3:PutObject"],
          resource: [spoolObjects(click, "pending"), spoolObjects(click, "parked")]
        },
        {
          actions: ["secretsmanager:GetSecretValue"],
          resource: ref(click.forwarder.node.findChild("DatadogApiKey"))
        },
        sendToQueue(click.forwarder.onFailureQueue),
        logsGrant(click.forwarder.forwarder)
      ])
    )
  })
})

describe("spool bucket", () => {
  it("no public access, SSE-S3, owner-enforced; parked/ expires after 90 days, pending/ never", () => {
    const bucket = resource(devTemplate, logicalId(devClick.forwarder.bucket))
    expect(bucket.Properties).toEqual({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }]
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      LifecycleConfiguration: {
        Rules: [
          { Id: "parked-expiry", Status: "Enabled", Prefix: "metric-spool/parked/", ExpirationInDays: 90 }
        ]
      },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(prodTemplate, logicalId(prodClick.forwarder.bucket))).toMatchObject({
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain"
    })
    // The keys the spool writes: the rule's prefix takes every parked entry and no pending one.
    const at = Date.UTC(2026, 10, 27, 8, 0, 0)
    const parked = MetricSpool.entryKey("metric-spool/", "parked", at, "3f2a")
    const pending = MetricSpool.entryKey("metric-spool/", "pending", at, "3f2a")
    const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Array<{ Prefix: string }> }).Rules
    expect(rules.filter((rule) => parked.startsWith(rule.Prefix))).toHaveLength(1)
    expect(rules.filter((rule) => pending.startsWith(rule.Prefix))).toEqual([])
  })

  it("its policy refuses requests without TLS, on the bucket and its objects", () => {
    const policy = onlyResource(devTemplate, "AWS::S3::BucketPolicy", {
      Bucket: ref(devClick.forwarder.bucket)
    })
    expect(policy.Properties.PolicyDocument).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Deny",
          Principal: { AWS: "*" },
          Action: "s3:*",
          Condition: { Bool: { "aws:SecureTransport": "false" } },
          Resource: [
            getAtt(devClick.forwarder.bucket),
            { "Fn::Join": ["", [getAtt(devClick.forwarder.bucket), "/*"]] }
          ]
        }
      ]
    })
  })

  it("the roles' object patterns cover exactly the keys the spool writes in each area", () => {
    const at = Date.UTC(2026, 10, 27, 8, 0, 0)
    const suffix = (join: unknown) => (join as { "Fn::Join": [string, [unknown, string]] })["Fn::Join"][1][1]
    for (const area of ["pending", "parked"] as const) {
      const pattern = suffix(spoolObjects(devClick, area)).replace(/^\//, "")
      const key = MetricSpool.entryKey("metric-spool/", area, at, "3f2a")
      expect(pattern.endsWith("*")).toBe(true)
      expect(key.startsWith(pattern.slice(0, -1))).toBe(true)
      const other = MetricSpool.entryKey(
        "metric-spool/",
        area === "pending" ? "parked" : "pending",
        at,
        "3f2a"
      )
      expect(other.startsWith(pattern.slice(0, -1))).toBe(false)
    }
  })
})

describe("Datadog API key secret", () => {
  it("created with no value at all (nothing a deployment would write over the key an operator put)", () => {
    const secret = resource(devTemplate, logicalId(devClick.forwarder.node.findChild("DatadogApiKey")))
    expect(secret.Type).toBe("AWS::SecretsManager::Secret")
    expect(secret.Properties).not.toHaveProperty("SecretString")
    expect(secret.Properties).not.toHaveProperty("GenerateSecretString")
    expect(
      resource(prodTemplate, logicalId(prodClick.forwarder.node.findChild("DatadogApiKey")))
    ).toMatchObject({
      DeletionPolicy: "Retain"
    })
    expect(devTemplate.toJSON().Outputs.DatadogApiKeySecretId.Value).toEqual(
      ref(devClick.forwarder.node.findChild("DatadogApiKey"))
    )
  })

  it("or an existing secret named: no secret created, both functions read that name's ARN", () => {
    const stage = {
      ...dev,
      name: "named-key",
      clickstream: {
        metricFormat: "datadog" as const,
        forwarder: { apiKeySecret: { kind: "existing" as const, secretName: "shop/datadog-api-key" } }
      }
    }
    const stack = new SpillwayStack(new App({ outdir: temporaryFolder("spillway-infra-named-") }), "Named", {
      stage,
      codeDirectory: testCodeDirectory()
    })
    const template = Template.fromStack(stack)
    template.resourceCountIs("AWS::SecretsManager::Secret", 0)
    const click = clickstreamOf(stack)
    const arn = {
      "Fn::Join": [
        "",
        [
          "arn:",
          { Ref: "AWS::Partition" },
          ":secretsmanager:eu-west-1:",
          { Ref: "AWS::AccountId" },
          ":secret:shop/datadog-api-key-??????"
        ]
      ]
    }
    for (const fn of [click.forwarder.forwarder, click.forwarder.retrier]) {
      expect(envOf(template, fn).DD_API_KEY_SECRET_ID).toBe("shop/datadog-api-key")
      expect(grants(statementsOf(template, fn.role))).toContainEqual({
        actions: ["secretsmanager:GetSecretValue"],
        resource: arn
      })
    }
    expect(template.toJSON().Outputs.DatadogApiKeySecretId.Value).toBe("shop/datadog-api-key")
  })
})

describe("forward retrier", () => {
  it("an EventBridge rule every minute (Schedules.spoolRetryInterval) invokes it, with the rule's permission", () => {
    expect(Duration.toMillis(Schedules.spoolRetryInterval)).toBe(60_000)
    const rule = onlyResource(devTemplate, "AWS::Events::Rule", {})
    expect(rule.Properties).toEqual({
      Description: "Spillway forward retrier: every minute (Schedules.spoolRetryInterval)",
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
      Targets: [
        {
          Arn: getAtt(devClick.forwarder.retrier.function),
          Id: "Target0",
          RetryPolicy: { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 2 }
        }
      ],
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(
      onlyResource(devTemplate, "AWS::Lambda::Permission", { Principal: "events.amazonaws.com" }).Properties
    ).toEqual({
      Action: "lambda:InvokeFunction",
      FunctionName: getAtt(devClick.forwarder.retrier.function),
      Principal: "events.amazonaws.com",
      SourceArn: getAtt(devClick.forwarder.schedule)
    })
  })

  it("one run at a time, 5 minutes each; a tick that finds a run still going is not retried and is dropped after a minute", () => {
    const fn = devClick.forwarder.retrier
    expect(resource(devTemplate, logicalId(fn.function)).Properties).toMatchObject({
      ReservedConcurrentExecutions: 1,
      Timeout: 300
    })
    expect(
      onlyResource(devTemplate, "AWS::Lambda::EventInvokeConfig", { FunctionName: ref(fn.function) })
        .Properties
    ).toEqual({
      FunctionName: ref(fn.function),
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60
    })
    expect(envOf(devTemplate, fn)).toEqual({
      METRICS_NAMESPACE: "Spillway/dev",
      DD_SITE: "datadoghq.com",
      DD_API_KEY_SECRET_ID: ref(devClick.forwarder.node.findChild("DatadogApiKey")),
      DD_TIMEOUT_MS: "10000",
      SPOOL_BUCKET: ref(devClick.forwarder.bucket),
      SPOOL_PREFIX: "metric-spool/"
    })
  })

  it("its role: list pending/ only, read and delete there, put in both areas, read the key, its logs", () => {
    const click = devClick
    expect(grants(statementsOf(devTemplate, click.forwarder.retrier.role))).toEqual(
      sorted([
        {
          actions: ["s3:ListBucket"],
          resource: getAtt(click.forwarder.bucket),
          condition: { StringLike: { "s3:prefix": ["metric-spool/pending/*"] } }
        },
        { actions: ["s3:DeleteObject", "s3:GetObject"], resource: spoolObjects(click, "pending") },
        {
          actions: ["s3:PutObject"],
          resource: [spoolObjects(click, "pending"), spoolObjects(click, "parked")]
        },
        {
          actions: ["secretsmanager:GetSecretValue"],
          resource: ref(click.forwarder.node.findChild("DatadogApiKey"))
        },
        logsGrant(click.forwarder.retrier)
      ])
    )
    // No role of the clickstream path holds a wildcard action.
    const actions = [
      click.cleaner,
      click.metrics,
      click.forwarder.forwarder,
      click.forwarder.retrier
    ].flatMap((fn) =>
      statementsOf(devTemplate, fn.role).flatMap((statement: Statement) =>
        typeof statement.Action === "string" ? [statement.Action] : [...statement.Action]
      )
    )
    expect(actions.filter((action) => action.includes("*"))).toEqual([])
  })
})

describe("ClickstreamObservability", () => {
  const alarmNamed = (name: string) =>
    onlyResource(devTemplate, "AWS::CloudWatch::Alarm", { AlarmName: name }).Properties
  const topic = ref(devStack.observability.topic)
  const lambdaMetric = (metric: string, fn: SpillwayFunction) => ({
    Namespace: "AWS/Lambda",
    MetricName: metric,
    Dimensions: [{ Name: "FunctionName", Value: ref(fn.function) }]
  })
  const emf = (metric: string, fn: string) => ({
    Namespace: "Spillway/dev",
    MetricName: metric,
    Dimensions: [{ Name: "function", Value: fn }]
  })
  const queueDepth = (queue: IConstruct) => ({
    Namespace: "AWS/SQS",
    MetricName: "ApproximateNumberOfMessagesVisible",
    Dimensions: [{ Name: "QueueName", Value: getAtt(queue, "QueueName") }],
    Statistic: "Maximum",
    Period: 60,
    Threshold: 1
  })

  it("19 alarms, every one to the stage's alarm topic on alarm and on OK, at the threshold or above", () => {
    const names = Object.values(devTemplate.findResources("AWS::CloudWatch::Alarm"))
      .map((alarm) => alarm.Properties.AlarmName as string)
      .filter((name) => name.startsWith("spillway-dev-clickstream-"))
      .sort()
    expect(names).toEqual(
      [
        "cleaner-iterator-age",
        "metrics-iterator-age",
        "cleaner-errors",
        "metrics-errors",
        "forwarder-errors",
        "forward-retrier-errors",
        "cleaner-throttles",
        "metrics-throttles",
        "forwarder-throttles",
        "spool-oldest-age",
        "forwarder-points-parked",
        "forwarder-malformed-lines",
        "forwarder-invalid-payloads",
        "cleaner-on-failure-queue-depth",
        "metrics-on-failure-queue-depth",
        "forwarder-on-failure-queue-depth",
        "cleaner-on-failure-dead-letters-depth",
        "metrics-on-failure-dead-letters-depth",
        "forwarder-on-failure-dead-letters-depth"
      ]
        .map((name) => `spillway-dev-clickstream-${name}`)
        .sort()
    )
    for (const name of names) {
      expect(alarmNamed(name)).toMatchObject({
        AlarmActions: [topic],
        OKActions: [topic],
        TreatMissingData: "notBreaching",
        ComparisonOperator: "GreaterThanOrEqualToThreshold"
      })
    }
    prodTemplate.hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "spillway-prod-us-clickstream-spool-oldest-age",
      Namespace: "Spillway/prod-us"
    })
  })

  it("iterator age of both mappings (1 minute, 3 of 5 minutes)", () => {
    for (const [name, fn] of [
      ["cleaner", devClick.cleaner],
      ["metrics", devClick.metrics]
    ] as const) {
      expect(alarmNamed(`spillway-dev-clickstream-${name}-iterator-age`)).toMatchObject({
        ...lambdaMetric("IteratorAge", fn),
        Statistic: "Maximum",
        Period: 60,
        Threshold: 60_000,
        EvaluationPeriods: 5,
        DatapointsToAlarm: 3
      })
    }
  })

  it("errors of the four functions and throttles of the three that must keep up (5 minutes, 1 or more)", () => {
    const functions = {
      cleaner: devClick.cleaner,
      metrics: devClick.metrics,
      forwarder: devClick.forwarder.forwarder,
      "forward-retrier": devClick.forwarder.retrier
    }
    for (const [name, fn] of Object.entries(functions)) {
      expect(alarmNamed(`spillway-dev-clickstream-${name}-errors`)).toMatchObject({
        ...lambdaMetric("Errors", fn),
        Statistic: "Sum",
        Period: 300,
        Threshold: 1,
        EvaluationPeriods: 1
      })
      if (name !== "forward-retrier") {
        expect(alarmNamed(`spillway-dev-clickstream-${name}-throttles`)).toMatchObject({
          ...lambdaMetric("Throttles", fn),
          Statistic: "Sum",
          Period: 300,
          Threshold: 1
        })
      }
    }
  })

  it("the spool's oldest points 5 minutes or more old, from the retrier's EMF gauge", () => {
    expect(RetrySpool.spoolOldestAge.id).toBe("spillway_metric_spool_oldest_age_seconds")
    expect(alarmNamed("spillway-dev-clickstream-spool-oldest-age")).toMatchObject({
      ...emf("spillway_metric_spool_oldest_age_seconds", "forward-retrier"),
      Statistic: "Maximum",
      Period: 60,
      Threshold: 300,
      EvaluationPeriods: 1
    })
  })

  it("points parked, malformed lines and unreadable payloads, from the forwarder's EMF counters (1 or more in 5 minutes)", () => {
    for (const [alarm, metric] of [
      ["forwarder-points-parked", Forward.pointsParked.id],
      ["forwarder-malformed-lines", Forward.malformedLines.id],
      ["forwarder-invalid-payloads", Forward.invalidPayloads.id]
    ] as const) {
      expect(alarmNamed(`spillway-dev-clickstream-${alarm}`)).toMatchObject({
        ...emf(metric, "forwarder"),
        Statistic: "Sum",
        Period: 300,
        Threshold: 1
      })
    }
    expect([Forward.pointsParked.id, Forward.malformedLines.id, Forward.invalidPayloads.id]).toEqual([
      "spillway_forwarder_points_parked",
      "spillway_forwarder_malformed_lines",
      "spillway_forwarder_invalid_payloads"
    ])
  })

  it("the three on-failure queues and their dead-letter queues holding anything", () => {
    for (const [name, queue] of [
      ["cleaner-on-failure-queue-depth", devClick.cleanerOnFailureQueue],
      ["metrics-on-failure-queue-depth", devClick.metricsOnFailureQueue],
      ["forwarder-on-failure-queue-depth", devClick.forwarder.onFailureQueue],
      ["cleaner-on-failure-dead-letters-depth", devClick.cleanerOnFailureDeadLetterQueue],
      ["metrics-on-failure-dead-letters-depth", devClick.metricsOnFailureDeadLetterQueue],
      ["forwarder-on-failure-dead-letters-depth", devClick.forwarder.onFailureDeadLetterQueue]
    ] as const) {
      expect(alarmNamed(`spillway-dev-clickstream-${name}`)).toMatchObject(queueDepth(queue))
    }
  })

  it("widgets on the stage's dashboard: events cleaned, metric points, lag, queues, the path's alarms", () => {
    const dashboard = onlyResource(devTemplate, "AWS::CloudWatch::Dashboard", {
      DashboardName: "Spillway-dev"
    })
    const body = JSON.stringify(dashboard.Properties.DashboardBody)
    for (const text of [
      "## Clickstream metrics",
      "Clickstream: events cleaned (per minute)",
      "clickstream_events_dropped_bot",
      "clickstream_events_counted",
      "Clickstream: metric points (per minute)",
      "spillway_forwarder_points_delivered",
      "spillway_forwarder_points_spooled",
      "spillway_metric_spool_points_delivered",
      "Clickstream: lag",
      "spillway_metric_spool_oldest_age_seconds",
      "Clickstream: on-failure queues (messages)",
      "Clickstream alarms"
    ]) {
      expect(body).toContain(text)
    }
    // The alarm status widget lists every alarm of the path, by ARN.
    const alarms = devStack.clickstreamObservability?.alarms ?? {}
    expect(Object.keys(alarms)).toHaveLength(19)
    for (const alarm of Object.values(alarms)) expect(body).toContain(JSON.stringify(getAtt(alarm)))
    // prod-eu's dashboard has none of it.
    const prodEuBody = JSON.stringify(
      onlyResource(synthesized.template(prodEu), "AWS::CloudWatch::Dashboard", {}).Properties.DashboardBody
    )
    expect(prodEuBody).not.toContain("Clickstream")
  })
})

describe("each clickstream function gets the variables the README lists for it, and no other", () => {
  it("dev", () => {
    const names = (fn: SpillwayFunction) => Object.keys(envOf(devTemplate, fn)).sort()
    const datadog = ["DD_API_KEY_SECRET_ID", "DD_SITE", "DD_TIMEOUT_MS"]
    const spool = ["SPOOL_BUCKET", "SPOOL_PREFIX"]
    const all = ["METRICS_NAMESPACE"]
    expect(names(devClick.cleaner)).toEqual([...all, "REPORT_BATCH_ITEM_FAILURES", "STREAM_ARN"].sort())
    expect(names(devClick.metrics)).toEqual(
      [
        ...all,
        "CLICKSTREAM_EMF_NAMESPACE",
        "METRIC_FORMAT",
        "METRIC_TAGS",
        "REPORT_BATCH_ITEM_FAILURES"
      ].sort()
    )
    expect(names(devClick.forwarder.forwarder)).toEqual(
      [...all, ...datadog, ...spool, "FORWARD_EMF_NAMESPACES"].sort()
    )
    expect(names(devClick.forwarder.retrier)).toEqual([...all, ...datadog, ...spool].sort())
  })

  it("a stage's cleaner settings become the cleaner's variables, as it reads them", () => {
    const stage = {
      ...dev,
      name: "cleaner-settings",
      clickstream: {
        metricFormat: "emf" as const,
        cleaner: {
          eventTypes: ["Page View", "add-to-cart", "checkout"],
          botUserAgents: "bot|crawler|spider",
          maxEventAge: CdkDuration.seconds(900),
          maxClockSkew: CdkDuration.seconds(120),
          piiFields: ["client.ip", "attributes.email"],
          reportBatchItemFailures: false
        },
        metrics: { prefix: "shop", emfNamespace: "Shop/Clickstream" },
        forwarder: {
          site: "datadoghq.eu",
          requestTimeout: CdkDuration.seconds(5),
          apiKeyTtl: CdkDuration.seconds(300),
          retryMaxEntries: 50,
          reservedConcurrency: 20
        }
      }
    }
    const stack = new SpillwayStack(
      new App({ outdir: temporaryFolder("spillway-infra-settings-") }),
      "Settings",
      {
        stage,
        codeDirectory: testCodeDirectory()
      }
    )
    const template = Template.fromStack(stack)
    const click = clickstreamOf(stack)
    expect(envOf(template, click.cleaner)).toMatchObject({
      CLEAN_EVENT_TYPES: "page_view,add_to_cart,checkout",
      CLEAN_BOT_USER_AGENTS: "bot|crawler|spider",
      CLEAN_MAX_EVENT_AGE_SECONDS: "900",
      CLEAN_MAX_CLOCK_SKEW_SECONDS: "120",
      CLEAN_PII_FIELDS: "client.ip,attributes.email",
      REPORT_BATCH_ITEM_FAILURES: "false"
    })
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: ref(click.cleaner.function),
      FunctionResponseTypes: Match.absent()
    })
    expect(envOf(template, click.metrics)).toMatchObject({
      METRIC_PREFIX: "shop",
      CLICKSTREAM_EMF_NAMESPACE: "Shop/Clickstream"
    })
    expect(envOf(template, click.forwarder.forwarder)).toMatchObject({
      DD_SITE: "datadoghq.eu",
      DD_TIMEOUT_MS: "5000",
      DD_API_KEY_TTL_SECONDS: "300",
      FORWARD_EMF_NAMESPACES: "Shop/Clickstream"
    })
    expect(envOf(template, click.forwarder.retrier)).toMatchObject({ RETRY_MAX_ENTRIES: "50" })
    // A shorter request timeout shortens the derived forwarder timeout: (30 + 5 + 10) / 0.9.
    expect(resource(template, logicalId(click.forwarder.forwarder.function)).Properties).toMatchObject({
      Timeout: 50,
      ReservedConcurrentExecutions: 20
    })
  })
})
