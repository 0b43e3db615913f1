/**
 * Template assertions for every stage: what each construct puts in the stack, setting by setting
 * (the event source mappings and their on-failure destination exactly, the Firehose processor, the
 * domain's encryption and access policy, each alarm), and that every function's role holds only
 * the calls its function makes.
 */

import { Schedules } from "@spillway/core"
import { Duration as CdkDuration } from "aws-cdk-lib"
import { Match, type Template } from "aws-cdk-lib/assertions"
import type { IConstruct } from "constructs"
import { Duration } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { deliveryErrorsPrefix } from "../src/Backup.js"
import { processorTimeout, sinkRetryBudget } from "../src/Processing.js"
import type { SpillwayFunction } from "../src/SpillwayFunction.js"
import type { SpillwayStack } from "../src/SpillwayStack.js"
import { dev, prodEu, prodUs } from "../src/Stages.js"
import { removeTemporaryFolders, stackOf as stackIn, stages, synthesizeAll } from "./support/synth.js"
import {
  actionsOf,
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
const devStack = stackOf("dev")
const prodStack = stackOf("prod-us")
const devTemplate = synthesized.template(dev)
const prodTemplate = synthesized.template(prodUs)

const streamArn = (stack: SpillwayStack) => getAtt(stack.ingestion.stream)
const logsGrant = (fn: SpillwayFunction) => ({
  actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
  resource: getAtt(fn.logGroup)
})
const esArn = (stack: SpillwayStack, path: string) => ({
  "Fn::Join": [
    "",
    [
      "arn:",
      { Ref: "AWS::Partition" },
      `:es:${stack.region}:`,
      { Ref: "AWS::AccountId" },
      `:domain/spillway-${stack.stage.name}/${path}`
    ]
  ]
})

describe("stages", () => {
  it("are one stack per stage, each in its own region", () => {
    expect([...synthesized.stacks.keys()]).toEqual(["dev", "prod-us", "prod-eu"])
    expect(stages.map((stage) => [stackOf(stage.name).stackName, stackOf(stage.name).region])).toEqual([
      ["Spillway-dev", "eu-west-1"],
      ["Spillway-prod-us", "us-east-1"],
      ["Spillway-prod-eu", "eu-central-1"]
    ])
  })

  it("share nothing: every physical name a stage sets carries the stage's name", () => {
    const domains = stages.map(
      (stage) => Object.values(synthesized.template(stage).findResources("AWS::OpenSearchService::Domain"))[0]
    )
    expect(domains.map((domain) => domain?.Properties.DomainName)).toEqual([
      "spillway-dev",
      "spillway-prod-us",
      "spillway-prod-eu"
    ])
    const prodEuTemplate = synthesized.template(prodEu)
    // prod-eu has no clickstream path: only the telemetry pipeline's alarms.
    expect(Object.keys(prodEuTemplate.findResources("AWS::CloudWatch::Alarm")).length).toBe(19)
    prodEuTemplate.hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmName: "spillway-prod-eu-delay-p99",
      Namespace: "Spillway/prod-eu"
    })
  })

  it("outputs what the runbook needs under fixed names", () => {
    const common = [
      "AlarmTopicArn",
      "ArchiveBucket",
      "BackupReplayerName",
      "CollectorUrl",
      "DashboardName",
      "DomainEndpoint",
      "FallbackDeadLetterQueueArn",
      "FallbackQueueArn",
      "FallbackQueueUrl",
      "OnFailureDeadLetterQueueUrl",
      "OnFailureQueueArn",
      "OnFailureQueueUrl",
      "StreamArn"
    ]
    const clickstream = [
      "CleanerOnFailureQueueUrl",
      "ClickstreamCleanStreamArn",
      "ClickstreamRawStreamArn",
      "ClickstreamRawStreamName",
      "DatadogApiKeySecretId",
      "ForwarderName",
      "ForwarderOnFailureQueueUrl",
      "MetricSpoolBucket",
      "MetricsOnFailureQueueUrl"
    ]
    expect(Object.keys(devTemplate.toJSON().Outputs).sort()).toEqual(
      [...common, ...clickstream, "ApiKeysParameterName"].sort()
    )
    expect(Object.keys(prodTemplate.toJSON().Outputs).sort()).toEqual(
      [...common, ...clickstream, "ApiKeysSecretName"].sort()
    )
    expect(Object.keys(synthesized.template(prodEu).toJSON().Outputs).sort()).toEqual(
      [...common, "ApiKeysSecretName"].sort()
    )
    expect(devTemplate.toJSON().Outputs.BackupReplayerName.Value).toEqual(
      ref(devStack.backup.replayer.function)
    )
    expect(devTemplate.toJSON().Outputs.CollectorUrl.Value).toEqual(
      getAtt(devStack.ingestion.collector.function.node.findChild("FunctionUrl"), "FunctionUrl")
    )
  })

  it("keep data stores when deleted in production, delete them in dev", () => {
    for (const type of [
      "AWS::Kinesis::Stream",
      "AWS::S3::Bucket",
      "AWS::OpenSearchService::Domain",
      "AWS::KMS::Key"
    ]) {
      prodTemplate.hasResource(type, { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" })
      devTemplate.hasResource(type, { DeletionPolicy: "Delete" })
    }
  })
})

describe("Ingestion", () => {
  it("stream: on-demand for dev, 4 provisioned shards for prod, encrypted with aws/kinesis, retention", () => {
    expect(resource(devTemplate, logicalId(devStack.ingestion.stream)).Properties).toEqual({
      RetentionPeriodHours: 24,
      StreamEncryption: { EncryptionType: "KMS", KeyId: "alias/aws/kinesis" },
      StreamModeDetails: { StreamMode: "ON_DEMAND" },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(prodTemplate, logicalId(prodStack.ingestion.stream)).Properties).toMatchObject({
      RetentionPeriodHours: 168,
      ShardCount: 4,
      StreamEncryption: { EncryptionType: "KMS", KeyId: "alias/aws/kinesis" },
      StreamModeDetails: { StreamMode: "PROVISIONED" }
    })
  })

  it("collector behind an HTTP API whose $default stage throttles, with JSON access logs (prod)", () => {
    const api = prodStack.ingestion.httpApi
    expect(api).toBeDefined()
    prodTemplate.hasResourceProperties("AWS::ApiGatewayV2::Api", {
      ProtocolType: "HTTP",
      Name: "Spillway-prod-us-collector"
    })
    prodTemplate.hasResourceProperties("AWS::ApiGatewayV2::Integration", {
      IntegrationType: "AWS_PROXY",
      PayloadFormatVersion: "2.0",
      IntegrationUri: getAtt(prodStack.ingestion.collector.function)
    })
    prodTemplate.hasResourceProperties("AWS::ApiGatewayV2::Route", {
      RouteKey: "$default",
      AuthorizationType: "NONE"
    })
    const stage = onlyResource(prodTemplate, "AWS::ApiGatewayV2::Stage", { StageName: "$default" })
    expect(stage.Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 2000,
      ThrottlingBurstLimit: 5000
    })
    expect(stage.Properties.AutoDeploy).toBe(true)
    const accessLogs = stage.Properties.AccessLogSettings as { Format: string; DestinationArn: unknown }
    expect(JSON.parse(accessLogs.Format)).toMatchObject({
      requestId: "$context.requestId",
      status: "$context.status"
    })
    prodTemplate.resourceCountIs("AWS::Lambda::Url", 0)
  })

  it("collector on a function URL in dev, authorizing requests itself (no CORS config: it answers preflights)", () => {
    expect(devStack.ingestion.httpApi).toBeUndefined()
    devTemplate.resourceCountIs("AWS::ApiGatewayV2::Api", 0)
    expect(onlyResource(devTemplate, "AWS::Lambda::Url", {}).Properties).toEqual({
      AuthType: "NONE",
      TargetFunctionArn: getAtt(devStack.ingestion.collector.function)
    })
    // Both permissions public URLs need now; the second only through the URL.
    devTemplate.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunctionUrl",
      FunctionUrlAuthType: "NONE",
      Principal: "*"
    })
    devTemplate.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      InvokedViaFunctionUrl: true,
      Principal: "*"
    })
  })

  it("API key store created holding no key: an SSM parameter (dev) or a secret (prod), named to the collector", () => {
    devTemplate.hasResourceProperties("AWS::SSM::Parameter", {
      Type: "String",
      Value: "[]",
      Tier: "Standard"
    })
    expect(envOf(devTemplate, devStack.ingestion.collector)).toMatchObject({
      API_KEYS_SOURCE: "ssm",
      API_KEYS_PARAMETER_NAME: ref(devStack.ingestion.node.findChild("ApiKeys"))
    })
    prodTemplate.hasResourceProperties("AWS::SecretsManager::Secret", { SecretString: "[]" })
    prodTemplate.resourceCountIs("AWS::SSM::Parameter", 0)
    expect(envOf(prodTemplate, prodStack.ingestion.collector)).toMatchObject({
      API_KEYS_SOURCE: "secretsmanager",
      API_KEYS_SECRET_ID: ref(prodStack.ingestion.node.findChild("ApiKeys"))
    })
  })

  it("fallback queue: encrypted, 14 days, 1 MiB messages, visibility 6 × the redriver's timeout, its own DLQ", () => {
    const { fallbackQueue, fallbackDeadLetterQueue, redriver } = devStack.ingestion
    expect(resource(devTemplate, logicalId(fallbackQueue)).Properties).toEqual({
      MaximumMessageSize: 1_048_576,
      MessageRetentionPeriod: 1_209_600,
      RedrivePolicy: { deadLetterTargetArn: getAtt(fallbackDeadLetterQueue), maxReceiveCount: 1000 },
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 360,
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(devTemplate, logicalId(redriver.function)).Properties.Timeout).toBe(60)
    expect(resource(devTemplate, logicalId(fallbackDeadLetterQueue)).Properties).toMatchObject({
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true
    })
    expect(envOf(devTemplate, devStack.ingestion.collector).FALLBACK_QUEUE_MAX_MESSAGE_BYTES).toBe("1048576")
  })

  it("every queue refuses requests without TLS", () => {
    const policies = Object.values(devTemplate.findResources("AWS::SQS::QueuePolicy"))
    // The fallback and on-failure queues with their DLQs, and the clickstream path's three on-failure queues with theirs.
    expect(policies).toHaveLength(10)
    for (const policy of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({
          Effect: "Deny",
          Action: "sqs:*",
          Condition: { Bool: { "aws:SecureTransport": "false" } }
        })
      )
    }
  })

  it("redriver on the fallback queue: 10 messages, partial batch responses, at most 5 at once", () => {
    const mapping = onlyResource(devTemplate, "AWS::Lambda::EventSourceMapping", {
      EventSourceArn: getAtt(devStack.ingestion.fallbackQueue)
    })
    expect(mapping.Properties).toEqual({
      BatchSize: 10,
      EventSourceArn: getAtt(devStack.ingestion.fallbackQueue),
      FunctionName: ref(devStack.ingestion.redriver.function),
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 5 },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(envOf(devTemplate, devStack.ingestion.redriver).REPORT_BATCH_ITEM_FAILURES).toBe("true")
  })

  it("collector and redriver roles: exactly the calls they make", () => {
    const { collector, redriver, fallbackQueue } = prodStack.ingestion
    const secret = prodStack.ingestion.node.findChild("ApiKeys")
    expect(grants(statementsOf(prodTemplate, collector.role))).toEqual(
      grants([
        { Effect: "Allow", Action: "kinesis:PutRecords", Resource: streamArn(prodStack) },
        { Effect: "Allow", Action: "sqs:SendMessage", Resource: getAtt(fallbackQueue) },
        { Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: ref(secret) },
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: getAtt(collector.logGroup)
        }
      ])
    )
    expect(grants(statementsOf(prodTemplate, redriver.role))).toEqual(
      grants([
        { Effect: "Allow", Action: "kinesis:PutRecords", Resource: streamArn(prodStack) },
        { Effect: "Allow", Action: "sqs:SendMessage", Resource: getAtt(fallbackQueue) },
        {
          Effect: "Allow",
          Action: [
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes"
          ],
          Resource: getAtt(fallbackQueue)
        },
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: getAtt(redriver.logGroup)
        }
      ])
    )
    expect(grants(statementsOf(devTemplate, devStack.ingestion.collector.role))).toContainEqual({
      actions: ["ssm:GetParameter"],
      resource: expect.objectContaining({ "Fn::Join": expect.any(Array) })
    })
  })
})

describe("Processing", () => {
  it("the processor's timeout is derived from the sink's retry budget in Schedules", () => {
    const budgetMillis = Duration.toMillis(Schedules.sinkWriteBudget)
    expect(sinkRetryBudget.toMilliseconds()).toBe(budgetMillis)
    // (budget + the last request's 30 s) / 0.9 (the 10% deadline margin), rounded up: 63 s for 26 s.
    const derived = Math.ceil((budgetMillis + 30_000) / 0.9 / 1000)
    expect(processorTimeout().toSeconds()).toBe(derived)
    expect(processorTimeout(CdkDuration.seconds(26)).toSeconds()).toBe(63)
    expect(processorTimeout(CdkDuration.seconds(40)).toSeconds()).toBe(78)
    for (const stack of [devStack, prodStack]) {
      const template = synthesized.template(stack.stage)
      for (const fn of [stack.processing.processor, stack.processing.failureReprocessor]) {
        expect(resource(template, logicalId(fn.function)).Properties.Timeout).toBe(derived)
      }
    }
  })

  it("shared polling (dev): the mapping's exact settings, on-failure destination the on-failure queue", () => {
    const { processor, onFailureQueue } = devStack.processing
    const mapping = onlyResource(devTemplate, "AWS::Lambda::EventSourceMapping", {
      FunctionName: ref(processor.function)
    })
    expect(mapping.Properties).toEqual({
      EventSourceArn: streamArn(devStack),
      FunctionName: ref(processor.function),
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 0,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 21_600,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ParallelizationFactor: 1,
      DestinationConfig: { OnFailure: { Destination: getAtt(onFailureQueue) } },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    devTemplate.resourceCountIs("AWS::Kinesis::StreamConsumer", 0)
    expect(envOf(devTemplate, processor).REPORT_BATCH_ITEM_FAILURES).toBe("true")
  })

  it("enhanced fan-out (prod): a stream consumer, the mapping reading through it with the same safety settings", () => {
    const { processor, onFailureQueue } = prodStack.processing
    const consumer = prodStack.processing.consumer
    if (consumer === undefined) throw new Error("prod-us reads through an enhanced fan-out consumer")
    expect(resource(prodTemplate, logicalId(consumer)).Properties).toMatchObject({
      ConsumerName: "spillway-processor",
      StreamARN: streamArn(prodStack)
    })
    const mapping = onlyResource(prodTemplate, "AWS::Lambda::EventSourceMapping", {
      FunctionName: ref(processor.function)
    })
    expect(mapping.Properties).toEqual({
      EventSourceArn: getAtt(consumer, "ConsumerARN"),
      FunctionName: ref(processor.function),
      StartingPosition: "TRIM_HORIZON",
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 0,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 43_200,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ParallelizationFactor: 2,
      DestinationConfig: { OnFailure: { Destination: getAtt(onFailureQueue) } },
      Tags: [{ Key: "spillway:stage", Value: "prod-us" }]
    })
  })

  it("failure reprocessor on the on-failure queue: one record at a time, at most 2 at once (visibility 6 × its timeout, own DLQ)", () => {
    const { failureReprocessor, onFailureQueue, onFailureDeadLetterQueue } = devStack.processing
    expect(
      onlyResource(devTemplate, "AWS::Lambda::EventSourceMapping", {
        FunctionName: ref(failureReprocessor.function)
      }).Properties
    ).toEqual({
      BatchSize: 1,
      EventSourceArn: getAtt(onFailureQueue),
      FunctionName: ref(failureReprocessor.function),
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 2 },
      Tags: [{ Key: "spillway:stage", Value: "dev" }]
    })
    expect(resource(devTemplate, logicalId(onFailureQueue)).Properties).toMatchObject({
      VisibilityTimeout: 6 * processorTimeout().toSeconds(),
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: getAtt(onFailureDeadLetterQueue), maxReceiveCount: 10 }
    })
    expect(envOf(devTemplate, failureReprocessor)).toMatchObject({
      STREAM_ARN: streamArn(devStack),
      REPORT_BATCH_ITEM_FAILURES: "true",
      OPENSEARCH_ENDPOINT: {
        "Fn::Join": ["", ["https://", getAtt(devStack.search.domain, "DomainEndpoint")]]
      }
    })
  })

  it("processor and failure reprocessor roles: the sink's two requests, the stream reads, the on-failure queue", () => {
    const { processor, failureReprocessor, onFailureQueue } = prodStack.processing
    const consumer = prodStack.processing.consumer
    if (consumer === undefined) throw new Error("prod-us reads through an enhanced fan-out consumer")
    const sink = [
      { actions: ["es:ESHttpPost"], resource: esArn(prodStack, "_bulk") },
      { actions: ["es:ESHttpPut"], resource: esArn(prodStack, "_index_template/telemetry-template") }
    ]
    const streamRead = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamConsumer",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
      "kinesis:ListStreams",
      "kinesis:SubscribeToShard"
    ]
    expect(grants(statementsOf(prodTemplate, processor.role))).toEqual(
      [
        ...sink,
        logsGrant(processor),
        {
          actions: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
          resource: getAtt(onFailureQueue)
        },
        { actions: streamRead, resource: streamArn(prodStack) },
        {
          actions: ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"],
          resource: getAtt(consumer, "ConsumerARN")
        }
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    )
    expect(grants(statementsOf(prodTemplate, failureReprocessor.role))).toEqual(
      [
        ...sink,
        logsGrant(failureReprocessor),
        { actions: ["kinesis:GetRecords", "kinesis:GetShardIterator"], resource: streamArn(prodStack) },
        {
          actions: [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage"
          ],
          resource: getAtt(onFailureQueue)
        }
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    )
  })
})

describe("SearchDomain", () => {
  it("OpenSearch 2.19, encrypted at rest and node to node, HTTPS only with TLS 1.2 PFS, logs, off-peak window", () => {
    expect(resource(devTemplate, logicalId(devStack.search.domain)).Properties).toMatchObject({
      DomainName: "spillway-dev",
      EngineVersion: "OpenSearch_2.19",
      EncryptionAtRestOptions: { Enabled: true },
      NodeToNodeEncryptionOptions: { Enabled: true },
      DomainEndpointOptions: { EnforceHTTPS: true, TLSSecurityPolicy: "Policy-Min-TLS-1-2-PFS-2023-10" },
      ClusterConfig: { InstanceCount: 1, InstanceType: "t3.small.search", DedicatedMasterEnabled: false },
      EBSOptions: { EBSEnabled: true, VolumeSize: 10, VolumeType: "gp3" },
      LogPublishingOptions: {
        ES_APPLICATION_LOGS: { Enabled: true },
        SEARCH_SLOW_LOGS: { Enabled: true },
        INDEX_SLOW_LOGS: { Enabled: true }
      },
      OffPeakWindowOptions: { Enabled: true, OffPeakWindow: { WindowStartTime: { Hours: 22, Minutes: 0 } } }
    })
    // OpenSearch snapshots hourly by itself; AutomatedSnapshotStartHour applies only to Elasticsearch < 5.3.
    devTemplate.hasResourceProperties("AWS::OpenSearchService::Domain", {
      SnapshotOptions: Match.absent(),
      VPCOptions: Match.absent(),
      AdvancedSecurityOptions: Match.absent()
    })
    devTemplate.hasResource("AWS::OpenSearchService::Domain", {
      UpdatePolicy: { EnableVersionUpgrade: true }
    })
  })

  it("production: three zones, three data nodes and three dedicated masters", () => {
    expect(resource(prodTemplate, logicalId(prodStack.search.domain)).Properties.ClusterConfig).toEqual({
      DedicatedMasterCount: 3,
      DedicatedMasterEnabled: true,
      DedicatedMasterType: "m7g.large.search",
      InstanceCount: 3,
      InstanceType: "r7g.large.search",
      MultiAZWithStandbyEnabled: false,
      ZoneAwarenessConfig: { AvailabilityZoneCount: 3 },
      ZoneAwarenessEnabled: true
    })
  })

  it("access policy: only the processor's and failure reprocessor's roles, only _bulk writes and the index template", () => {
    for (const stack of [devStack, prodStack]) {
      const template = synthesized.template(stack.stage)
      const policy = resource(template, logicalId(stack.search.domain)).Properties.AccessPolicies as {
        Statement: Array<Record<string, unknown>>
      }
      const roles = [stack.processing.processor.role, stack.processing.failureReprocessor.role]
      expect(policy.Statement).toEqual(
        roles.flatMap((role) => [
          {
            Effect: "Allow",
            Principal: { AWS: getAtt(role) },
            Action: "es:ESHttpPost",
            Resource: esArn(stack, "_bulk")
          },
          {
            Effect: "Allow",
            Principal: { AWS: getAtt(role) },
            Action: "es:ESHttpPut",
            Resource: esArn(stack, "_index_template/telemetry-template")
          }
        ])
      )
      expect(JSON.stringify(policy)).not.toContain('"*"')
    }
  })

  it("the domain writes its logs through a resource policy, not a custom resource", () => {
    devTemplate.hasResourceProperties("AWS::Logs::ResourcePolicy", {
      PolicyName: "spillway-dev-opensearch-logs"
    })
    devTemplate.resourceCountIs("Custom::OpenSearchAccessPolicy", 0)
    devTemplate.resourceCountIs("Custom::CloudwatchLogResourcePolicy", 0)
    // The telemetry pipeline's five and the clickstream path's four: no custom resource's function.
    expect(Object.keys(devTemplate.findResources("AWS::Lambda::Function"))).toHaveLength(9)
  })
})

describe("Backup", () => {
  it("Firehose: the stream to S3, hourly UTC prefixes, a newline after each record, gzip, the archive's KMS key", () => {
    const { backup } = devStack
    const stream = resource(devTemplate, logicalId(backup.deliveryStream)).Properties
    expect(stream.DeliveryStreamType).toBe("KinesisStreamAsSource")
    expect(stream.KinesisStreamSourceConfiguration).toMatchObject({ KinesisStreamARN: streamArn(devStack) })
    const destination = stream.ExtendedS3DestinationConfiguration as Record<string, unknown>
    expect(destination).toMatchObject({
      BucketARN: getAtt(backup.bucket),
      Prefix: "archive/!{timestamp:yyyy/MM/dd/HH}/",
      ErrorOutputPrefix: `${deliveryErrorsPrefix}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/`,
      CompressionFormat: "GZIP",
      EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: getAtt(backup.key) } },
      BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 16 },
      CloudWatchLoggingOptions: { Enabled: true },
      RoleARN: getAtt(devStack.backup.node.findChild("DeliveryRole"))
    })
    expect(destination.ProcessingConfiguration).toEqual({
      Enabled: true,
      Processors: [{ Type: "AppendDelimiterToRecord", Parameters: [] }]
    })
    expect(destination).not.toHaveProperty("CustomTimeZone")
  })

  it("the replayer reads the layout Firehose writes: same prefix, same compression, the delivery stream's name", () => {
    for (const stack of [devStack, prodStack]) {
      const template = synthesized.template(stack.stage)
      const env = envOf(template, stack.backup.replayer)
      const destination = resource(template, logicalId(stack.backup.deliveryStream)).Properties
        .ExtendedS3DestinationConfiguration as { Prefix: string; CompressionFormat: string }
      expect(destination.Prefix).toBe(`${env.ARCHIVE_PREFIX as string}!{timestamp:yyyy/MM/dd/HH}/`)
      expect(destination.CompressionFormat).toBe(env.ARCHIVE_COMPRESSION)
      expect(env).toMatchObject({
        ARCHIVE_BUCKET: ref(stack.backup.bucket),
        FIREHOSE_STREAM_NAME: ref(stack.backup.deliveryStream),
        STREAM_ARN: streamArn(stack)
      })
    }
  })

  it("archive bucket: SSE-KMS with bucket keys, no public access, TLS only, versioned, lifecycle to IA and Glacier IR", () => {
    const { backup } = prodStack
    expect(resource(prodTemplate, logicalId(backup.bucket)).Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: getAtt(backup.key) }
          }
        ]
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true
      },
      VersioningConfiguration: { Status: "Enabled" },
      LifecycleConfiguration: {
        Rules: [
          {
            Id: "archive-tiers",
            Status: "Enabled",
            Transitions: [
              { StorageClass: "STANDARD_IA", TransitionInDays: 30 },
              { StorageClass: "GLACIER_IR", TransitionInDays: 90 }
            ],
            ExpirationInDays: 365,
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
          }
        ]
      }
    })
    expect(resource(devTemplate, logicalId(devStack.backup.bucket)).Properties).toMatchObject({
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 120 }] }
    })
    prodTemplate.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true })
    prodTemplate.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })
        ])
      }
    })
  })

  it("Firehose's and the replayer's roles: the archive's prefixes and key, nothing else", () => {
    const { backup } = devStack
    const objects = (prefix: string) => ({ "Fn::Join": ["", [getAtt(backup.bucket), `/${prefix}*`]] })
    expect(grants(statementsOf(devTemplate, backup.node.findChild("DeliveryRole")))).toEqual(
      grants([
        {
          Effect: "Allow",
          Action: ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
          Resource: getAtt(backup.bucket)
        },
        {
          Effect: "Allow",
          Action: ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
          Resource: [objects("archive/"), objects(deliveryErrorsPrefix)]
        },
        {
          Effect: "Allow",
          Action: ["kms:GenerateDataKey", "kms:Decrypt"],
          Resource: getAtt(backup.key),
          Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } }
        },
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: getAtt(backup.node.findChild("DeliveryLogs"))
        }
      ])
    )
    expect(grants(statementsOf(devTemplate, backup.replayer.role))).toEqual(
      grants([
        {
          Effect: "Allow",
          Action: "s3:ListBucket",
          Resource: getAtt(backup.bucket),
          Condition: { StringLike: { "s3:prefix": ["archive/*"] } }
        },
        { Effect: "Allow", Action: "s3:GetObject", Resource: objects("archive/") },
        { Effect: "Allow", Action: "kms:Decrypt", Resource: getAtt(backup.key) },
        { Effect: "Allow", Action: "kinesis:PutRecords", Resource: streamArn(devStack) },
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: getAtt(backup.replayer.logGroup)
        }
      ])
    )
    // The role CDK's destination would have used is not there: no wildcard S3 or KMS actions anywhere.
    const everyAction = Object.values(devTemplate.findResources("AWS::IAM::Policy")).flatMap((policy) =>
      (policy.Properties.PolicyDocument.Statement as Array<Statement>).flatMap(actionsOf)
    )
    expect(everyAction.filter((action) => action.includes("*"))).toEqual([])
  })
})

describe("SpillwayFunction", () => {
  it("every function: Node 24 on arm64, index.handler, JSON logs into its own log group with a retention", () => {
    for (const stack of [devStack, prodStack]) {
      const template = synthesized.template(stack.stage)
      const clickstream = stack.clickstream
      if (clickstream === undefined) throw new Error(`${stack.stage.name} has the clickstream path`)
      const functions = [
        stack.ingestion.collector,
        stack.ingestion.redriver,
        stack.processing.processor,
        stack.processing.failureReprocessor,
        stack.backup.replayer,
        clickstream.cleaner,
        clickstream.metrics,
        clickstream.forwarder.forwarder,
        clickstream.forwarder.retrier
      ]
      for (const fn of functions) {
        expect(resource(template, logicalId(fn.function)).Properties).toMatchObject({
          Runtime: "nodejs24.x",
          Architectures: ["arm64"],
          Handler: "index.handler",
          MemorySize: 1024,
          Role: getAtt(fn.role),
          LoggingConfig: {
            LogFormat: "JSON",
            ApplicationLogLevel: "INFO",
            SystemLogLevel: "WARN",
            LogGroup: ref(fn.logGroup)
          }
        })
        expect(resource(template, logicalId(fn.logGroup)).Properties.RetentionInDays).toBe(
          stack === devStack ? 7 : 30
        )
      }
    }
  })

  it("no role uses a managed policy (AWSLambdaBasicExecutionRole would open every log group)", () => {
    for (const stage of stages) {
      const roles = Object.values(synthesized.template(stage).findResources("AWS::IAM::Role"))
      for (const role of roles) expect(role.Properties.ManagedPolicyArns).toBeUndefined()
    }
  })

  it("each function gets the variables its README row lists, and no other", () => {
    const names = (fn: SpillwayFunction) => Object.keys(envOf(devTemplate, fn)).sort()
    const stream = ["STREAM_ARN"]
    const queue = ["FALLBACK_QUEUE_MAX_MESSAGE_BYTES", "FALLBACK_QUEUE_URL"]
    const sink = ["OPENSEARCH_ENDPOINT", "OPENSEARCH_INDEX", "OPENSEARCH_SERVICE"]
    const all = ["METRICS_NAMESPACE"]
    const expected = (...lists: Array<Array<string>>) => lists.flat().sort()
    expect(names(devStack.ingestion.collector)).toEqual(
      expected(all, stream, queue, ["API_KEYS_PARAMETER_NAME", "API_KEYS_SOURCE"])
    )
    expect(names(devStack.ingestion.redriver)).toEqual(
      expected(all, stream, queue, ["REPORT_BATCH_ITEM_FAILURES"])
    )
    expect(names(devStack.processing.processor)).toEqual(expected(all, sink, ["REPORT_BATCH_ITEM_FAILURES"]))
    expect(names(devStack.processing.failureReprocessor)).toEqual(
      expected(all, sink, stream, ["REPORT_BATCH_ITEM_FAILURES"])
    )
    expect(names(devStack.backup.replayer)).toEqual(
      expected(all, stream, [
        "ARCHIVE_BUCKET",
        "ARCHIVE_COMPRESSION",
        "ARCHIVE_PREFIX",
        "FIREHOSE_STREAM_NAME"
      ])
    )
  })
})

describe("Observability", () => {
  const alarmNamed = (template: Template, name: string) =>
    onlyResource(template, "AWS::CloudWatch::Alarm", { AlarmName: name }).Properties
  const topic = () => ref(devStack.observability.topic)
  const notifying = () => ({
    AlarmActions: [topic()],
    OKActions: [topic()],
    TreatMissingData: "notBreaching"
  })

  it("19 alarms (and the clickstream path's 19 in dev), every one to the alarm topic on alarm and on OK", () => {
    devTemplate.resourceCountIs("AWS::CloudWatch::Alarm", 38)
    expect(Object.keys(devStack.observability.alarms)).toHaveLength(19)
    for (const alarm of Object.values(devTemplate.findResources("AWS::CloudWatch::Alarm"))) {
      expect(alarm.Properties).toMatchObject(notifying())
    }
  })

  it("iterator age of the processor (3 of 5 minutes over 1 minute)", () => {
    expect(alarmNamed(devTemplate, "spillway-dev-processor-iterator-age")).toMatchObject({
      Namespace: "AWS/Lambda",
      MetricName: "IteratorAge",
      Dimensions: [{ Name: "FunctionName", Value: ref(devStack.processing.processor.function) }],
      Statistic: "Maximum",
      Period: 60,
      Threshold: 60_000,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3
    })
  })

  it("delay p99 from the processor's EMF metric, in the stage's namespace, the functions' METRICS_NAMESPACE", () => {
    expect(alarmNamed(devTemplate, "spillway-dev-delay-p99")).toMatchObject({
      Namespace: "Spillway/dev",
      MetricName: "spillway_end_to_end_delay_ms",
      Dimensions: [{ Name: "function", Value: "processor" }],
      ExtendedStatistic: "p99",
      Period: 60,
      Threshold: 5000,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3
    })
    expect(alarmNamed(prodTemplate, "spillway-prod-us-delay-p99")).toMatchObject({
      Namespace: "Spillway/prod-us",
      Threshold: 2000
    })
    for (const fn of [
      devStack.ingestion.collector,
      devStack.processing.processor,
      devStack.backup.replayer
    ]) {
      expect(envOf(devTemplate, fn).METRICS_NAMESPACE).toBe("Spillway/dev")
    }
  })

  it("on-failure queue depth, fallback queue age, and each dead-letter queue's depth", () => {
    const queueName = (queue: IConstruct) => [{ Name: "QueueName", Value: getAtt(queue, "QueueName") }]
    expect(alarmNamed(devTemplate, "spillway-dev-on-failure-queue-depth")).toMatchObject({
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: queueName(devStack.processing.onFailureQueue),
      Statistic: "Maximum",
      Threshold: 1
    })
    expect(alarmNamed(devTemplate, "spillway-dev-fallback-queue-age")).toMatchObject({
      Namespace: "AWS/SQS",
      MetricName: "ApproximateAgeOfOldestMessage",
      Dimensions: queueName(devStack.ingestion.fallbackQueue),
      Threshold: 300
    })
    expect(alarmNamed(devTemplate, "spillway-dev-fallback-dead-letters-depth")).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: queueName(devStack.ingestion.fallbackDeadLetterQueue),
      Threshold: 1
    })
    expect(alarmNamed(devTemplate, "spillway-dev-on-failure-dead-letters-depth")).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: queueName(devStack.processing.onFailureDeadLetterQueue),
      Threshold: 1
    })
  })

  it("errors and throttles of each of the five functions", () => {
    const functions = {
      collector: devStack.ingestion.collector,
      redriver: devStack.ingestion.redriver,
      processor: devStack.processing.processor,
      "failure-reprocessor": devStack.processing.failureReprocessor,
      "backup-replayer": devStack.backup.replayer
    }
    for (const [name, fn] of Object.entries(functions)) {
      for (const [metric, suffix] of [
        ["Errors", "errors"],
        ["Throttles", "throttles"]
      ] as const) {
        expect(alarmNamed(devTemplate, `spillway-dev-${name}-${suffix}`)).toMatchObject({
          Namespace: "AWS/Lambda",
          MetricName: metric,
          Dimensions: [{ Name: "FunctionName", Value: ref(fn.function) }],
          Statistic: "Sum",
          Period: 300,
          Threshold: 1
        })
      }
    }
  })

  it("what disaster recovery relies on: backup freshness, failed snapshots, a red cluster", () => {
    expect(alarmNamed(devTemplate, "spillway-dev-backup-freshness")).toMatchObject({
      Namespace: "AWS/Firehose",
      MetricName: "DeliveryToS3.DataFreshness",
      Dimensions: [{ Name: "DeliveryStreamName", Value: ref(devStack.backup.deliveryStream) }],
      Threshold: 900
    })
    const domainDimensions = [
      { Name: "ClientId", Value: { Ref: "AWS::AccountId" } },
      { Name: "DomainName", Value: ref(devStack.search.domain) }
    ]
    expect(alarmNamed(devTemplate, "spillway-dev-snapshot-failure")).toMatchObject({
      Namespace: "AWS/ES",
      MetricName: "AutomatedSnapshotFailure",
      Dimensions: domainDimensions,
      Threshold: 1
    })
    expect(alarmNamed(devTemplate, "spillway-dev-cluster-red")).toMatchObject({
      Namespace: "AWS/ES",
      MetricName: "ClusterStatus.red",
      Dimensions: domainDimensions
    })
  })

  it("one dashboard: delay average and p99, throughput, queue depths, lag, the alarms", () => {
    devTemplate.resourceCountIs("AWS::CloudWatch::Dashboard", 1)
    const dashboard = onlyResource(devTemplate, "AWS::CloudWatch::Dashboard", {
      DashboardName: "Spillway-dev"
    })
    const body = JSON.stringify(dashboard.Properties.DashboardBody)
    for (const text of [
      "End-to-end delay (ms)",
      "spillway_end_to_end_delay_ms",
      '\\"stat\\":\\"p99\\"',
      // Average is a metric's default statistic: the dashboard leaves it unsaid.
      '{\\"label\\":\\"average\\",\\"period\\":60}',
      "Throughput (records per minute)",
      "spillway_records_written",
      "spillway_records_collected",
      "IncomingRecords",
      "Queue depths (messages)",
      "ApproximateNumberOfMessagesVisible",
      "IteratorAge",
      '\\"type\\":\\"alarm\\"'
    ]) {
      expect(body).toContain(text)
    }
  })
})
