/**
 * A bundle run as Lambda's Node.js runtime runs it: `aws-lambda-ric index.handler` (AWS's runtime
 * interface client, the code path of the managed `nodejs24.x` runtime) in the bundle's folder,
 * with the environment Lambda sets, talking to a `RuntimeApi` on loopback.
 *
 * The process starts on the first `invoke` (a cold start) and serves the next ones warm. When an
 * invocation passes its deadline, the process is killed with SIGKILL, as Lambda kills a timed-out
 * sandbox, and so is a process whose init failed; one that exits by itself is gone too. The next
 * `invoke` then starts a fresh process. Invocations run one at a time.
 *
 * The environment is Lambda's, not the test's: nothing of `process.env` is passed on but what
 * `env` adds, so a function cannot depend on the machine it is tested on. Credentials are
 * placeholders, as the runtime passes the role's credentials in the environment (the SDK never
 * looks for others). Node is the one running this code (`process.execPath`, Node 24 here).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { basename, dirname } from "node:path"
import { fileURLToPath } from "node:url"
import * as RuntimeApi from "./RuntimeApi.js"

const runtimeClient = fileURLToPath(new URL("../../../../node_modules/.bin/aws-lambda-ric", import.meta.url))

export interface LambdaProcessOptions {
  /** The folder holding the bundle (`index.mjs`): the runtime's `LAMBDA_TASK_ROOT` and working directory. */
  readonly bundleDir: string
  /** @default "index.handler" */
  readonly handler?: string
  /** @default the folder's name */
  readonly functionName?: string
  /** @default 128, Lambda's default */
  readonly memoryMb?: number
  /** The timeout of an `invoke` that does not give its own. @default 3, Lambda's default */
  readonly timeoutSeconds?: number
  /** @default "eu-west-1" */
  readonly region?: string
  /** How long a process may take to ask for its first event. @default 10_000, Lambda's init limit */
  readonly initTimeoutMs?: number
  /** Added to (or replacing) Lambda's variables: the function's own configuration. */
  readonly env?: Readonly<Record<string, string>>
}

/** An outcome, with the process that produced it. */
export type Invocation = RuntimeApi.Outcome & {
  readonly pid: number
  /** The invocation started a new process. */
  readonly coldStart: boolean
  /** Set when the invocation ended its process: killed at the deadline or after a failed init, or exited. */
  readonly exit?: { readonly code: number | null; readonly signal: NodeJS.Signals | null }
}

export interface LambdaProcess {
  readonly invoke: (event: unknown, options?: { readonly timeoutMs?: number }) => Promise<Invocation>
  /** Kills the process, if any, and stops the Runtime API. */
  readonly close: () => Promise<void>
}

interface Running {
  readonly child: ChildProcess
  readonly pid: number
  /** Resolves once the process has exited and its output is read to the end. */
  readonly closed: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  ended: boolean
}

/** The environment Lambda gives a `nodejs24.x` function (without X-Ray and extensions). */
const lambdaEnvironment = (
  options: LambdaProcessOptions & { readonly functionName: string; readonly region: string },
  runtimeApi: string
): Record<string, string> => ({
  PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
  LANG: "en_US.UTF-8",
  TZ: ":UTC",
  AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
  AWS_LAMBDA_RUNTIME_API: runtimeApi,
  LAMBDA_TASK_ROOT: options.bundleDir,
  LAMBDA_RUNTIME_DIR: dirname(runtimeClient),
  _HANDLER: options.handler ?? "index.handler",
  AWS_LAMBDA_FUNCTION_NAME: options.functionName,
  AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memoryMb ?? 128),
  AWS_LAMBDA_FUNCTION_TIMEOUT: String(options.timeoutSeconds ?? 3),
  AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
  AWS_LAMBDA_LOG_FORMAT: "JSON",
  AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${options.functionName}`,
  AWS_LAMBDA_LOG_STREAM_NAME: "2026/01/01/[$LATEST]00000000000000000000000000000000",
  AWS_REGION: options.region,
  AWS_DEFAULT_REGION: options.region,
  AWS_ACCESS_KEY_ID: "ASIATESTTESTTESTTEST",
  AWS_SECRET_ACCESS_KEY: "test-secret-access-key",
  AWS_SESSION_TOKEN: "test-session-token",
  ...options.env
})

/** Starts the Runtime API for a bundle; the process itself starts with the first `invoke`. */
export const start = async (options: LambdaProcessOptions): Promise<LambdaProcess> => {
  if (!existsSync(runtimeClient)) {
    throw new Error(`no runtime client at ${runtimeClient}: aws-lambda-ric is built by npm ci (see .ci/run)`)
  }
  const functionName = options.functionName ?? basename(options.bundleDir)
  const region = options.region ?? "eu-west-1"
  const api = await RuntimeApi.start({
    functionArn: `arn:aws:lambda:${region}:123456789012:function:${functionName}`,
    ...(options.initTimeoutMs === undefined ? {} : { initTimeoutMs: options.initTimeoutMs })
  })
  const env = lambdaEnvironment({ ...options, functionName, region }, api.address)
  const defaultTimeoutMs = (options.timeoutSeconds ?? 3) * 1000
  let running: Running | undefined
  let closed = false
  let queue: Promise<unknown> = Promise.resolve()

  const launch = (): Running => {
    api.runtimeStarted()
    const child = spawn(runtimeClient, [env._HANDLER!], {
      cwd: options.bundleDir,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    child.stdout?.on("data", (chunk: Buffer) => api.capture("stdout", chunk))
    child.stderr?.on("data", (chunk: Buffer) => api.capture("stderr", chunk))
    const launched: Running = {
      child,
      pid: child.pid ?? -1,
      ended: false,
      closed: new Promise((resolve) => {
        child.once("error", (error) =>
          api.capture("stderr", `cannot start ${runtimeClient}: ${error.message}\n`)
        )
        child.once("close", (code, signal) => {
          launched.ended = true
          api.runtimeExited({ code, signal })
          resolve({ code, signal })
        })
      })
    }
    return launched
  }

  const invokeNow = async (event: unknown, timeoutMs: number): Promise<Invocation> => {
    if (closed) throw new Error(`${functionName}: invoked after close`)
    const coldStart = running === undefined || running.ended
    if (coldStart) running = launch()
    const sandbox = running!
    const outcome = await api.invoke(event, { timeoutMs })
    if (outcome.kind === "timeout" || (outcome.kind === "error" && outcome.phase === "init")) {
      sandbox.child.kill("SIGKILL")
    }
    if (!sandbox.ended && !sandbox.child.killed) return { ...outcome, pid: sandbox.pid, coldStart }
    const exit = await sandbox.closed
    if (running === sandbox) running = undefined
    return { ...outcome, pid: sandbox.pid, coldStart, exit }
  }

  return {
    invoke: (event, invokeOptions = {}) => {
      const result = queue.then(() => invokeNow(event, invokeOptions.timeoutMs ?? defaultTimeoutMs))
      queue = result.catch(() => undefined)
      return result
    },
    close: async () => {
      closed = true
      // An invocation in flight ends as the process exits (`Runtime.ExitError`).
      if (running !== undefined && !running.ended) {
        running.child.kill("SIGKILL")
        await running.closed
      }
      await queue
      await api.close()
    }
  }
}
