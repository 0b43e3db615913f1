/**
 * The harness the Lambda bundles are tested with, proven on small handlers bundled here the way
 * the functions are (`esbuildOptions`) and run under AWS's runtime client through `LambdaProcess`:
 * a response, a thrown error, a failed init, an init past its limit, an exit, a handler killed at
 * its deadline (the next invocation served by a new process), and the deadline as the handler
 * sees it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as esbuild from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { esbuildOptions } from "../scripts/bundles.js"
import * as LambdaProcess from "./support/LambdaProcess.js"

/** Fixture handlers, each bundled to `<dir>/<name>/index.mjs`. */
const fixtures = {
  echo: `
    let invocations = 0
    export const handler = async (event: unknown, context: { awsRequestId: string; functionName: string }) => {
      invocations += 1
      console.log("handling", JSON.stringify(event))
      process.stderr.write("a line on stderr\\n")
      return { event, requestId: context.awsRequestId, functionName: context.functionName, invocations, pid: process.pid }
    }`,
  throws: `
    class QuotaExceeded extends Error {
      override readonly name = "QuotaExceeded"
    }
    export const handler = async () => {
      throw new QuotaExceeded("tenant t-1 is over its quota")
    }`,
  "init-fails": `
    class ConfigurationError extends Error {
      override readonly name = "ConfigurationError"
    }
    throw new ConfigurationError("STREAM_ARN is missing")
    export const handler = async () => "never"`,
  "init-hangs": `
    await new Promise((resolve) => setTimeout(resolve, 600_000))
    export const handler = async () => "never"`,
  exits: `
    export const handler = async () => {
      process.exit(3)
    }`,
  hangs: `
    let invocations = 0
    export const handler = async (event: { hang?: boolean }) => {
      invocations += 1
      if (event.hang === true) await new Promise((resolve) => setTimeout(resolve, 600_000))
      return { invocations, pid: process.pid }
    }`,
  deadline: `
    export const handler = async (_event: unknown, context: { getRemainingTimeInMillis: () => number }) => {
      // One instant for both readings: the context computes "deadline - Date.now()".
      const now = Date.now()
      const realNow = Date.now
      Date.now = () => now
      const remainingMs = context.getRemainingTimeInMillis()
      Date.now = realNow
      return { now, remainingMs }
    }`
} as const

let dir = ""
const processes: Array<LambdaProcess.LambdaProcess> = []

const lambda = async (
  name: keyof typeof fixtures,
  options: Partial<LambdaProcess.LambdaProcessOptions> = {}
) => {
  const started = await LambdaProcess.start({ bundleDir: join(dir, name), ...options })
  processes.push(started)
  return started
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "spillway-lambda-fixtures-"))
  mkdirSync(join(dir, "src"))
  for (const [name, source] of Object.entries(fixtures)) writeFileSync(join(dir, "src", `${name}.ts`), source)
  await esbuild.build({
    ...esbuildOptions,
    entryPoints: Object.keys(fixtures).map((name) => ({
      in: join(dir, "src", `${name}.ts`),
      out: `${name}/index`
    })),
    outdir: dir,
    logLevel: "error"
  })
})

afterAll(async () => {
  await Promise.all(processes.map((p) => p.close()))
  rmSync(dir, { recursive: true, force: true })
})

describe("a bundle under the runtime client", () => {
  it("answers an event with the handler's result, with its logs", async () => {
    const fn = await lambda("echo", { functionName: "echo-fn" })
    const first = await fn.invoke({ hello: "world" })
    expect(first).toMatchObject({
      kind: "response",
      coldStart: true,
      body: { event: { hello: "world" }, requestId: first.requestId, functionName: "echo-fn", invocations: 1 }
    })
    expect(first.initDurationMs).toBeTypeOf("number")
    const logged = first.logs.find((line) => line.json?.message === 'handling {"hello":"world"}')
    expect(logged?.json).toMatchObject({ level: "INFO", requestId: first.requestId })
    expect(first.logs).toContainEqual({ stream: "stderr", text: "a line on stderr" })

    const second = await fn.invoke({ hello: "again" })
    expect(second).toMatchObject({
      kind: "response",
      coldStart: false,
      pid: first.pid,
      body: { invocations: 2 }
    })
    expect(second.requestId).not.toBe(first.requestId)
    expect(second.initDurationMs).toBeUndefined()
    expect(second.logs.map((line) => line.json?.message)).toContain('handling {"hello":"again"}')
    expect(second.logs.map((line) => line.json?.message)).not.toContain('handling {"hello":"world"}')
  })

  it("reports a thrown error through /error with its type and message", async () => {
    const fn = await lambda("throws")
    const outcome = await fn.invoke({})
    expect(outcome).toMatchObject({
      kind: "error",
      phase: "invoke",
      body: { errorType: "QuotaExceeded", errorMessage: "tenant t-1 is over its quota" }
    })
    if (outcome.kind !== "error") return
    expect(outcome.body.trace?.[0]).toContain("QuotaExceeded: tenant t-1 is over its quota")
    // The process survives a failed invocation and serves the next one warm.
    expect(await fn.invoke({})).toMatchObject({ kind: "error", coldStart: false, pid: outcome.pid })
  })

  it("reports a failed init through /init/error, and the next invocation starts a new process", async () => {
    const fn = await lambda("init-fails")
    const first = await fn.invoke({})
    expect(first).toMatchObject({
      kind: "error",
      phase: "init",
      coldStart: true,
      body: { errorType: "ConfigurationError", errorMessage: "STREAM_ARN is missing" }
    })
    expect(first.exit).toBeDefined()
    expect(isAlive(first.pid)).toBe(false)
    // The runtime client logs the init error (as JSON) before it reports it.
    const logged = first.logs.find((line) => line.json?.level === "ERROR")?.json?.message
    expect(logged).toMatchObject({ errorMessage: "STREAM_ARN is missing" })
    const second = await fn.invoke({})
    expect(second).toMatchObject({ kind: "error", phase: "init", coldStart: true })
    expect(second.pid).not.toBe(first.pid)
  })

  it("kills a process whose init outlasts the init limit", async () => {
    const fn = await lambda("init-hangs", { initTimeoutMs: 300 })
    const outcome = await fn.invoke({})
    expect(outcome).toMatchObject({
      kind: "timeout",
      phase: "init",
      coldStart: true,
      exit: { signal: "SIGKILL" },
      body: { errorType: "Sandbox.Timedout" }
    })
    expect(isAlive(outcome.pid)).toBe(false)
  })

  it("reports a process that exits mid-invocation as Runtime.ExitError", async () => {
    const fn = await lambda("exits")
    const outcome = await fn.invoke({})
    expect(outcome).toMatchObject({
      kind: "error",
      phase: "invoke",
      exit: { code: 3, signal: null },
      body: { errorType: "Runtime.ExitError", errorMessage: expect.stringContaining("exit status 3") }
    })
  })

  it("kills a handler past its deadline with SIGKILL; a new process serves the next invocation", async () => {
    const fn = await lambda("hangs")
    const warm = await fn.invoke({})
    expect(warm).toMatchObject({ kind: "response", coldStart: true, body: { invocations: 1 } })

    const timedOut = await fn.invoke({ hang: true }, { timeoutMs: 300 })
    expect(timedOut).toMatchObject({
      kind: "timeout",
      phase: "invoke",
      pid: warm.pid,
      exit: { signal: "SIGKILL" },
      body: {
        errorType: "Sandbox.Timedout",
        errorMessage: expect.stringContaining("Task timed out after 0.30 seconds")
      }
    })
    expect(isAlive(warm.pid)).toBe(false)

    const next = await fn.invoke({})
    expect(next).toMatchObject({ kind: "response", coldStart: true, body: { invocations: 1 } })
    expect(next.pid).not.toBe(warm.pid)
  })

  it("gives the handler the time left to the deadline it was sent", async () => {
    const fn = await lambda("deadline")
    for (const timeoutMs of [2_000, 45_000]) {
      const outcome = await fn.invoke({}, { timeoutMs })
      expect(outcome.kind).toBe("response")
      const body = outcome.body as { readonly now: number; readonly remainingMs: number }
      expect(body.now + body.remainingMs).toBe(outcome.deadlineMs)
      expect(body.remainingMs).toBeGreaterThan(0)
      expect(body.remainingMs).toBeLessThanOrEqual(timeoutMs)
    }
  })
})
