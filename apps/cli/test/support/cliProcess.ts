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
