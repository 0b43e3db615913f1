/**
 * One stage of Spillway as one stack: ingestion, processing, the search domain, the backup and
 * its replayer, and the alarms, wired together; and, on a stage with `clickstream` settings, the
 * clickstream metrics path with its alarms and dashboard widgets. A stage shares nothing with
 * another stage (its own streams, domain, archive, spool and alarms), so each deploys, fails and
 * is deleted on its own.
 */
import { RemovalPolicy, Stack, type StackProps, Tags } from "aws-cdk-lib"
import * as logs from "aws-cdk-lib/aws-logs"
import type { Construct } from "constructs"
import { Backup } from "./Backup.js"
import { Clickstream } from "./Clickstream.js"
import { ClickstreamObservability } from "./ClickstreamObservability.js"
import { Ingestion } from "./Ingestion.js"
import { ensure } from "./internal/checks.js"
import { Observability } from "./Observability.js"
import { Processing } from "./Processing.js"
import { SearchDomain } from "./SearchDomain.js"
import type { FunctionDefaults } from "./SpillwayFunction.js"
import type { StageConfig } from "./Stages.js"

export interface SpillwayStackProps extends StackProps {
  readonly stage: StageConfig
  /** Overrides the stage's `functions.codeDirectory` (tests synthesize without a build). */
  readonly codeDirectory?: string
}

export class SpillwayStack extends Stack {
  readonly stage: StageConfig
  readonly ingestion: Ingestion
  readonly search: SearchDomain
  readonly processing: Processing
  readonly backup: Backup
  readonly observability: Observability
  /** The clickstream metrics path, on a stage with `clickstream` settings. */
  readonly clickstream: Clickstream | undefined
  readonly clickstreamObservability: ClickstreamObservability | undefined

  constructor(scope: Construct, id: string, props: SpillwayStackProps) {
    const { stage } = props
    super(scope, id, {
      description: `Spillway telemetry pipeline, stage ${stage.name} (${stage.region})`,
      ...props,
      env: { region: stage.region, ...(stage.account === undefined ? {} : { account: stage.account }) }
    })
    this.stage = stage
    ensure(
      this,
      "stage.name",
      /^[a-z][a-z0-9-]{1,18}$/.test(stage.name),
      `must be 2–19 characters of a-z, 0-9 and '-', starting with a letter (it names the stack, the domain and the alarms), got ${JSON.stringify(stage.name)}`
    )
    // Not on the dashboard: cfn-lint 1.51's schema for AWS::CloudWatch::Dashboard has no Tags yet (E3002).
    Tags.of(this).add("spillway:stage", stage.name, { excludeResourceTypes: ["AWS::CloudWatch::Dashboard"] })

    const retainData = stage.retainData ?? true
    const removalPolicy = retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY
    const metricsNamespace = stage.metricsNamespace ?? `Spillway/${stage.name}`
    const logRetention = stage.functions?.logRetention ?? logs.RetentionDays.ONE_MONTH
    const functions: FunctionDefaults & { readonly metricsNamespace: string } = {
      ...stage.functions,
      ...(props.codeDirectory === undefined ? {} : { codeDirectory: props.codeDirectory }),
      metricsNamespace
    }

    this.ingestion = new Ingestion(this, "Ingestion", { ...stage.ingestion, functions, removalPolicy })
    this.search = new SearchDomain(this, "Search", {
      ...stage.search,
      domainName: `spillway-${stage.name}`,
      removalPolicy,
      logRetention
    })
    this.processing = new Processing(this, "Processing", {
      ...stage.processing,
      stream: this.ingestion.stream,
      streamRetention: this.ingestion.retention,
      search: this.search,
      functions,
      removalPolicy
    })
    this.backup = new Backup(this, "Backup", {
      ...stage.backup,
      stream: this.ingestion.stream,
      functions,
      removalPolicy,
      logRetention
    })
    this.observability = new Observability(this, "Observability", {
      ...stage.observability,
      stageName: stage.name,
      metricsNamespace,
      stream: this.ingestion.stream,
      functions: {
        collector: this.ingestion.collector,
        redriver: this.ingestion.redriver,
        processor: this.processing.processor,
        failureReprocessor: this.processing.failureReprocessor,
        backupReplayer: this.backup.replayer
      },
      fallbackQueue: this.ingestion.fallbackQueue,
      onFailureQueue: this.processing.onFailureQueue,
      deadLetterQueues: {
        FallbackDeadLetters: this.ingestion.fallbackDeadLetterQueue,
        OnFailureDeadLetters: this.processing.onFailureDeadLetterQueue
      },
      deliveryStream: this.backup.deliveryStream,
      search: this.search
    })

    if (stage.clickstream === undefined) {
      this.clickstream = undefined
      this.clickstreamObservability = undefined
    } else {
      const { observability, ...settings } = stage.clickstream
      this.clickstream = new Clickstream(this, "Clickstream", { ...settings, functions, removalPolicy })
      this.clickstreamObservability = new ClickstreamObservability(this, "ClickstreamObservability", {
        ...observability,
        stageName: stage.name,
        metricsNamespace,
        clickstream: this.clickstream,
        topic: this.observability.topic,
        dashboard: this.observability.dashboard
      })
    }
  }
}
