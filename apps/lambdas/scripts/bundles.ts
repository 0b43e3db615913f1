/**
 * The Lambda bundles: which functions there are, how each is bundled, and what a bundle must
 * never contain. `build.ts` (`npm run build`) runs it; the tests and the bench use the same
 * options, so what they run is what deploys.
 *
 * Each function is one minified ESM file, `apps/lambdas/dist/<function>/index.mjs` (handler
 * `index.handler` on `nodejs24.x`), with a linked source map for `NODE_OPTIONS=--enable-source-maps`.
 * The AWS SDK v3 is bundled like every other dependency, never left external: the runtime's own
 * copy of the SDK changes version under a deployed function without notice, and a function must
 * run the clients it was tested with. Bundling also lets esbuild drop what a function does not
 * use. The only imports left for the runtime to resolve are Node's built-in modules, and the
 * build fails when any other import stays external.
 *
 * A bundle that pulls in test or local-run code (emulators, in-memory backends, kits, the CLI)
 * fails the build, naming the input and the chain of imports that brought it in.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import * as esbuild from "esbuild"

/** The repository root: inputs in a metafile are named relative to it. */
export const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url))

/** Where the bundles go: `<distDir>/<function>/index.mjs`. */
export const distDir = join(repositoryRoot, "apps/lambdas/dist")

/** The deployed functions; each is built once its entry file (`apps/lambdas/src/<name>.ts`) exists. */
export const functionNames = [
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

/** The README's custom-sink example, a processor with a user's sink, bundled when it exists. */
export const customSinkExample = {
  name: "custom-sink-processor",
  entry: "examples/custom-sink/src/processor.ts"
}

/** A function to bundle: its name (the folder under `dist/`) and its entry file. */
export interface FunctionEntry {
  readonly name: string
  /** Absolute path of the entry module, which exports `handler`. */
  readonly entry: string
}

/** The functions whose entry file exists under `root`, in deployment order, then the example. */
export const discoverFunctions = (root: string = repositoryRoot): ReadonlyArray<FunctionEntry> =>
  [
    ...functionNames.map((name) => ({ name, entry: join(root, "apps/lambdas/src", `${name}.ts`) })),
    { name: customSinkExample.name, entry: join(root, customSinkExample.entry) }
  ].filter((fn) => existsSync(fn.entry))

/**
 * CommonJS dependencies bundled into ESM (none in Spillway's own functions today; a user's sink may
 * bring one, `debug` say) still call `require` for Node built-ins; an ES module has none, so the
 * bundle defines one.
 */
const requireBanner =
  'import { createRequire as __spillwayCreateRequire } from "node:module"; const require = __spillwayCreateRequire(import.meta.url);'

/**
 * Node's built-ins whose ES-module facade costs at start what their `require` does not. Importing a
 * built-in as ESM makes Node read every export to build the facade, getters included: `node:http`'s
 * `WebSocket`, `CloseEvent` and `MessageEvent` getters load undici, about 20 ms of every cold start
 * (measured on Node 24.21: `import("node:http")` 23–34 ms, `require("node:http")` 5 ms). The bundle
 * takes these through `require` (the banner's), which reads nothing until it is used.
 */
export const requiredBuiltins = /^(node:)?(http|https)$/

const requireBuiltins: esbuild.Plugin = {
  name: "spillway-require-builtins",
  setup(build) {
    build.onResolve({ filter: requiredBuiltins }, (args) =>
      args.namespace === "spillway-required-builtin"
        ? undefined
        : { path: args.path.replace(/^(node:)?/, "node:"), namespace: "spillway-required-builtin" }
    )
    build.onLoad({ filter: /.*/, namespace: "spillway-required-builtin" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)})`,
      loader: "js"
    }))
  }
}

/** The esbuild options every bundle is built with (tests and the bench bundle their fixtures with them). */
export const esbuildOptions = {
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  // ESM builds of dependencies first (`module` field, `module`/`import` conditions): the SDK's
  // `dist-es` tree-shakes, its `dist-cjs` does not.
  mainFields: ["module", "main"],
  conditions: ["module"],
  outExtension: { ".js": ".mjs" },
  minify: true,
  treeShaking: true,
  sourcemap: "linked",
  // Stack traces need the mappings only; sources would make Node parse a larger map at start.
  sourcesContent: false,
  banner: { js: requireBanner },
  plugins: [requireBuiltins],
  logLevel: "warning"
} as const satisfies esbuild.BuildOptions

/** What a Lambda bundle must not contain, and why. Inputs are paths relative to the repository root. */
export const forbiddenInputs: ReadonlyArray<{ readonly input: RegExp; readonly why: string }> = [
  { input: /^packages\/emulators\//, why: "@spillway/emulators: local stand-ins for AWS, for tests and dev" },
  { input: /^packages\/memory\//, why: "@spillway/memory: in-memory backends, for tests and local runs" },
  { input: /^packages\/testing\//, why: "@spillway/testing: conformance kits and test helpers" },
  { input: /^packages\/simulator\//, why: "@spillway/simulator: simulations on virtual time" },
  { input: /^apps\/cli\//, why: "the spillway command (apps never import each other)" },
  { input: /^infra\//, why: "the CDK app" },
  {
    input: /(^|\/)node_modules\/@spillway\/(memory|testing|emulators|simulator|cli)\//,
    why: "test or local-run package"
  },
  { input: /(^|\/)node_modules\/kinesalite\//, why: "kinesalite: a Kinesis emulator" },
  { input: /(^|\/)node_modules\/fauxqs\//, why: "fauxqs: an SQS and S3 emulator" },
  {
    input: /(^|\/)node_modules\/(vitest|@vitest\/[^/]+|@effect\/vitest|fast-check)\//,
    why: "test framework"
  },
  { input: /(^|\/)node_modules\/(aws-cdk-lib|constructs)\//, why: "CDK, for deployment only" },
  {
    input: /(^|\/)node_modules\/(esbuild|aws-lambda-ric)\//,
    why: "build tool or runtime client, never the function's"
  }
]

/**
 * Imports left external that are optional by design: not installed, and guarded by their importer
 * (a `require` or `import()` in a `try`), which is the only way esbuild leaves a package external
 * with these options. Anything else external fails the build.
 */
export const optionalImports: ReadonlyMap<string, string> = new Map([
  ["supports-color", "`debug`, a CommonJS logger many packages use, tries it for coloured output"]
])

/** A forbidden input found in a bundle, with the imports that led to it from the entry. */
export interface Violation {
  readonly bundle: string
  readonly input: string
  readonly why: string
  readonly importedVia: ReadonlyArray<string>
}

/** A bundle's output files, its size and where its bytes come from. */
export interface BuiltBundle {
  readonly name: string
  readonly dir: string
  readonly bytes: number
  readonly gzipBytes: number
  /** Bytes in the output per package (or per workspace folder), largest first. */
  readonly largestInputs: ReadonlyArray<{ readonly source: string; readonly bytes: number }>
}

export class BundleCheckError extends Error {
  override readonly name = "BundleCheckError"
}

const isBuiltin = (path: string) =>
  path.startsWith("node:") || builtinModules.includes(path.split("/")[0] ?? path)

/** The package (`node_modules/<name>`) or workspace folder (`packages/aws`) an input belongs to. */
const sourceOf = (input: string) => {
  const inPackage = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)
  return inPackage?.[1] ?? input.split("/").slice(0, 2).join("/")
}

/** The first chain of imports from `entry` to `target` in the metafile (breadth first). */
const importChain = (metafile: esbuild.Metafile, entry: string, target: string): ReadonlyArray<string> => {
  const cameFrom = new Map<string, string>([[entry, entry]])
  const queue = [entry]
  for (let current = queue.shift(); current !== undefined; current = queue.shift()) {
    if (current === target) break
    for (const { path } of metafile.inputs[current]?.imports ?? []) {
      if (!cameFrom.has(path) && metafile.inputs[path] !== undefined) {
        cameFrom.set(path, current)
        queue.push(path)
      }
    }
  }
  const chain = [target]
  for (let at = target; at !== entry && cameFrom.has(at); ) {
    at = cameFrom.get(at)!
    chain.unshift(at)
  }
  return chain
}

/** The output file of each bundle in a metafile, by bundle name. */
const outputsOf = (metafile: esbuild.Metafile, outdir: string, cwd: string) =>
  new Map(
    Object.entries(metafile.outputs)
      .filter(([file]) => file.endsWith(".mjs"))
      .map(([file, output]) => [relative(outdir, dirname(join(cwd, file))), output] as const)
  )

/** Every forbidden input in the bundles of a metafile, and every import left external that is not a Node built-in. */
export const checkMetafile = (
  metafile: esbuild.Metafile,
  options: { readonly outdir: string; readonly cwd: string }
): { readonly violations: ReadonlyArray<Violation>; readonly externals: ReadonlyArray<string> } => {
  const violations: Array<Violation> = []
  const externals = new Set<string>()
  for (const [bundle, output] of outputsOf(metafile, options.outdir, options.cwd)) {
    for (const input of Object.keys(output.inputs)) {
      const rule = forbiddenInputs.find(({ input: pattern }) => pattern.test(input))
      if (rule !== undefined) {
        const importedVia =
          output.entryPoint === undefined ? [] : importChain(metafile, output.entryPoint, input)
        violations.push({ bundle, input, why: rule.why, importedVia })
      }
    }
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path) && !optionalImports.has(imported.path)) {
        externals.add(`${bundle}: ${imported.path}`)
      }
    }
  }
  return { violations, externals: [...externals] }
}

const describeFailures = (check: ReturnType<typeof checkMetafile>) =>
  [
    ...check.violations.map(
      (v) => `${v.bundle} bundles ${v.input} (${v.why})\n    imported via ${v.importedVia.join("\n      → ")}`
    ),
    ...check.externals.map(
      (e) => `${e} is left external: a function may only rely on Node's built-in modules at run time`
    )
  ].join("\n  ")

/**
 * Bundles `functions` into `<outdir>/<name>/index.mjs` (+ `.map`), checks them, and writes them
 * only when the check passes; the metafile goes to `<outdir>/meta.json`. A failing check throws a
 * `BundleCheckError` naming every forbidden input and how it was imported; a bundle whose entry
 * does not export `handler` fails too (the runtime client would only find out at init).
 */
export const buildBundles = async (
  functions: ReadonlyArray<FunctionEntry>,
  options: { readonly outdir?: string; readonly cwd?: string; readonly clean?: ReadonlyArray<string> } = {}
): Promise<{ readonly bundles: ReadonlyArray<BuiltBundle>; readonly metafile: esbuild.Metafile }> => {
  const outdir = options.outdir ?? distDir
  const cwd = options.cwd ?? repositoryRoot
  // A folder left from an earlier build would deploy code that is no longer this build's.
  for (const name of [...(options.clean ?? []), ...functions.map((fn) => fn.name)]) {
    rmSync(join(outdir, name), { recursive: true, force: true })
  }
  rmSync(join(outdir, "meta.json"), { force: true })
  if (functions.length === 0) return { bundles: [], metafile: { inputs: {}, outputs: {} } }
  const result = await esbuild.build({
    ...esbuildOptions,
    entryPoints: functions.map((fn) => ({ in: fn.entry, out: `${fn.name}/index` })),
    outdir,
    absWorkingDir: cwd,
    metafile: true,
    write: false
  })
  const check = checkMetafile(result.metafile, { outdir, cwd })
  const outputs = outputsOf(result.metafile, outdir, cwd)
  const missingHandler = functions
    .filter((fn) => !outputs.get(fn.name)?.exports.includes("handler"))
    .map((fn) => `${fn.name}: ${relative(cwd, fn.entry)} does not export \`handler\``)
  if (check.violations.length > 0 || check.externals.length > 0 || missingHandler.length > 0) {
    throw new BundleCheckError(
      `Lambda bundle check failed:\n  ${[describeFailures(check), ...missingHandler].filter((s) => s !== "").join("\n  ")}`
    )
  }
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true })
    writeFileSync(file.path, file.contents)
  }
  mkdirSync(outdir, { recursive: true })
  writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile))
  const bundles = functions.map((fn): BuiltBundle => {
    const code = result.outputFiles.find((file) => file.path === join(outdir, fn.name, "index.mjs"))!
    const bySource = new Map<string, number>()
    for (const [input, { bytesInOutput }] of Object.entries(outputs.get(fn.name)?.inputs ?? {})) {
      bySource.set(sourceOf(input), (bySource.get(sourceOf(input)) ?? 0) + bytesInOutput)
    }
    return {
      name: fn.name,
      dir: join(outdir, fn.name),
      bytes: code.contents.byteLength,
      gzipBytes: gzipSync(code.contents).byteLength,
      largestInputs: [...bySource]
        .map(([source, bytes]) => ({ source, bytes }))
        .sort((a, b) => b.bytes - a.bytes)
    }
  })
  return { bundles, metafile: result.metafile }
}

/** Above this a bundle's size shows in cold starts (Node parses and compiles it all at init). */
export const sizeWarningBytes = 1024 * 1024

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

/** The size report: raw and gzip bytes per bundle, a warning and the largest sources above 1 MiB. */
export const sizeReport = (bundles: ReadonlyArray<BuiltBundle>): ReadonlyArray<string> => {
  const width = Math.max(8, ...bundles.map((b) => b.name.length))
  const lines = [`${"bundle".padEnd(width)}  ${"raw bytes".padStart(11)}  ${"gzip bytes".padStart(11)}`]
  for (const b of bundles) {
    lines.push(
      `${b.name.padEnd(width)}  ${String(b.bytes).padStart(11)}  ${String(b.gzipBytes).padStart(11)}  (${kib(b.bytes)} / ${kib(b.gzipBytes)})`
    )
  }
  for (const b of bundles.filter((b) => b.bytes > sizeWarningBytes)) {
    const largest = b.largestInputs
      .slice(0, 8)
      .map((s) => `${s.source} ${kib(s.bytes)}`)
      .join(", ")
    lines.push(`warning: ${b.name} is ${kib(b.bytes)}, above ${kib(sizeWarningBytes)}; largest: ${largest}`)
  }
  return lines
}
