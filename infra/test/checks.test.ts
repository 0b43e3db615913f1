/**
 * The checks AWS users trust, over every stage's synthesized templates:
 * - cdk-nag 3 (`AwsSolutionsChecks` as a policy-validation plugin): zero findings nobody
 *   acknowledged, and every acknowledgement in the app carries a written reason;
 * - cfn-lint (AWS's CloudFormation linter, a Python tool on PATH): zero errors, zero warnings but
 *   those listed in `cfnLintIgnored`, each with its reason.
 * Each check first proves, on a template made to fail it, that it does report what it looks for.
 */
import { execFile } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { App, Stack, Validations } from "aws-cdk-lib"
import * as sqs from "aws-cdk-lib/aws-sqs"
import { AwsSolutionsChecks } from "cdk-nag"
import type { IConstruct } from "constructs"
import { afterAll, describe, expect, it } from "vitest"
import { removeTemporaryFolders, stages, synthesizeAll, temporaryFolder } from "./support/synth.js"

const synthesized = synthesizeAll()
afterAll(removeTemporaryFolders)

interface Violation {
  readonly ruleName: string
  readonly violatingConstructs: ReadonlyArray<{ readonly constructPath: string }>
}

interface ValidationReport {
  readonly pluginReports: ReadonlyArray<{
    readonly pluginName: string
    readonly conclusion: string
    readonly violations: ReadonlyArray<Violation>
    /** Findings an acknowledgement covers, with its id, reason and where it was made. */
    readonly suppressedViolations?: ReadonlyArray<
      Violation & {
        readonly acknowledgedId: string
        readonly acknowledgedAt: string
        readonly reason?: string
      }
    >
  }>
}

const reportIn = (outdir: string): ValidationReport =>
  JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8")) as ValidationReport

/** Every `Validations.of(x).acknowledge(...)` in the tree under `root`: where, which rule, why. */
const acknowledgements = (root: IConstruct) =>
  root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason
        }))
      )
  )

describe("cdk-nag (AwsSolutionsChecks)", () => {
  it("reports a finding that nobody acknowledged (the check can fail)", () => {
    const outdir = temporaryFolder("spillway-nag-control-")
    const app = new App({ outdir })
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
    // A queue without a dead-letter queue, without TLS enforcement.
    new sqs.Queue(new Stack(app, "Control"), "Queue", { encryption: sqs.QueueEncryption.SQS_MANAGED })
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3/)
    const rules = reportIn(outdir).pluginReports.flatMap((report) => report.violations.map((v) => v.ruleName))
    expect(rules).toEqual(expect.arrayContaining(["AwsSolutions-SQS3", "AwsSolutions-SQS4"]))
  })

  it("finds nothing unacknowledged in any stage", () => {
    const report = reportIn(synthesized.outdir)
    const unacknowledged = report.pluginReports.flatMap((plugin) =>
      plugin.violations.flatMap((violation) =>
        violation.violatingConstructs.map(
          (construct) => `${violation.ruleName} at ${construct.constructPath}`
        )
      )
    )
    expect(unacknowledged).toEqual([])
    expect(report.pluginReports.filter((plugin) => plugin.conclusion !== "success")).toEqual([])
  })

  it("every acknowledgement names its rule, gives a reason, covers a finding; the list is the reviewed one", () => {
    const found = acknowledgements(synthesized.app)
    for (const { id, reason } of found) {
      expect(id).toMatch(/^AwsSolutions::AwsSolutions-[A-Z]+[0-9]+(\[.+\])?$/)
      // A sentence that says why, not a placeholder.
      expect(reason.length, `${id}: ${reason}`).toBeGreaterThan(80)
    }
    // The report lists each finding an acknowledgement covered: none of them is left unused.
    const suppressed = reportIn(synthesized.outdir).pluginReports.flatMap(
      (plugin) => plugin.suppressedViolations ?? []
    )
    for (const violation of suppressed) expect(violation.reason?.length ?? 0).toBeGreaterThan(80)
    const used = new Set(
      suppressed.map((violation) => `${violation.acknowledgedAt} ${violation.acknowledgedId}`)
    )
    expect(found.map(({ path, id }) => `${path} ${id}`).filter((key) => !used.has(key))).toEqual([])

    const perStage = (name: string) =>
      found
        .filter(({ path }) => path.startsWith(`Spillway-${name}/`))
        .map(
          ({ path, id }) =>
            `${path.slice(`Spillway-${name}/`.length)} ${id.replace("AwsSolutions::AwsSolutions-", "")}`
        )
        .sort()
    const common = [
      "Backup/Archive S1",
      "Backup/DeliveryPolicy IAM5[Resource::<BackupArchive1B8C1916.Arn>/archive/*]",
      "Backup/DeliveryPolicy IAM5[Resource::<BackupArchive1B8C1916.Arn>/delivery-errors/*]",
      "Backup/DeliveryStream KDF1",
      "Backup/Replayer/Role IAM5[Resource::<BackupArchive1B8C1916.Arn>/archive/*]",
      "Search/Domain OS1",
      "Search/Domain OS3"
    ]
    const spoolObjects = (area: string) =>
      `IAM5[Resource::<ClickstreamForwarderSpoolEF8CCF83.Arn>/metric-spool/${area}/*]`
    const clickstream = [
      "Clickstream/Forwarder/DatadogApiKey SMG4",
      "Clickstream/Forwarder/Spool S1",
      `Clickstream/Forwarder/Forwarder/Role ${spoolObjects("pending")}`,
      `Clickstream/Forwarder/Forwarder/Role ${spoolObjects("parked")}`,
      `Clickstream/Forwarder/Retrier/Role ${spoolObjects("pending")}`,
      `Clickstream/Forwarder/Retrier/Role ${spoolObjects("parked")}`
    ]
    const production = [...common, "Ingestion/Api/DefaultRoute/Resource APIG4", "Ingestion/ApiKeys SMG4"]
    expect(perStage("dev")).toEqual(
      [...common, ...clickstream, "Search/Domain OS4", "Search/Domain OS7"].sort()
    )
    expect(perStage("prod-us")).toEqual([...production, ...clickstream].sort())
    expect(perStage("prod-eu")).toEqual(production.sort())
  })
})

/**
 * Warnings cfn-lint reports on these templates that are accepted, and why. Nothing else passes:
 * no error at all, and no other warning or informational finding.
 */
const cfnLintIgnored: Readonly<Record<string, string>> = {
  I1022:
    "Use Fn::Sub instead of Fn::Join: CDK renders ARNs and URLs as Fn::Join; cfn-lint skips this rule itself for templates it recognises as CDK's, by the AWS::CDK::Metadata resource that version reporting off leaves out.",
  W3005:
    "A DependsOn already implied by a GetAtt: CDK's Function lists its role (and the role's policy) in DependsOn on top of the role's ARN; the extra edge changes nothing in the deployment order."
}

interface LintFinding {
  readonly Rule: { readonly Id: string }
  readonly Level: string
  readonly Message: string
  readonly Location: { readonly Path: ReadonlyArray<string | number> }
}

const run = promisify(execFile)

/** cfn-lint's findings for one template in one region, every level included. */
const cfnLint = async (file: string, region: string): Promise<ReadonlyArray<LintFinding>> => {
  const args = ["--format", "json", "--include-checks", "I", "--regions", region, "--", file]
  try {
    const { stdout } = await run("cfn-lint", args, { maxBuffer: 64 * 1024 * 1024 })
    return JSON.parse(stdout === "" ? "[]" : stdout) as Array<LintFinding>
  } catch (error) {
    // cfn-lint exits non-zero when it finds anything (2 errors, 4 warnings, 8 informational).
    const failed = error as { readonly code?: unknown; readonly stdout?: string }
    if (
      typeof failed.code === "number" &&
      failed.code > 0 &&
      failed.stdout !== undefined &&
      failed.stdout !== ""
    ) {
      return JSON.parse(failed.stdout) as Array<LintFinding>
    }
    if (failed.code === "ENOENT")
      throw new Error("cfn-lint is not on PATH: pip install cfn-lint (AWS's, not npm's)")
    throw error
  }
}

const describeFinding = (finding: LintFinding) =>
  `${finding.Rule.Id} (${finding.Level}) at ${finding.Location.Path.join("/")}: ${finding.Message}`

describe("cfn-lint", () => {
  it("reports an error in a template that has one (the check can fail)", async () => {
    const file = join(temporaryFolder("spillway-lint-control-"), "control.template.json")
    writeFileSync(
      file,
      JSON.stringify({
        Resources: { Queue: { Type: "AWS::SQS::Queue", Properties: { VisibilityTimeout: "a while" } } }
      })
    )
    const findings = await cfnLint(file, "eu-west-1")
    expect(findings.filter((finding) => finding.Level === "Error").length).toBeGreaterThan(0)
  })

  it("every stage's template: no errors, no findings but the listed ones", async () => {
    const results = await Promise.all(
      stages.map(async (stage) => ({
        stage: stage.name,
        findings: await cfnLint(synthesized.templateFile(stage), stage.region)
      }))
    )
    for (const { stage, findings } of results) {
      const errors = findings.filter((finding) => finding.Level === "Error").map(describeFinding)
      expect(errors, stage).toEqual([])
      const unlisted = findings
        .filter((finding) => cfnLintIgnored[finding.Rule.Id] === undefined)
        .map(describeFinding)
      expect(unlisted, stage).toEqual([])
    }
    // Every ignore is still needed: each rule listed shows up somewhere.
    const seen = new Set(results.flatMap(({ findings }) => findings.map((finding) => finding.Rule.Id)))
    expect(Object.keys(cfnLintIgnored).filter((id) => !seen.has(id))).toEqual([])
  })
})
