/**
 * The OpenSearch Service domain documents are written to, and the index layout the processor and
 * the failure reprocessor write with (`OPENSEARCH_*`, README "The OpenSearch index layout").
 *
 * Guarantees:
 * - encrypted at rest, node-to-node encrypted, HTTPS only (TLS 1.2 with forward secrecy).
 * - no anonymous access: the domain's access policy names the roles granted through
 *   `grantSinkWrite`, and for each only `es:ESHttpPost` on `_bulk` and `es:ESHttpPut` on the
 *   layout's index template — the two requests `OpenSearchSink` sends. The same statements go on
 *   the roles themselves. Anyone else needs an identity policy of their own in this account
 *   (operators: `spillway restore`, Dashboards) and SigV4-signed requests.
 * - snapshots: OpenSearch Service takes an automated snapshot every hour and keeps 336 of them
 *   (14 days) in `cs-automated-enc`; nothing is configured for that, and CloudFormation's
 *   `AutomatedSnapshotStartHour` is not set because it applies only to Elasticsearch before 5.3. A
 *   failed automated snapshot raises an alarm (`Observability`).
 * - the access policy is set on the domain resource itself, not through CDK's custom resource
 *   (a Lambda function calling UpdateDomainConfig): the policy names the domain by its ARN built
 *   from the domain's name, which is therefore fixed (`spillway-<stage>`).
 */
import { Lazy, type RemovalPolicy, Stack } from "aws-cdk-lib"
import * as ec2 from "aws-cdk-lib/aws-ec2"
import * as iam from "aws-cdk-lib/aws-iam"
import * as logs from "aws-cdk-lib/aws-logs"
import * as opensearch from "aws-cdk-lib/aws-opensearchservice"
import { Construct } from "constructs"
import { ensure, integerIn } from "./internal/checks.js"
import { acknowledge } from "./internal/nag.js"
import { output } from "./internal/outputs.js"
import type { SpillwayFunction } from "./SpillwayFunction.js"

/** The index layout the sink writes with (`OPENSEARCH_INDEX`, `_INDEX_PERIOD`, `_TOTAL_FIELDS_LIMIT`, `_PAYLOAD_MAPPING`). */
export interface IndexSettings {
  /** The alias documents are written behind; indices are `<alias>-<date>`. @default "telemetry" */
  readonly alias?: string
  /** One index per `day`, per `month`, or one index (`none`). @default "day" */
  readonly period?: "day" | "month" | "none"
  /** The index template's `index.mapping.total_fields.limit` (at least 10). @default 1000 */
  readonly totalFieldsLimit?: number
  /** `payload` mapped `dynamic`, or as one `flat_object` field. @default "dynamic" */
  readonly payloadMapping?: "dynamic" | "flat_object"
}

export interface SearchDomainSettings {
  /** @default EngineVersion.OPENSEARCH_2_19 (the version the sink is tested against) */
  readonly engineVersion?: opensearch.EngineVersion
  /** Data nodes: with 2 or 3 availability zones, a multiple of that count. @default 1 */
  readonly dataNodes?: number
  /** @default "r7g.large.search" */
  readonly dataNodeInstanceType?: string
  /** Dedicated master nodes: 0, 3 or 5. @default 0 */
  readonly masterNodes?: number
  /** @default "m7g.large.search" */
  readonly masterNodeInstanceType?: string
  /** Availability zones the nodes are spread over: 1 (no zone awareness), 2 or 3. @default 1 */
  readonly availabilityZones?: 1 | 2 | 3
  /** gp3 storage per data node, in GiB. @default 100 */
  readonly volumeSizeGiB?: number
  /** The daily hour (UTC) from which the service may apply updates (a 10-hour off-peak window). @default 22 */
  readonly offPeakWindowStartHour?: number
  /** @default the defaults of each `IndexSettings` field */
  readonly index?: IndexSettings
}

export interface SearchDomainProps extends SearchDomainSettings {
  /** The domain's name: 3–28 characters, lower-case letters, digits and '-', starting with a letter. */
  readonly domainName: string
  readonly removalPolicy: RemovalPolicy
  /** How long the domain's own logs are kept. */
  readonly logRetention: logs.RetentionDays
}

const validAlias = /^[a-z0-9][a-z0-9._-]*$/

export class SearchDomain extends Construct {
  readonly domain: opensearch.Domain
  readonly domainName: string
  /** The variables the processor and the failure reprocessor write with. */
  readonly sinkEnvironment: Readonly<Record<string, string>>
  /** `es:` resource ARNs the sink writes to: `_bulk` and the layout's index template. */
  readonly sinkResources: { readonly bulk: string; readonly indexTemplate: string }
  private readonly accessStatements: Array<iam.PolicyStatement> = []

  constructor(scope: Construct, id: string, props: SearchDomainProps) {
    super(scope, id)
    this.domainName = props.domainName
    ensure(
      this,
      "domainName",
      /^[a-z][a-z0-9-]{2,27}$/.test(props.domainName),
      `must be 3–28 characters of a-z, 0-9 and '-', starting with a letter, got ${JSON.stringify(props.domainName)}`
    )
    const zones = props.availabilityZones ?? 1
    const dataNodes = integerIn(this, "dataNodes", props.dataNodes ?? 1, 1, 80)
    ensure(
      this,
      "dataNodes",
      dataNodes % zones === 0,
      `must be a multiple of availabilityZones (${zones}) so every zone holds the same share, got ${dataNodes}`
    )
    const masterNodes = props.masterNodes ?? 0
    ensure(this, "masterNodes", [0, 3, 5].includes(masterNodes), `must be 0, 3 or 5, got ${masterNodes}`)
    const volumeSize = integerIn(this, "volumeSizeGiB", props.volumeSizeGiB ?? 100, 10, 24_576)
    const offPeakHour = integerIn(this, "offPeakWindowStartHour", props.offPeakWindowStartHour ?? 22, 0, 23)

    const index = props.index ?? {}
    const alias = index.alias ?? "telemetry"
    ensure(
      this,
      "index.alias",
      validAlias.test(alias) && alias.length <= 200,
      `must be a valid index name (lower-case letters, digits, '.', '_', '-', starting with a letter or digit), got ${JSON.stringify(alias)}`
    )
    if (index.totalFieldsLimit !== undefined) {
      integerIn(this, "index.totalFieldsLimit", index.totalFieldsLimit, 10, 100_000)
    }

    const appLogs = new logs.LogGroup(this, "ApplicationLogs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy
    })
    const slowSearchLogs = new logs.LogGroup(this, "SlowSearchLogs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy
    })
    const slowIndexLogs = new logs.LogGroup(this, "SlowIndexLogs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy
    })
    // The service writes the domain's logs: a plain CloudFormation resource policy, instead of
    // the custom resource the Domain construct would add for it.
    const logsPolicy = new logs.CfnResourcePolicy(this, "LogsPolicy", {
      policyName: `${props.domainName}-opensearch-logs`,
      policyDocument: Lazy.string({
        produce: () =>
          Stack.of(this).toJsonString({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Principal: { Service: "es.amazonaws.com" },
                Action: ["logs:PutLogEvents", "logs:CreateLogStream"],
                Resource: [appLogs.logGroupArn, slowSearchLogs.logGroupArn, slowIndexLogs.logGroupArn],
                Condition: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } }
              }
            ]
          })
      })
    })

    this.domain = new opensearch.Domain(this, "Domain", {
      domainName: props.domainName,
      version: props.engineVersion ?? opensearch.EngineVersion.OPENSEARCH_2_19,
      capacity: {
        dataNodes,
        dataNodeInstanceType: props.dataNodeInstanceType ?? "r7g.large.search",
        masterNodes,
        ...(masterNodes > 0
          ? { masterNodeInstanceType: props.masterNodeInstanceType ?? "m7g.large.search" }
          : {}),
        multiAzWithStandbyEnabled: false
      },
      ...(zones > 1 ? { zoneAwareness: { enabled: true, availabilityZoneCount: zones } } : {}),
      ebs: { enabled: true, volumeSize, volumeType: ec2.EbsDeviceVolumeType.GP3 },
      encryptionAtRest: { enabled: true },
      nodeToNodeEncryption: true,
      enforceHttps: true,
      tlsSecurityPolicy: opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
      enableVersionUpgrade: true,
      offPeakWindowEnabled: true,
      offPeakWindowStart: { hours: offPeakHour, minutes: 0 },
      logging: {
        appLogEnabled: true,
        appLogGroup: appLogs,
        slowSearchLogEnabled: true,
        slowSearchLogGroup: slowSearchLogs,
        slowIndexLogEnabled: true,
        slowIndexLogGroup: slowIndexLogs
      },
      suppressLogsResourcePolicy: true,
      removalPolicy: props.removalPolicy
    })
    const cfnDomain = this.domain.node.defaultChild as opensearch.CfnDomain
    this.domain.node.addDependency(logsPolicy)
    cfnDomain.accessPolicies = Lazy.any({
      produce: () => ({
        Version: "2012-10-17",
        Statement: this.accessStatements.map((statement) => statement.toStatementJson())
      })
    })
    this.node.addValidation({
      validate: () =>
        this.accessStatements.length === 0
          ? ["the domain's access policy names nobody: grant the sink's writers with grantSinkWrite"]
          : []
    })

    const domainResource = (path: string) =>
      Stack.of(this).formatArn({
        service: "es",
        resource: "domain",
        resourceName: `${props.domainName}/${path}`
      })
    this.sinkResources = {
      bulk: domainResource("_bulk"),
      // `IndexLayout.templateName` in @spillway/aws: `<alias>-template`.
      indexTemplate: domainResource(`_index_template/${alias}-template`)
    }
    const endpoint = `https://${this.domain.domainEndpoint}`
    this.sinkEnvironment = {
      OPENSEARCH_ENDPOINT: endpoint,
      OPENSEARCH_SERVICE: "es",
      OPENSEARCH_INDEX: alias,
      ...(index.period === undefined ? {} : { OPENSEARCH_INDEX_PERIOD: index.period }),
      ...(index.totalFieldsLimit === undefined
        ? {}
        : { OPENSEARCH_TOTAL_FIELDS_LIMIT: String(index.totalFieldsLimit) }),
      ...(index.payloadMapping === undefined ? {} : { OPENSEARCH_PAYLOAD_MAPPING: index.payloadMapping })
    }

    acknowledge(
      this.domain,
      "OS1",
      "Not in a VPC: the functions that write reach it over HTTPS with SigV4-signed requests, and the access policy names only their roles. A VPC domain would put the processor and the failure reprocessor in the VPC too, with NAT or endpoints for Kinesis and SQS."
    )
    acknowledge(
      this.domain,
      "OS3",
      "Access is by IAM identity, not by address: Lambda functions have no fixed source IPs, and the access policy grants only the sink's two requests to the sink's roles."
    )
    if (masterNodes === 0) {
      acknowledge(
        this.domain,
        "OS4",
        "This stage runs without dedicated master nodes (masterNodes: 0), a cost choice for small domains; the production stages set 3."
      )
    }
    if (zones === 1) {
      acknowledge(
        this.domain,
        "OS7",
        "This stage runs in one availability zone (availabilityZones: 1), a cost choice for small domains; the production stages spread over 3. Lost data comes back from the hourly snapshots and the S3 archive (README: disaster recovery)."
      )
    }

    output(this, "DomainEndpoint", endpoint)
  }

  /** Lets `writer` send what `OpenSearchSink` sends: `_bulk` writes and the index template. */
  grantSinkWrite(writer: SpillwayFunction): void {
    const statements = [
      { actions: ["es:ESHttpPost"], resources: [this.sinkResources.bulk] },
      { actions: ["es:ESHttpPut"], resources: [this.sinkResources.indexTemplate] }
    ]
    for (const statement of statements) {
      writer.allow(statement.actions, statement.resources)
      this.accessStatements.push(
        new iam.PolicyStatement({
          ...statement,
          principals: [new iam.ArnPrincipal(writer.role.roleArn)]
        })
      )
    }
  }
}
