/**
 * Every Spillway Lambda function, with the defaults set once: the prebuilt ES module bundle of
 * `npm run build` (`apps/lambdas/dist/<function>/index.mjs`, handler `index.handler`), Node 24 on
 * arm64, JSON logs into a log group of its own with a retention, and a role of its own that may
 * write to that log group and nothing else until a construct grants it what its function calls.
 *
 * The role is not Lambda's `AWSLambdaBasicExecutionRole` managed policy, which lets a function
 * write to every log group in the account: each role here names its one log group, and every
 * other statement is added by the construct that knows which AWS calls the function makes (see
 * README "Environment variables" and `packages/aws/src`).
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Duration, RemovalPolicy } from "aws-cdk-lib"
import * as iam from "aws-cdk-lib/aws-iam"
import * as lambda from "aws-cdk-lib/aws-lambda"
import * as logs from "aws-cdk-lib/aws-logs"
import { Construct } from "constructs"
import { InvalidProps, integerIn } from "./internal/checks.js"

/** The functions `npm run build` bundles, by their folder under the code directory. */
export const bundles = [
  "collector",
  "redriver",
  "processor",
  "failure-reprocessor",
  "backup-replayer",
  "cleaner",
  "metrics",
  "forwarder",
  "forward-retrier"
] as const
export type Bundle = (typeof bundles)[number]

/** Where `npm run build` writes the bundles (`apps/lambdas/dist`, from this file's place in the repository). */
export const defaultCodeDirectory: string = fileURLToPath(new URL("../../apps/lambdas/dist", import.meta.url))

/** What every function of a stage shares. */
export interface FunctionDefaults {
  /**
   * The folder holding `<function>/index.mjs` for every function.
   * @default the repository's `apps/lambdas/dist` (`npm run build`)
   */
  readonly codeDirectory?: string
  /** Memory in MB (CPU scales with it, and with it cold starts shorten). @default 1024 */
  readonly memorySize?: number
  /** How long the functions' logs are kept. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays
  /**
   * Lowest level logged (Lambda's `ApplicationLogLevel`, read by the functions as
   * `AWS_LAMBDA_LOG_LEVEL`; JSON lines below it are dropped by Lambda). Keep `INFO` or lower: the
   * functions' EMF metric lines are logged at `INFO`.
   * @default ApplicationLogLevel.INFO
   */
  readonly logLevel?: lambda.ApplicationLogLevel
  /** `METRICS_NAMESPACE`: the CloudWatch namespace of the functions' EMF metrics. @default "Spillway" */
  readonly metricsNamespace?: string
  /**
   * `NODE_OPTIONS=--enable-source-maps`: stack traces in logs point into the TypeScript sources
   * through each bundle's `index.mjs.map`, at some cost on every error that builds a stack.
   * @default false
   */
  readonly sourceMaps?: boolean
  /** What happens to the log groups when the stack is deleted. @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy
}

export interface SpillwayFunctionProps extends FunctionDefaults {
  /** Which bundle runs. */
  readonly bundle: Bundle
  readonly description: string
  readonly timeout: Duration
  /** The function's variables (the ones every function reads are added: `METRICS_NAMESPACE`). */
  readonly environment?: Readonly<Record<string, string>>
  /** Concurrency kept for (and capped at) this function. @default no reservation */
  readonly reservedConcurrentExecutions?: number
}

export class SpillwayFunction extends Construct {
  readonly bundle: Bundle
  readonly function: lambda.Function
  readonly role: iam.Role
  readonly logGroup: logs.LogGroup

  constructor(scope: Construct, id: string, props: SpillwayFunctionProps) {
    super(scope, id)
    this.bundle = props.bundle
    const codeDirectory = props.codeDirectory ?? defaultCodeDirectory
    const entry = join(codeDirectory, props.bundle, "index.mjs")
    if (!existsSync(entry)) {
      throw new InvalidProps(
        this,
        "codeDirectory",
        `has no ${props.bundle} bundle (${entry} is missing): run \`npm run build\` first (\`npm run synth\` and \`cdk deploy\` do)`
      )
    }
    const memorySize = integerIn(
      this,
      "memorySize",
      props.memorySize ?? 1024,
      128,
      10_240,
      "Lambda's limits, in MB"
    )

    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY
    })
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `Spillway ${props.bundle}: its own log group, and what its function calls`
    })
    // The log group's ARN attribute ends in `:*`, which covers its streams (CreateLogStream, PutLogEvents).
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn]
      })
    )

    this.function = new lambda.Function(this, "Function", {
      description: props.description,
      code: lambda.Code.fromAsset(join(codeDirectory, props.bundle)),
      handler: "index.handler",
      runtime: lambda.Runtime.NODEJS_24_X,
      // The bundles are plain JavaScript (the AWS SDK bundled in, no native modules): arm64 is cheaper per ms.
      architecture: lambda.Architecture.ARM_64,
      memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: props.logLevel ?? lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      environment: {
        METRICS_NAMESPACE: props.metricsNamespace ?? "Spillway",
        ...(props.sourceMaps === true ? { NODE_OPTIONS: "--enable-source-maps" } : {}),
        ...props.environment
      }
    })
  }

  /** Adds one statement to the function's role. */
  allow(actions: ReadonlyArray<string>, resources: ReadonlyArray<string>): void {
    this.role.addToPolicy(new iam.PolicyStatement({ actions: [...actions], resources: [...resources] }))
  }
}
