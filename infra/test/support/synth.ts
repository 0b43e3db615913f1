/**
 * The CDK app of `bin/app.ts`, synthesized once per test file into a temporary folder: every
 * stage, with cdk-nag's plugin, from a code folder this module fills with stand-in handler files.
 * The templates do not depend on what a bundle contains (an asset is named by its hash), so the
 * tests need no `npm run build`; the real bundles are what `npm run synth` uses.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { App } from "aws-cdk-lib"
import { Template } from "aws-cdk-lib/assertions"
import { addStages, stackName } from "../../src/SpillwayApp.js"
import { bundles } from "../../src/SpillwayFunction.js"
import type { SpillwayStack } from "../../src/SpillwayStack.js"
import { type StageConfig, stages } from "../../src/Stages.js"

const temporary: Array<string> = []

/** A fresh folder under the OS's temporary folder, removed by `removeTemporaryFolders`. */
export const temporaryFolder = (prefix: string): string => {
  const folder = mkdtempSync(join(tmpdir(), prefix))
  temporary.push(folder)
  return folder
}

/** Removes every folder this file's tests made (call it in `afterAll`). */
export const removeTemporaryFolders = (): void => {
  for (const folder of temporary.splice(0)) rmSync(folder, { recursive: true, force: true })
  codeDirectory = undefined
  synthesized = undefined
}

let codeDirectory: string | undefined

/** A code folder with one `<function>/index.mjs` per bundle (test data, never deployed). */
export const testCodeDirectory = (): string => {
  if (codeDirectory !== undefined) return codeDirectory
  const root = temporaryFolder("spillway-infra-code-")
  for (const bundle of bundles) {
    mkdirSync(join(root, bundle))
    writeFileSync(
      join(root, bundle, "index.mjs"),
      `// Test data for the ${bundle} asset: the infra tests read templates, they never run it.\nexport const handler = async () => ({})\n`
    )
  }
  codeDirectory = root
  return root
}

export interface Synthesized {
  readonly app: App
  readonly stacks: ReadonlyMap<string, SpillwayStack>
  /** The cloud assembly's folder (templates, `validation-report.json`). */
  readonly outdir: string
  readonly template: (stage: StageConfig) => Template
  readonly templateFile: (stage: StageConfig) => string
}

/** The stack of the stage named `name` in `synthesized`; a stage that is not there fails the test file. */
export const stackOf = (synthesized: Synthesized, name: string): SpillwayStack => {
  const stack = synthesized.stacks.get(name)
  if (stack === undefined) throw new Error(`no stage ${name}`)
  return stack
}

let synthesized: Synthesized | undefined

/** Every stage, synthesized once (per test file). */
export const synthesizeAll = (): Synthesized => {
  if (synthesized !== undefined) return synthesized
  const outdir = temporaryFolder("spillway-infra-out-")
  const app = new App({ outdir })
  const list = addStages(app, { codeDirectory: testCodeDirectory() })
  const assembly = app.synth()
  const stacks = new Map(list.map((stack) => [stack.stage.name, stack]))
  const templates = new Map<string, Template>()
  const templateFile = (stage: StageConfig) =>
    join(outdir, assembly.getStackByName(stackName(stage)).templateFile)
  synthesized = {
    app,
    stacks,
    outdir,
    templateFile,
    template: (stage) => {
      const known = templates.get(stage.name)
      if (known !== undefined) return known
      const template = Template.fromJSON(JSON.parse(readFileSync(templateFile(stage), "utf8")))
      templates.set(stage.name, template)
      return template
    }
  }
  return synthesized
}

export { stages }
