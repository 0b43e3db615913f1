/**
 * Ingestion: the Kinesis stream every record goes through, the collector that clients post to
 * (behind an HTTP API with stage throttling, or a function URL), the API keys it checks, and the
 * SQS fallback queue it parks records in when the stream refuses them, with the redriver that puts
 * them back.
 *
 * Guarantees:
 * - the collector's API keys live in Secrets Manager or SSM as SHA-256 digests (README "The
 *   collector's API keys"); the store is created holding none (`[]`), so the collector answers 503
 *   `KeyStoreUnavailable` until an operator adds the first digest (clients keep retrying), never
 *   an accepted record without a key.
 * - the fallback queue and its dead-letter queue keep messages 14 days; the redriver's concurrency
 *   is capped, so a stream that is throttling is not hammered by a thousand redrivers.
 * - every function's role holds exactly the calls it makes: the collector `kinesis:PutRecords`,
 *   `sqs:SendMessage` (SendMessageBatch) and the key store read; the redriver `kinesis:PutRecords`
 *   and `sqs:SendMessage` (it parks throttled records again), plus what its event source mapping
 *   needs to receive and delete messages.
 */
import { Duration, type RemovalPolicy, SecretValue, Stack } from "aws-cdk-lib"
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway"
import * as apigw from "aws-cdk-lib/aws-apigatewayv2"
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations"
import * as kinesis from "aws-cdk-lib/aws-kinesis"
import * as lambda from "aws-cdk-lib/aws-lambda"
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources"
import * as logs from "aws-cdk-lib/aws-logs"
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import * as ssm from "aws-cdk-lib/aws-ssm"
import { Construct } from "constructs"
import { durationIn, ensure, integerIn } from "./internal/checks.js"
import { acknowledge } from "./internal/nag.js"
import { output } from "./internal/outputs.js"
import { queueWithDlq } from "./internal/queues.js"
import { type FunctionDefaults, SpillwayFunction } from "./SpillwayFunction.js"

/** How the stream gets its capacity. */
export type StreamCapacity =
  /** Kinesis scales the shards (billed per GB in and out, and per stream-hour). */
  | { readonly mode: "on-demand" }
  /** A fixed number of shards (billed per shard-hour): 1 MiB/s or 1,000 records/s in, 2 MiB/s out, each. */
  | { readonly mode: "provisioned"; readonly shards: number }

/** Where clients post to. */
export type CollectorEndpoint =
  /**
   * An API Gateway HTTP API (payload format 2.0) whose `$default` stage throttles: `rateLimit`
   * requests per second on average, bursts up to `burstLimit` (a client over it gets 429 and
   * retries). Access logs go to a log group of their own.
   */
  | { readonly kind: "http-api"; readonly rateLimit?: number; readonly burstLimit?: number }
  /**
   * A Lambda function URL (no per-request charge, no throttling but the function's concurrency:
   * set `collectorReservedConcurrency` to bound it). Not offered in some newer regions.
   */
  | { readonly kind: "function-url" }

/** Where the collector's API key digests are kept. */
export type ApiKeyStore = { readonly kind: "secrets-manager" } | { readonly kind: "ssm-parameter" }

export interface IngestionSettings {
  /** @default { mode: "on-demand" } */
  readonly capacity?: StreamCapacity
  /**
   * How long the stream keeps records, 24 hours to 365 days. The failure reprocessor reads the
   * ranges the processor gave up on back from the stream, so this is also how long such a range
   * can wait (beyond 24 hours Kinesis bills extended retention).
   * @default Duration.days(7)
   */
  readonly retention?: Duration
  /** @default { kind: "http-api", rateLimit: 1000, burstLimit: 2000 } */
  readonly endpoint?: CollectorEndpoint
  /** @default { kind: "secrets-manager" } */
  readonly apiKeys?: ApiKeyStore
  /** `ALLOWED_ORIGINS`: origins browsers may post from (CORS). @default none */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** Concurrency kept for, and capping, the collector. @default no reservation */
  readonly collectorReservedConcurrency?: number
  /** Redrivers running at once at most (the SQS mapping's maximum concurrency, 2–1000). @default 5 */
  readonly redriverMaxConcurrency?: number
  /**
   * Receives of a fallback message before it goes to the fallback dead-letter queue. During a
   * stream outage the redriver makes a message visible again after a fiftieth of how long it has
   * been parked, 1 to 30 s (`Schedules.redriveVisibilitySeconds`), so 1,000 receives ride out an
   * outage of about 7 hours; 10 would dead-letter after about 10 seconds. @default 1000
   */
  readonly fallbackMaxReceiveCount?: number
}

export interface IngestionProps extends IngestionSettings {
  readonly functions: FunctionDefaults
  /** What happens to the stream, the key store and the queues when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy
}

/** HTTP API integrations time out after 30 s: the collector must answer before. */
const collectorTimeout = Duration.seconds(29)
const redriverTimeout = Duration.seconds(60)

/** SQS's largest message (since August 2025; `FALLBACK_QUEUE_MAX_MESSAGE_BYTES` says it to the functions). */
const fallbackMaxMessageBytes = 1_048_576

export class Ingestion extends Construct {
  readonly stream: kinesis.Stream
  /** How long the stream keeps records. */
  readonly retention: Duration
  readonly collector: SpillwayFunction
  readonly redriver: SpillwayFunction
  readonly fallbackQueue: sqs.Queue
  readonly fallbackDeadLetterQueue: sqs.Queue
  /** The HTTP API (when the endpoint is `http-api`). */
  readonly httpApi: apigw.HttpApi | undefined
  /** The URL clients post to. */
  readonly collectorUrl: string

  constructor(scope: Construct, id: string, props: IngestionProps) {
    super(scope, id)
    const capacity = props.capacity ?? { mode: "on-demand" }
    if (capacity.mode === "provisioned") {
      integerIn(
        this,
        "capacity.shards",
        capacity.shards,
        1,
        10_000,
        "a provisioned stream has 1 or more shards"
      )
    }
    const retention = durationIn(
      this,
      "retention",
      props.retention ?? Duration.days(7),
      Duration.hours(24),
      Duration.days(365),
      "Kinesis retention limits"
    )
    this.retention = retention
    const endpoint = props.endpoint ?? { kind: "http-api" }
    const redriverMaxConcurrency = integerIn(
      this,
      "redriverMaxConcurrency",
      props.redriverMaxConcurrency ?? 5,
      2,
      1000,
      "the SQS event source's maximum concurrency"
    )
    for (const origin of props.allowedOrigins ?? []) {
      ensure(
        this,
        "allowedOrigins",
        origin === "*" || /^https?:\/\/[^\s,/]+$/.test(origin),
        `must be "*" or origins like https://app.example.com (scheme and host, optional port or ":*"), got ${JSON.stringify(origin)}`
      )
    }

    this.stream = new kinesis.Stream(this, "Stream", {
      ...(capacity.mode === "on-demand"
        ? { streamMode: kinesis.StreamMode.ON_DEMAND }
        : { streamMode: kinesis.StreamMode.PROVISIONED, shardCount: capacity.shards }),
      retentionPeriod: retention,
      // The AWS-managed key: no KMS grants for producers and consumers, and no per-request KMS
      // charges that a customer-managed key adds for every producer and consumer call.
      encryption: kinesis.StreamEncryption.MANAGED,
      removalPolicy: props.removalPolicy
    })

    const fallback = queueWithDlq(this, "FallbackQueue", {
      consumerTimeout: redriverTimeout,
      maxReceiveCount: props.fallbackMaxReceiveCount ?? 1000,
      removalPolicy: props.removalPolicy,
      maxMessageSizeBytes: fallbackMaxMessageBytes
    })
    this.fallbackQueue = fallback.queue
    this.fallbackDeadLetterQueue = fallback.deadLetterQueue

    const keyStore = this.apiKeyStore(props.apiKeys ?? { kind: "secrets-manager" }, props.removalPolicy)

    const streamAndQueue = {
      STREAM_ARN: this.stream.streamArn,
      FALLBACK_QUEUE_URL: this.fallbackQueue.queueUrl,
      FALLBACK_QUEUE_MAX_MESSAGE_BYTES: String(fallbackMaxMessageBytes)
    }
    this.collector = new SpillwayFunction(this, "Collector", {
      ...props.functions,
      bundle: "collector",
      description:
        "Spillway collector: checks API keys, puts records into the stream, parks them in the fallback queue when it refuses",
      timeout: collectorTimeout,
      ...(props.collectorReservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: props.collectorReservedConcurrency }),
      environment: {
        ...streamAndQueue,
        ...keyStore.environment,
        ...(props.allowedOrigins === undefined || props.allowedOrigins.length === 0
          ? {}
          : { ALLOWED_ORIGINS: props.allowedOrigins.join(",") })
      }
    })
    this.collector.allow(["kinesis:PutRecords"], [this.stream.streamArn])
    this.collector.allow(["sqs:SendMessage"], [this.fallbackQueue.queueArn])
    this.collector.allow(keyStore.actions, [keyStore.arn])

    this.redriver = new SpillwayFunction(this, "Redriver", {
      ...props.functions,
      bundle: "redriver",
      description: "Spillway redriver: puts the records parked in the fallback queue back into the stream",
      timeout: redriverTimeout,
      environment: { ...streamAndQueue, REPORT_BATCH_ITEM_FAILURES: "true" }
    })
    this.redriver.allow(["kinesis:PutRecords"], [this.stream.streamArn])
    this.redriver.allow(["sqs:SendMessage"], [this.fallbackQueue.queueArn])
    this.redriver.function.addEventSource(
      new SqsEventSource(this.fallbackQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: redriverMaxConcurrency
      })
    )

    if (endpoint.kind === "http-api") {
      this.httpApi = this.httpApiFor(endpoint, props.removalPolicy, props.functions.logRetention)
      this.collectorUrl = this.httpApi.apiEndpoint
    } else {
      const url = this.collector.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE })
      this.httpApi = undefined
      this.collectorUrl = url.url
    }

    output(this, "CollectorUrl", this.collectorUrl, "Where clients post records")
    output(this, "StreamArn", this.stream.streamArn)
    output(this, "FallbackQueueUrl", this.fallbackQueue.queueUrl)
    output(this, "FallbackQueueArn", this.fallbackQueue.queueArn)
    output(this, "FallbackDeadLetterQueueArn", this.fallbackDeadLetterQueue.queueArn)
    output(
      this,
      keyStore.outputName,
      keyStore.name,
      "Where the collector's API key digests are kept (README: adding an API key)"
    )
  }

  private apiKeyStore(store: ApiKeyStore, removalPolicy: RemovalPolicy) {
    // An empty list: the collector refuses it as "no key at all" (503, clients retry) until the
    // first digest is added. CloudFormation writes the value only when the template's value
    // changes, so later deployments leave the digests an operator added alone.
    const noKeys = "[]"
    const description =
      "Spillway collector API keys: a JSON list of {tenant, sha256} (README: the collector's API keys)"
    if (store.kind === "secrets-manager") {
      const secret = new secretsmanager.Secret(this, "ApiKeys", {
        description,
        secretStringValue: SecretValue.unsafePlainText(noKeys),
        removalPolicy
      })
      acknowledge(
        secret,
        "SMG4",
        "The secret holds SHA-256 digests of keys that clients hold; a rotation function cannot mint a client's key. Keys are rotated by adding the new digest, moving the clients, then removing the old one (README: the collector's API keys)."
      )
      return {
        environment: { API_KEYS_SOURCE: "secretsmanager", API_KEYS_SECRET_ID: secret.secretArn },
        actions: ["secretsmanager:GetSecretValue"],
        arn: secret.secretArn,
        name: secret.secretName,
        outputName: "ApiKeysSecretName"
      }
    }
    const parameter = new ssm.StringParameter(this, "ApiKeys", {
      description,
      stringValue: noKeys,
      tier: ssm.ParameterTier.STANDARD
    })
    parameter.applyRemovalPolicy(removalPolicy)
    return {
      environment: { API_KEYS_SOURCE: "ssm", API_KEYS_PARAMETER_NAME: parameter.parameterName },
      actions: ["ssm:GetParameter"],
      arn: parameter.parameterArn,
      name: parameter.parameterName,
      outputName: "ApiKeysParameterName"
    }
  }

  private httpApiFor(
    endpoint: { readonly rateLimit?: number; readonly burstLimit?: number },
    removalPolicy: RemovalPolicy,
    logRetention: logs.RetentionDays | undefined
  ): apigw.HttpApi {
    const rateLimit = integerIn(this, "endpoint.rateLimit", endpoint.rateLimit ?? 1000, 1, 1_000_000)
    const burstLimit = integerIn(this, "endpoint.burstLimit", endpoint.burstLimit ?? 2000, 1, 1_000_000)
    const api = new apigw.HttpApi(this, "Api", {
      apiName: `${Stack.of(this).stackName}-collector`,
      description: `Spillway collector (${Stack.of(this).stackName})`,
      // Every path and method to the collector, CORS preflights included: it answers them itself
      // from ALLOWED_ORIGINS, so the API has no CORS configuration of its own.
      defaultIntegration: new HttpLambdaIntegration("Collector", this.collector.function),
      createDefaultStage: false
    })
    const accessLogs = new logs.LogGroup(this, "ApiAccessLogs", {
      retention: logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy
    })
    new apigw.HttpStage(this, "ApiStage", {
      httpApi: api,
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit, burstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        // One JSON object per request, with the collector's answer and why API Gateway failed one.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            requestTime: "$context.requestTimeEpoch",
            method: "$context.httpMethod",
            path: "$context.path",
            status: "$context.status",
            protocol: "$context.protocol",
            responseLength: "$context.responseLength",
            integrationStatus: "$context.integrationStatus",
            integrationLatency: "$context.integrationLatency",
            error: "$context.error.message",
            integrationError: "$context.integrationErrorMessage"
          })
        )
      }
    })
    for (const route of api.node.findAll()) {
      if (route instanceof apigw.CfnRoute) {
        acknowledge(
          route,
          "APIG4",
          "The collector authorizes every request itself: it compares the SHA-256 of the presented API key with the digests in the key store, in constant time, and answers 401 (README: the collector's API keys). An API Gateway authorizer would add a second invocation per request."
        )
      }
    }
    return api
  }
}
