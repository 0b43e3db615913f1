/**
 * The CLI run as a user runs it, for the tests that drive it as a child process: from the
 * repository root, stdout and stderr pipes (so the live view prints plain lines), no colours.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../../", import.meta.url))

export interface Run {
  readonly child: ChildProcess
  /** Everything printed so far, stdout and stderr. */
  readonly output: () => string
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** `spillway <args>` in a child process. */
export const start = (args: ReadonlyArray<string>): Run => {
  const child = spawn(process.execPath, ["apps/cli/bin/spillway.js", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }
  })
  let output = ""
  const keep = (chunk: Buffer) => {
    output += chunk.toString("utf8")
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, output: () => output, exit }
}

/** The first match of `pattern` in the output; rejects after `ms`, or when the run exits first. */
export const waitFor = (run: Run, pattern: RegExp, ms: number): Promise<RegExpMatchArray> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const poll = setInterval(() => {
      const match = run.output().match(pattern)
      if (match !== null) {
        clearInterval(poll)
        resolve(match)
      } else if (Date.now() - started > ms || run.child.exitCode !== null) {
        clearInterval(poll)
        reject(new Error(`no ${pattern} within ${ms} ms; output:\n${run.output()}`))
      }
    }, 50)
  })

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  /** The child's whole environment. @default this process's, with NO_COLOR=1 */
  readonly env?: NodeJS.ProcessEnv
  /** SIGKILL after this many ms, and reject. @default 60000 */
  readonly timeoutMillis?: number
  /** The working directory. @default the repository root */
  readonly cwd?: string
}

/** `spillway <args>` to its end, stdout and stderr apart. */
export const run = (args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Finished> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${root}apps/cli/bin/spillway.js`, ...args], {
      cwd: options.cwd ?? root,
      stdio: ["ignore", "pipe", "pipe"],
      env: options.env ?? { ...process.env, NO_COLOR: "1" }
    })
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(
        new Error(
          `spillway ${args.join(" ")} did not end within ${options.timeoutMillis ?? 60_000} ms:\n${stdout}\n${stderr}`
        )
      )
    }, options.timeoutMillis ?? 60_000)
    // "close", not "exit": it comes once the pipes are drained too.
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
