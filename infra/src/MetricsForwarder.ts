/**
 * The metrics forwarder, on its own: a function subscribed to a log group that ships the metric
 * lines it finds there to Datadog's metrics API, the S3 spool it writes what Datadog would not
 * take to before it answers, the Datadog API key's secret, and the forward retrier that sends the
 * spool again every minute until it lands (README "What the forwarder guarantees").
 *
 * Guarantees:
 * - the subscription filter hands the forwarder only the lines either metric-line format writes
 *   (`metricLinePattern`): EMF documents and Datadog Lambda lines; the function's other logs stay
 *   in the log group.
 * - the forwarder's timeout lets one payload use the whole of `Schedules.metricsSubmitBudget`, a
 *   last request, and the spool write, after the deadline margin (`forwarderTimeout`), and may not
 *   be set shorter than the first three: an invocation that is still retrying Datadog must be
 *   able to spool what it could not send before Lambda cuts it off.
 * - an invocation that fails (the spool refused too, or the deadline came first) is delivered
 *   again twice by Lambda, then sent to the on-failure queue (14 days, its own DLQ): nothing it
 *   was given is dropped by Lambda.
 * - the spool bucket: no public access, SSE-S3, TLS only; `<prefix>parked/` (points Datadog will
 *   never take, kept for a person) expires after 90 days, `<prefix>pending/` never does.
 * - the retrier runs on an EventBridge rule every `Schedules.spoolRetryInterval` (1 minute), one
 *   at a time (reserved concurrency 1); a tick that finds a run still going is throttled and
 *   dropped after a minute, since the next tick comes anyway.
 * - the key secret is created empty (no value at all) or named: until it holds a key, every send
 *   finds none and the points are spooled, never lost; CloudFormation never writes the value, so
 *   a deployment leaves the key an operator put alone.
 * - each role holds exactly the calls its function makes: the forwarder `s3:PutObject` under
 *   `pending/` and `parked/`, `secretsmanager:GetSecretValue` on the key, and what its on-failure
 *   destination needs; the retrier the same plus listing `pending/` (`s3:prefix`-bound),
 *   `s3:GetObject` and `s3:DeleteObject` there (`S3MetricSpool`, `DatadogApiKey` in @spillway/aws).
 */
import { Schedules } from "@spillway/core"
import { ArnFormat, Duration as CdkDuration, type RemovalPolicy, Stack } from "aws-cdk-lib"
import * as events from "aws-cdk-lib/aws-events"
import * as targets from "aws-cdk-lib/aws-events-targets"
import * as iam from "aws-cdk-lib/aws-iam"
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations"
import * as logs from "aws-cdk-lib/aws-logs"
import { LambdaDestination } from "aws-cdk-lib/aws-logs-destinations"
import * as s3 from "aws-cdk-lib/aws-s3"
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager"
import type * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import { Duration } from "effect"
import { durationIn, ensure, InvalidProps, integerIn } from "./internal/checks.js"
import { acknowledge } from "./internal/nag.js"
import { output } from "./internal/outputs.js"
import { queueWithDlq } from "./internal/queues.js"
import { deadlineMarginShare } from "./Processing.js"
import { type FunctionDefaults, SpillwayFunction } from "./SpillwayFunction.js"

/** Where the forwarder and the retrier read the Datadog API key from (`DD_API_KEY_SECRET_ID`). */
export type DatadogApiKeySecret =
  /** A secret this stack creates with no value; an operator puts the key into it (README). */
  | { readonly kind: "created" }
  /** A secret that already exists in the stage's account and region, by its name. */
  | { readonly kind: "existing"; readonly secretName: string }

export interface MetricsForwarderSettings {
  /** `DD_SITE`: the Datadog site (the API host is `api.<site>`). @default "datadoghq.com" */
  readonly site?: string
  /** `DD_METRICS_URL`: the whole endpoint (a proxy); overrides `site`. @default none */
  readonly metricsUrl?: string
  /** @default { kind: "created" } */
  readonly apiKeySecret?: DatadogApiKeySecret
  /** `DD_API_KEY_TTL_SECONDS`: how long the key is kept before it is read again, 0 s–1 day. @default the functions' 15 minutes */
  readonly apiKeyTtl?: CdkDuration
  /** `DD_TIMEOUT_MS`: time allowed for Datadog's answer, 100 ms–60 s. @default Duration.seconds(10) */
  readonly requestTimeout?: CdkDuration
  /** `SPOOL_PREFIX`: folders ending in '/', under which `pending/` and `parked/` are. @default "metric-spool/" */
  readonly spoolPrefix?: string
  /** Age at which parked points (never retried automatically) are deleted, whole days, at least 1. @default Duration.days(90) */
  readonly parkedExpiration?: CdkDuration
  /**
   * The forwarder's timeout, up to 15 minutes, and at least the submit budget, a request and the
   * spool write.
   * @default `forwarderTimeout(requestTimeout)` (56 s with the default request timeout)
   */
  readonly timeout?: CdkDuration
  /** Concurrency kept for, and capping, the forwarder (1–1000). @default no reservation */
  readonly reservedConcurrency?: number
  /** The retrier's timeout: from `forwarderTimeout(requestTimeout)` (one entry's send and spool) to 15 minutes. @default Duration.minutes(5) */
  readonly retrierTimeout?: CdkDuration
  /** `RETRY_MAX_ENTRIES`: spool entries a retrier run lists, 1–1000. @default the function's 100 */
  readonly retryMaxEntries?: number
  /** Receives of a message of the forwarder's on-failure queue before it goes to its dead-letter queue. @default 10 */
  readonly onFailureMaxReceiveCount?: number
}

export interface MetricsForwarderProps extends MetricsForwarderSettings {
  /** The log group whose metric lines are forwarded. */
  readonly logGroup: logs.ILogGroup
  /** `FORWARD_EMF_NAMESPACES`: the EMF namespaces forwarded (the others are counted as skipped). */
  readonly emfNamespaces: ReadonlyArray<string>
  readonly functions: FunctionDefaults
  /** What happens to the spool bucket, the key secret and the queues when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy
}

/**
 * The lines the subscription filter delivers: an EMF document (`_aws.Timestamp`, epoch ms) or a
 * Datadog Lambda line (`m`, the metric's name, and `e`, epoch seconds) — what `MetricLine.encode`
 * writes in either format. A JSON pattern matches only log events that are JSON: a line cut short
 * is not delivered, and the metrics function's lines are far below CloudWatch Logs' event size
 * limit (its only truncation).
 */
export const metricLinePattern: logs.IFilterPattern = logs.FilterPattern.any(
  logs.FilterPattern.numberValue("$._aws.Timestamp", ">=", 0),
  logs.FilterPattern.all(logs.FilterPattern.exists("$.m"), logs.FilterPattern.numberValue("$.e", ">=", 0))
)

/** `Schedules.metricsSubmitBudget` as a CDK duration: the longest a payload spends retrying the intake before its last request. */
export const metricsSubmitBudget: CdkDuration = CdkDuration.millis(
  Duration.toMillis(Schedules.metricsSubmitBudget)
)

/**
 * What writing a spool entry may take: `Schedules.spoolWrite` waits at most about 3.7 s in all
 * between its six `PutObject` calls (100 ms doubling, five retries, jittered up by 20% at most),
 * and each call answers well within a second while S3 answers at all.
 */
export const spoolWriteAllowance: CdkDuration = CdkDuration.seconds(10)

/** Datadog's answer time allowed (`DD_TIMEOUT_MS`), the functions' own default. */
export const defaultRequestTimeout: CdkDuration = CdkDuration.seconds(10)

/** The least a forwarder invocation needs for one payload: its retries, a last request, the spool write. */
export const forwarderMinimum = (requestTimeout: CdkDuration = defaultRequestTimeout): CdkDuration =>
  CdkDuration.millis(
    metricsSubmitBudget.toMilliseconds() +
      requestTimeout.toMilliseconds() +
      spoolWriteAllowance.toMilliseconds()
  )

/** `forwarderMinimum` after the deadline margin (10%), rounded up to the second: 56 s by default. */
export const forwarderTimeout = (requestTimeout: CdkDuration = defaultRequestTimeout): CdkDuration =>
  CdkDuration.seconds(
    Math.ceil(forwarderMinimum(requestTimeout).toMilliseconds() / (1 - deadlineMarginShare) / 1000)
  )

/** `DatadogMetricsSink`'s check of `DD_SITE`. */
const datadogSite = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/
/** Secrets Manager's secret names. */
const secretName = /^[A-Za-z0-9/_+=.@-]{1,512}$/
const spoolPrefixPattern = /^([A-Za-z0-9!_.*'()-]+\/)+$/

export class MetricsForwarder extends Construct {
  readonly forwarder: SpillwayFunction
  readonly retrier: SpillwayFunction
  readonly bucket: s3.Bucket
  readonly spoolPrefix: string
  /** The forwarder's asynchronous invocations that failed three times. */
  readonly onFailureQueue: sqs.Queue
  readonly onFailureDeadLetterQueue: sqs.Queue
  readonly subscription: logs.SubscriptionFilter
  readonly schedule: events.Rule
  /** The created secret (`kind: "created"`). */
  readonly secret: secretsmanager.CfnSecret | undefined
  /** The ARN the functions may read the key from (with `-??????` for a secret named). */
  readonly secretArn: string
  readonly timeout: CdkDuration

  constructor(scope: Construct, id: string, props: MetricsForwarderProps) {
    super(scope, id)
    const site = props.site ?? "datadoghq.com"
    ensure(
      this,
      "site",
      datadogSite.test(site),
      `must be a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com, got ${JSON.stringify(site)}`
    )
    if (props.metricsUrl !== undefined) {
      ensure(
        this,
        "metricsUrl",
        /^https?:\/\/[^\s/]+(\/\S*)?$/.test(props.metricsUrl),
        `must be an http(s) URL, got ${JSON.stringify(props.metricsUrl)}`
      )
    }
    const requestTimeout = durationIn(
      this,
      "requestTimeout",
      props.requestTimeout ?? defaultRequestTimeout,
      CdkDuration.millis(100),
      CdkDuration.seconds(60),
      "DD_TIMEOUT_MS's limits"
    )
    if (props.apiKeyTtl !== undefined) {
      durationIn(this, "apiKeyTtl", props.apiKeyTtl, CdkDuration.seconds(0), CdkDuration.days(1))
      ensure(
        this,
        "apiKeyTtl",
        props.apiKeyTtl.toMilliseconds() % 1000 === 0,
        `must be whole seconds, got ${props.apiKeyTtl.toHumanString()}`
      )
    }
    const prefix = props.spoolPrefix ?? "metric-spool/"
    ensure(
      this,
      "spoolPrefix",
      spoolPrefixPattern.test(prefix),
      `must be folders ending in '/' (S3-safe characters), got ${JSON.stringify(prefix)}`
    )
    this.spoolPrefix = prefix
    const parkedExpiration = props.parkedExpiration ?? CdkDuration.days(90)
    durationIn(this, "parkedExpiration", parkedExpiration, CdkDuration.days(1), CdkDuration.days(3650))
    ensure(
      this,
      "parkedExpiration",
      parkedExpiration.toMilliseconds() % CdkDuration.days(1).toMilliseconds() === 0,
      `must be whole days (S3 lifecycle expirations are), got ${parkedExpiration.toHumanString()}`
    )
    const minimum = forwarderMinimum(requestTimeout)
    const timeout = props.timeout ?? forwarderTimeout(requestTimeout)
    if (!timeout.isUnresolved() && timeout.toMilliseconds() < minimum.toMilliseconds()) {
      throw new InvalidProps(
        this,
        "timeout",
        `(${timeout.toHumanString()}) is shorter than one payload's submit budget, last request and spool write (${metricsSubmitBudget.toHumanString()} + ${requestTimeout.toHumanString()} + ${spoolWriteAllowance.toHumanString()}): an invocation still retrying Datadog would be cut off before it spooled what it could not send. Use at least that; forwarderTimeout(requestTimeout) = ${forwarderTimeout(requestTimeout).toHumanString()} also leaves the deadline margin`
      )
    }
    durationIn(this, "timeout", timeout, CdkDuration.seconds(1), CdkDuration.minutes(15), "Lambda's limit")
    this.timeout = timeout
    const retrierTimeout = durationIn(
      this,
      "retrierTimeout",
      props.retrierTimeout ?? CdkDuration.minutes(5),
      forwarderTimeout(requestTimeout),
      CdkDuration.minutes(15),
      "one entry's send and spool write, after the deadline margin, up to Lambda's limit"
    )
    if (props.retryMaxEntries !== undefined) {
      integerIn(this, "retryMaxEntries", props.retryMaxEntries, 1, 1000, "RETRY_MAX_ENTRIES's limits")
    }
    if (props.reservedConcurrency !== undefined) {
      integerIn(this, "reservedConcurrency", props.reservedConcurrency, 1, 1000)
    }
    ensure(
      this,
      "emfNamespaces",
      props.emfNamespaces.length > 0 && props.emfNamespaces.every((n) => n.length > 0 && !n.includes(",")),
      `must be one or more namespaces without ',', got ${JSON.stringify(props.emfNamespaces)}`
    )

    // The key: either way the functions get its id and may read that one secret.
    const keySecret = props.apiKeySecret ?? { kind: "created" }
    let secretId: string
    if (keySecret.kind === "created") {
      // No SecretString and no GenerateSecretString: a secret with no value. A generated one
      // would be sent to Datadog as a key; until a real key is put, every read finds none and
      // the points are spooled instead.
      const secret = new secretsmanager.CfnSecret(this, "DatadogApiKey", {
        description:
          "Spillway metrics forwarder: the Datadog API key, as text or JSON with api_key (README: the Datadog API key)"
      })
      secret.applyRemovalPolicy(props.removalPolicy)
      acknowledge(
        secret,
        "SMG4",
        "The Datadog API key is issued by Datadog, not by a rotation function: it is rotated by creating a new key in Datadog, putting it into this secret (the functions read it again within DD_API_KEY_TTL_SECONDS, and at once after a 403), then revoking the old one."
      )
      this.secret = secret
      this.secretArn = secret.ref
      secretId = secret.ref
    } else {
      ensure(
        this,
        "apiKeySecret.secretName",
        secretName.test(keySecret.secretName),
        `must be a Secrets Manager secret name (1–512 characters of A-Z, a-z, 0-9, /_+=.@-), got ${JSON.stringify(keySecret.secretName)}`
      )
      this.secret = undefined
      // Secrets Manager appends '-' and six random characters to a secret's name in its ARN.
      this.secretArn = Stack.of(this).formatArn({
        service: "secretsmanager",
        resource: "secret",
        resourceName: `${keySecret.secretName}-??????`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME
      })
      secretId = keySecret.secretName
    }

    this.bucket = new s3.Bucket(this, "Spool", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: props.removalPolicy,
      lifecycleRules: [
        // Pending entries are never expired: they leave the spool only once delivered.
        { id: "parked-expiry", prefix: `${prefix}parked/`, expiration: parkedExpiration }
      ]
    })
    acknowledge(
      this.bucket,
      "S1",
      "The spool is written by the forwarder's and the retrier's roles only, and read by the retrier (and operators); S3 server access logs would need a second bucket that itself has no access logs. CloudTrail data events are the audit path when one is required."
    )

    const onFailure = queueWithDlq(this, "OnFailureQueue", {
      maxReceiveCount: props.onFailureMaxReceiveCount ?? 10,
      removalPolicy: props.removalPolicy
    })
    this.onFailureQueue = onFailure.queue
    this.onFailureDeadLetterQueue = onFailure.deadLetterQueue

    const datadog = {
      DD_SITE: site,
      DD_API_KEY_SECRET_ID: secretId,
      DD_TIMEOUT_MS: String(requestTimeout.toMilliseconds()),
      ...(props.metricsUrl === undefined ? {} : { DD_METRICS_URL: props.metricsUrl }),
      ...(props.apiKeyTtl === undefined
        ? {}
        : { DD_API_KEY_TTL_SECONDS: String(props.apiKeyTtl.toSeconds()) })
    }
    const spool = { SPOOL_BUCKET: this.bucket.bucketName, SPOOL_PREFIX: prefix }
    const objects = (area: "pending" | "parked") => this.bucket.arnForObjects(`${prefix}${area}/*`)
    // cdk-nag names a wildcard resource finding after the bucket's logical id.
    const bucketLogicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)
    const objectsFinding = (area: "pending" | "parked") =>
      `IAM5[Resource::<${bucketLogicalId}.Arn>/${prefix}${area}/*]`

    this.forwarder = new SpillwayFunction(this, "Forwarder", {
      ...props.functions,
      bundle: "forwarder",
      description:
        "Spillway metrics forwarder: ships the metric lines of its log group's subscription to Datadog, spooling what Datadog refuses before it answers",
      timeout,
      ...(props.reservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrency }),
      environment: { ...datadog, ...spool, FORWARD_EMF_NAMESPACES: props.emfNamespaces.join(",") }
    })
    this.forwarder.allow(["s3:PutObject"], [objects("pending"), objects("parked")])
    this.forwarder.allow(["secretsmanager:GetSecretValue"], [this.secretArn])
    for (const area of ["pending", "parked"] as const) {
      acknowledge(
        this.forwarder.role,
        objectsFinding(area),
        `The forwarder names each spool entry itself (hour, time, uuid): it may put objects only under the spool's ${area}/ prefix, and read or delete none.`
      )
    }
    // Lambda's own retries of an asynchronous invocation (CloudWatch Logs invokes so): twice, then
    // the event goes to the on-failure queue, with the delivery it could not forward.
    this.forwarder.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: CdkDuration.hours(6),
      onFailure: new SqsDestination(this.onFailureQueue)
    })

    this.subscription = new logs.SubscriptionFilter(this, "Subscription", {
      logGroup: props.logGroup,
      destination: new LambdaDestination(this.forwarder.function),
      filterPattern: metricLinePattern,
      filterName: "spillway-metric-lines"
    })

    this.retrier = new SpillwayFunction(this, "Retrier", {
      ...props.functions,
      bundle: "forward-retrier",
      description:
        "Spillway forward retrier: sends the metric spool to Datadog again, oldest first, every minute until it lands",
      timeout: retrierTimeout,
      // One run at a time: two would send the same entries twice.
      reservedConcurrentExecutions: 1,
      environment: {
        ...datadog,
        ...spool,
        ...(props.retryMaxEntries === undefined ? {} : { RETRY_MAX_ENTRIES: String(props.retryMaxEntries) })
      }
    })
    // ListObjectsV2 of the pending area only; reads and deletes there; puts (a part delivered,
    // the rest stored again; points moved to parked) in both areas.
    this.retrier.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:ListBucket"],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": [`${prefix}pending/*`] } }
      })
    )
    this.retrier.allow(["s3:GetObject", "s3:DeleteObject"], [objects("pending")])
    this.retrier.allow(["s3:PutObject"], [objects("pending"), objects("parked")])
    this.retrier.allow(["secretsmanager:GetSecretValue"], [this.secretArn])
    acknowledge(
      this.retrier.role,
      objectsFinding("pending"),
      "The retrier reads, deletes and stores again the entries it lists under the spool's pending/ prefix (ListBucket is limited to it by s3:prefix), whatever their names."
    )
    acknowledge(
      this.retrier.role,
      objectsFinding("parked"),
      "The retrier moves points Datadog will never take under the spool's parked/ prefix, naming each entry itself; it may only put objects there."
    )
    // A tick is worth nothing once the next one is due: no retries, and one that finds the
    // previous run still going (throttled by the reserved concurrency) is dropped after a minute.
    const interval = CdkDuration.minutes(Duration.toMinutes(Schedules.spoolRetryInterval))
    this.retrier.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: interval })
    this.schedule = new events.Rule(this, "RetrySchedule", {
      description: "Spillway forward retrier: every minute (Schedules.spoolRetryInterval)",
      schedule: events.Schedule.rate(interval),
      targets: [
        new targets.LambdaFunction(this.retrier.function, { retryAttempts: 2, maxEventAge: interval })
      ]
    })

    output(this, "MetricSpoolBucket", this.bucket.bucketName)
    output(
      this,
      "DatadogApiKeySecretId",
      secretId,
      "The secret the forwarder reads the Datadog API key from (README: the Datadog API key)"
    )
    output(this, "ForwarderOnFailureQueueUrl", this.onFailureQueue.queueUrl)
    output(
      this,
      "ForwarderName",
      this.forwarder.function.functionName,
      "Invoke asynchronously with a failed delivery's requestPayload to forward it again"
    )
  }
}
