#!/usr/bin/env node
// The `spillway` command. It runs built JavaScript: `apps/cli/dist/spillway.mjs`, one ES module of
// the CLI and the workspace packages it uses (dependencies stay in node_modules), which esbuild
// makes from the TypeScript sources on the first run and again whenever a source it was made from
// has changed (about a second; `dist/spillway.inputs.json` lists them with their times). A command
// then starts in a few hundred milliseconds instead of the seconds of compiling TypeScript at
// every start.
//
// Spillway runs on Node 24 (Lambda's nodejs24.x), which the project installs as a devDependency:
// npm scripts and npx put it first on the PATH. Started by an older Node, say so and stop.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const major = Number(process.versions.node.split(".")[0])
if (major < 24) {
  console.error(
    `spillway: needs Node 24 or newer, this is Node ${process.version}. ` +
      "Run it through npm or npx (npm start, npx spillway), which use the Node 24 that npm ci installed."
  )
  process.exit(2)
}

const cliDir = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const repositoryRoot = resolve(cliDir, "../..")
const bundle = join(cliDir, "dist", "spillway.mjs")
const inputsFile = join(cliDir, "dist", "spillway.inputs.json")

/** Whether the bundle was made from the sources as they are now (each input's mtime and size). */
const isFresh = () => {
  let inputs
  try {
    inputs = JSON.parse(readFileSync(inputsFile, "utf8"))
    statSync(bundle)
  } catch {
    return false
  }
  for (const [path, stamp] of Object.entries(inputs)) {
    try {
      const stat = statSync(join(repositoryRoot, path))
      if (stat.mtimeMs !== stamp.mtimeMs || stat.size !== stamp.size) return false
    } catch {
      return false
    }
  }
  return true
}

const build = async () => {
  const esbuild = await import("esbuild")
  const startedAt = Date.now()
  const result = await esbuild.build({
    absWorkingDir: repositoryRoot,
    entryPoints: [join(cliDir, "src", "main.ts")],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    outfile: bundle,
    write: false,
    metafile: true,
    // Stack traces map back to the sources with --enable-source-maps (NODE_OPTIONS).
    sourcemap: "linked",
    sourcesContent: false,
    logLevel: "error",
    mainFields: ["module", "main"],
    conditions: ["module"],
    banner: {
      js: 'import { createRequire as __spillwayCreateRequire } from "node:module"; const require = __spillwayCreateRequire(import.meta.url);'
    },
    // Bundled with the CLI: the workspace packages and the libraries (Effect, the AWS SDK), so a
    // start reads one file, not hundreds. Left in node_modules: the local servers and the browser
    // driver, which load native code or files of their own at run time.
    external: ["kinesalite", "fauxqs", "playwright-core", "chart.js", "esbuild", "leveldown"]
  })
  const inputs = {}
  for (const path of Object.keys(result.metafile.inputs)) {
    const stat = statSync(join(repositoryRoot, path))
    // A file changed while esbuild ran may be in the bundle as it was before: stamped so that the
    // next command builds again.
    inputs[path] = { mtimeMs: stat.mtimeMs >= startedAt - 1000 ? -1 : stat.mtimeMs, size: stat.size }
  }
  mkdirSync(dirname(bundle), { recursive: true })
  // Written aside and renamed into place: two commands building at once each leave a whole file.
  const suffix = `.${process.pid}.tmp`
  for (const file of result.outputFiles) writeFileSync(file.path + suffix, file.contents)
  writeFileSync(inputsFile + suffix, JSON.stringify(inputs))
  for (const file of result.outputFiles) renameSync(file.path + suffix, file.path)
  renameSync(inputsFile + suffix, inputsFile)
}

if (!isFresh()) await build()
await import(pathToFileURL(bundle).href)
