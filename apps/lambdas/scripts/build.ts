/**
 * `npm run build`: one bundle per Lambda function whose entry file exists
 * (`apps/lambdas/dist/<function>/index.mjs`), checked for code it must not contain, then a size
 * report. Exits 1, writing nothing, when a check fails. Type errors are `npm run typecheck`'s job:
 * esbuild strips types without checking them.
 */
import { relative } from "node:path"
import {
  BundleCheckError,
  buildBundles,
  customSinkExample,
  discoverFunctions,
  distDir,
  functionNames,
  repositoryRoot,
  sizeReport
} from "./bundles.js"

const functions = discoverFunctions()
const missing = functionNames.filter((name) => !functions.some((fn) => fn.name === name))
if (missing.length > 0)
  console.log(`no entry file yet for: ${missing.join(", ")} (apps/lambdas/src/<name>.ts)`)

try {
  const { bundles } = await buildBundles(functions, { clean: [...functionNames, customSinkExample.name] })
  if (bundles.length === 0) {
    console.log("nothing to bundle")
  } else {
    console.log(`${bundles.length} bundle(s) in ${relative(repositoryRoot, distDir)}/<function>/index.mjs`)
    for (const line of sizeReport(bundles)) console.log(line)
  }
} catch (error) {
  console.error(error instanceof BundleCheckError ? error.message : error)
  process.exitCode = 1
}
