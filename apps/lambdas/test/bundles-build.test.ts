/**
 * The real bundles, as `npm run build` writes them: every function bundled, with its source map
 * and its size reported, the AWS SDK inside and nothing it must not contain; and each bundle run
 * under AWS's runtime client as Lambda runs it, answering an event it cannot take with a clear
 * error from the handler (not an init crash), configured as documented and not configured at all.
 */
import { execFile } from "node:child_process"
import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import type { Metafile } from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  checkMetafile,
  discoverFunctions,
  distDir,
  functionNames,
  repositoryRoot
} from "../scripts/bundles.js"
import * as Deployment from "./support/Deployment.js"
import * as LambdaProcess from "./support/LambdaProcess.js"

const functions = discoverFunctions()
let buildOutput = ""

beforeAll(async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "apps/lambdas/scripts/build.ts"],
    { cwd: repositoryRoot }
  )
  buildOutput = stdout
}, 120_000)

describe("npm run build", () => {
  it("bundles every function", () => {
    expect(functions.map((fn) => fn.name)).toEqual(expect.arrayContaining([...functionNames]))
  })

  it("writes each bundle with its source map, and reports its size raw and gzipped", () => {
    for (const { name } of functions) {
      const bundle = join(distDir, name, "index.mjs")
      expect(existsSync(`${bundle}.map`)).toBe(true)
      expect(buildOutput).toMatch(new RegExp(`^${name}\\s+${statSync(bundle).size}\\s+\\d+\\s`, "m"))
    }
  })

  it("bundles the AWS SDK, leaves only Node's built-ins external, and contains no test code", () => {
    const metafile = JSON.parse(readFileSync(join(distDir, "meta.json"), "utf8")) as Metafile
    expect(checkMetafile(metafile, { outdir: distDir, cwd: repositoryRoot })).toEqual({
      violations: [],
      externals: []
    })
    // Each function carries the clients it calls, bundled, and no other: a client another
    // function needs is init time this one would pay for nothing.
    const clientsOf = (name: string) => {
      const output = metafile.outputs[`apps/lambdas/dist/${name}/index.mjs`]
      const clients = new Set<string>()
      for (const input of Object.keys(output?.inputs ?? {})) {
        const match = /^node_modules\/(@aws-sdk\/client-[a-z0-9-]+|@opensearch-project\/opensearch)\//.exec(
          input
        )
        if (match !== null) clients.add(match[1]!)
      }
      return [...clients].sort()
    }
    const expected: Record<string, ReadonlyArray<string>> = {
      collector: [
        "@aws-sdk/client-kinesis",
        "@aws-sdk/client-secrets-manager",
        "@aws-sdk/client-sqs",
        "@aws-sdk/client-ssm"
      ],
      redriver: ["@aws-sdk/client-kinesis", "@aws-sdk/client-sqs"],
      // OpenSearch is reached over the SDK's own signer and HTTP handler, not a client package.
      processor: [],
      "failure-reprocessor": ["@aws-sdk/client-kinesis"],
      "backup-replayer": ["@aws-sdk/client-kinesis", "@aws-sdk/client-s3"],
      cleaner: ["@aws-sdk/client-kinesis"],
      // Writes its metric lines to stdout: no client at all.
      metrics: [],
      forwarder: ["@aws-sdk/client-s3", "@aws-sdk/client-secrets-manager"],
      "forward-retrier": ["@aws-sdk/client-s3", "@aws-sdk/client-secrets-manager"]
    }
    for (const { name } of functions) {
      if (expected[name] !== undefined) expect(clientsOf(name), name).toEqual(expected[name])
    }
    // node:http's ES module view would load undici at start (its WebSocket getter): required instead.
    // The metrics function calls nothing over the network (its lines go to stdout): no node:http at all.
    const withoutHttp: ReadonlySet<string> = new Set(["metrics"])
    for (const { name } of functions) {
      const imports = metafile.outputs[`apps/lambdas/dist/${name}/index.mjs`]?.imports ?? []
      const http = imports.filter((i) => i.path === "node:http" || i.path === "node:https")
      if (withoutHttp.has(name)) expect(http, name).toEqual([])
      else expect(http.length, name).toBeGreaterThan(0)
      expect(
        http.filter((i) => i.kind !== "require-call"),
        name
      ).toEqual([])
    }
  })
})

describe.each(functions.map((fn) => fn.name))("the %s bundle under the runtime client", (name) => {
  const processes: Array<LambdaProcess.LambdaProcess> = []
  const start = async (env?: Readonly<Record<string, string>>) => {
    const fn = await LambdaProcess.start({
      bundleDir: join(distDir, name),
      ...(env === undefined ? {} : { env })
    })
    processes.push(fn)
    return fn
  }
  afterAll(() => Promise.all(processes.map((fn) => fn.close())))

  it("configured as documented, refuses an event it cannot take, saying what it takes", async () => {
    const fn = await start(Deployment.unreachable)
    const outcome = await fn.invoke({})
    expect(outcome).toMatchObject({
      kind: "error",
      phase: "invoke",
      body: { errorType: "InvalidEvent", errorMessage: expect.stringContaining(`${name} takes `) }
    })
  })

  it("not configured, answers an error naming a missing variable, and keeps serving", async () => {
    const fn = await start()
    const first = await fn.invoke({})
    expect(first).toMatchObject({
      kind: "error",
      phase: "invoke",
      body: {
        errorType: "InitializationError",
        errorMessage: expect.stringMatching(
          new RegExp(`^${name} could not start: [\\s\\S]*\\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\\b`)
        )
      }
    })
    expect(await fn.invoke({})).toMatchObject({
      kind: "error",
      phase: "invoke",
      coldStart: false,
      pid: first.pid
    })
  })
})
