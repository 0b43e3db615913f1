/**
 * The bundling rules of `scripts/bundles.ts`, on fixture entries (written under
 * `node_modules/.cache`, so they resolve the workspace's packages): which entries are functions,
 * the AWS SDK bundled in its ESM build and loading under the runtime client, and the build
 * failing, with nothing written, on test code, on a dependency left external and on an entry
 * without `handler`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import * as esbuild from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  BundleCheckError,
  buildBundles,
  checkMetafile,
  discoverFunctions,
  esbuildOptions,
  repositoryRoot,
  sizeReport
} from "../scripts/bundles.js"
import * as LambdaProcess from "./support/LambdaProcess.js"

let dir = ""

const write = (path: string, source: string) => {
  const file = join(dir, path)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, source)
  return file
}

beforeAll(() => {
  mkdirSync(join(repositoryRoot, "node_modules/.cache"), { recursive: true })
  dir = mkdtempSync(join(repositoryRoot, "node_modules/.cache/spillway-bundles-test-"))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("discoverFunctions", () => {
  it("finds the functions whose entry file exists, and the custom-sink example", () => {
    for (const path of [
      "apps/lambdas/src/processor.ts",
      "apps/lambdas/src/collector.ts",
      "apps/lambdas/src/internal/helper.ts",
      "apps/lambdas/src/index.ts",
      "examples/custom-sink/src/processor.ts"
    ]) {
      write(join("root", path), "export const handler = async () => null\n")
    }
    const found = discoverFunctions(join(dir, "root"))
    expect(found.map((fn) => [fn.name, relative(join(dir, "root"), fn.entry)])).toEqual([
      ["collector", "apps/lambdas/src/collector.ts"],
      ["processor", "apps/lambdas/src/processor.ts"],
      ["custom-sink-processor", "examples/custom-sink/src/processor.ts"]
    ])
    expect(discoverFunctions(join(dir, "empty-root"))).toEqual([])
  })
})

describe("buildBundles", () => {
  it("bundles the AWS SDK (its ESM build) and CommonJS dependencies, and the bundle runs", async () => {
    const entry = write(
      "sdk/src/clients.ts",
      `import { SQSClient } from "@aws-sdk/client-sqs"
       import { Client } from "@opensearch-project/opensearch"
       const sqs = new SQSClient({})
       const opensearch = new Client({ node: "http://127.0.0.1:9" })
       export const handler = async () => ({ region: await sqs.config.region(), opensearch: typeof opensearch.bulk })`
    )
    const outdir = join(dir, "sdk/dist")
    const { bundles, metafile } = await buildBundles([{ name: "clients", entry }], { outdir })
    const inputs = Object.keys(metafile.inputs)
    expect(inputs.some((input) => input.startsWith("node_modules/@aws-sdk/client-sqs/dist-es/"))).toBe(true)
    expect(inputs.some((input) => input.startsWith("node_modules/@aws-sdk/client-sqs/dist-cjs/"))).toBe(false)
    expect(inputs.some((input) => input.startsWith("node_modules/@opensearch-project/opensearch/"))).toBe(
      true
    )
    const imports = Object.values(metafile.outputs).flatMap((output) => output.imports)
    expect(imports.filter((i) => i.external && !i.path.startsWith("node:")).map((i) => i.path)).not.toContain(
      "@aws-sdk/client-sqs"
    )

    expect(bundles).toHaveLength(1)
    const [bundle] = bundles
    expect(bundle?.dir).toBe(join(outdir, "clients"))
    expect(bundle?.bytes).toBe(readFileSync(join(outdir, "clients/index.mjs")).byteLength)
    expect(bundle?.gzipBytes).toBeLessThan(bundle?.bytes ?? 0)
    expect(readFileSync(join(outdir, "clients/index.mjs"), "utf8")).toContain(
      "//# sourceMappingURL=index.mjs.map"
    )
    expect(existsSync(join(outdir, "clients/index.mjs.map"))).toBe(true)
    expect(sizeReport(bundles)[1]).toMatch(
      new RegExp(`^clients\\s+${bundle?.bytes}\\s+${bundle?.gzipBytes}\\s`)
    )

    const fn = await LambdaProcess.start({ bundleDir: join(outdir, "clients") })
    try {
      expect(await fn.invoke({})).toMatchObject({
        kind: "response",
        body: { region: "eu-west-1", opensearch: "function" }
      })
    } finally {
      await fn.close()
    }
  })

  it("fails, writing nothing, when a bundle pulls in test code, naming the input and its importers", async () => {
    write("bad/src/helper.ts", `export { MemoryPipeline } from "@spillway/memory"\n`)
    const entry = write(
      "bad/src/processor.ts",
      `import { MemoryPipeline } from "./helper.js"\nexport const handler = async () => typeof MemoryPipeline\n`
    )
    const outdir = join(dir, "bad/dist")
    const failure = await buildBundles([{ name: "processor", entry }], { outdir }).catch(
      (error: unknown) => error
    )
    expect(failure).toBeInstanceOf(BundleCheckError)
    const message = (failure as Error).message
    expect(message).toContain("processor bundles packages/memory/src/")
    expect(message).toContain("@spillway/memory: in-memory backends")
    expect(message).toContain(`imported via ${relative(repositoryRoot, entry)}`)
    expect(message).toContain(`→ ${relative(repositoryRoot, join(dir, "bad/src/helper.ts"))}`)
    expect(message).toContain("→ packages/memory/src/index.ts")
    expect(existsSync(join(outdir, "processor"))).toBe(false)
  })

  it("fails when an entry does not export `handler`", async () => {
    const entry = write("unnamed/src/redriver.ts", "export const handle = async () => null\n")
    await expect(
      buildBundles([{ name: "redriver", entry }], { outdir: join(dir, "unnamed/dist") })
    ).rejects.toThrow(/redriver: .*redriver\.ts does not export `handler`/)
  })
})

describe("checkMetafile", () => {
  it("flags a dependency left external: only Node's built-ins may come from the runtime", async () => {
    const entry = write(
      "external/src/collector.ts",
      `import { SQSClient } from "@aws-sdk/client-sqs"\nimport { gzipSync } from "node:zlib"\nexport const handler = async () => [typeof SQSClient, typeof gzipSync]\n`
    )
    const outdir = join(dir, "external/dist")
    const { metafile } = await esbuild.build({
      ...esbuildOptions,
      entryPoints: [{ in: entry, out: "collector/index" }],
      external: ["@aws-sdk/*"],
      outdir,
      absWorkingDir: repositoryRoot,
      metafile: true,
      write: false
    })
    expect(checkMetafile(metafile, { outdir, cwd: repositoryRoot })).toEqual({
      violations: [],
      externals: ["collector: @aws-sdk/client-sqs"]
    })
  })
})
