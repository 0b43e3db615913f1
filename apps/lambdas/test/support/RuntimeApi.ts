/**
 * Lambda's Runtime API for tests: the platform side of one function, served on 127.0.0.1 (a port
 * the OS picks) for a runtime client such as `aws-lambda-ric` (`AWS_LAMBDA_RUNTIME_API`).
 *
 * - `GET /2018-06-01/runtime/invocation/next` long-polls until an invocation is queued, then
 *   answers the event with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`
 *   and `-Trace-Id`. The deadline is set when the invocation is handed out: init does not count
 *   against the function's timeout.
 * - `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error` answer it (202); an unknown
 *   or already answered id gets 400 `InvalidRequestID`.
 * - `POST /2018-06-01/runtime/init/error` fails the invocation that was waiting for the init.
 *
 * `invoke` resolves with the outcome once the invocation is over as Lambda sees it: the runtime
 * has asked for the next event (so everything it logged for this one has been written) or it
 * exited; at the deadline it resolves with `timeout` (and the process must be killed:
 * `LambdaProcess` does). Output given to `capture` is kept line by line, JSON lines parsed; each
 * outcome carries the lines written since the previous invocation was over (so a process's init
 * logs go with its first invocation), and an outcome that ends the process (timeout, failed init,
 * exit) keeps receiving its last lines until the next process starts. One invocation runs at a
 * time, as in a Lambda sandbox.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** One line of the function's output; `json` when the line is a JSON object (`AWS_LAMBDA_LOG_FORMAT=JSON`). */
export interface LogLine {
  readonly stream: "stdout" | "stderr"
  readonly text: string
  readonly json?: Readonly<Record<string, unknown>>
}

/** An error as the runtime reports it (`/error`, `/init/error`) or as Lambda reports a timeout or an exit. */
export interface FunctionError {
  readonly errorType: string
  readonly errorMessage: string
  readonly trace?: ReadonlyArray<string>
}

interface OutcomeBase {
  readonly requestId: string
  /** The `Lambda-Runtime-Deadline-Ms` sent with the event; 0 when it was never handed out. */
  readonly deadlineMs: number
  readonly traceId: string
  /** What the process wrote since the previous outcome (for a new process: its init too). */
  readonly logs: ReadonlyArray<LogLine>
  /** From hand-out to answer (or deadline); 0 when never handed out. Lambda's REPORT `Duration`. */
  readonly durationMs: number
  /** For the first invocation of a process: from its start to the hand-out. Lambda's `Init Duration`. */
  readonly initDurationMs?: number
}

export type Outcome =
  | (OutcomeBase & { readonly kind: "response"; readonly body: unknown })
  | (OutcomeBase & {
      readonly kind: "error"
      /** `init`: the process failed before taking the event (`/init/error`, or it exited). */
      readonly phase: "init" | "invoke"
      readonly body: FunctionError
    })
  | (OutcomeBase & {
      readonly kind: "timeout"
      readonly phase: "init" | "invoke"
      readonly body: FunctionError
    })

export interface RuntimeApiOptions {
  /** Sent as `Lambda-Runtime-Invoked-Function-Arn`. */
  readonly functionArn?: string
  /** How long a started process may take to ask for its first event (Lambda: 10 s). */
  readonly initTimeoutMs?: number
}

export interface RuntimeApi {
  /** `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`. */
  readonly address: string
  /** Queues `event`; resolves with its outcome. `timeoutMs` is the function's timeout for this invocation. */
  readonly invoke: (event: unknown, options: { readonly timeoutMs: number }) => Promise<Outcome>
  /** Output of the runtime process (any chunking). */
  readonly capture: (stream: "stdout" | "stderr", chunk: Buffer | string) => void
  /** A runtime process starts: its init lasts until it asks for an event. */
  readonly runtimeStarted: () => void
  /** The runtime process is gone: what it was running ends as `Runtime.ExitError`. */
  readonly runtimeExited: (exit: { readonly code: number | null; readonly signal: string | null }) => void
  readonly close: () => Promise<void>
}

interface Pending {
  readonly requestId: string
  readonly traceId: string
  readonly event: unknown
  readonly timeoutMs: number
  readonly resolve: (outcome: Outcome) => void
  deadlineMs: number
  handedOutAt?: number
  initDurationMs?: number
  answer?:
    | { readonly kind: "response"; readonly body: unknown; readonly at: number }
    | { readonly kind: "error"; readonly body: FunctionError; readonly at: number }
  timer?: NodeJS.Timeout
}

const base = "/2018-06-01/runtime"
const invocationPath = new RegExp(`^${base}/invocation/([^/]+)/(response|error)$`)

const traceId = () =>
  `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")};Parent=${randomBytes(8).toString("hex")};Sampled=0`

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The error a runtime posted; a body that is not `{ errorType, errorMessage }` is kept as the message. */
const functionError = (text: string, errorTypeHeader: string | undefined): FunctionError => {
  const parsed = parseJson(text)
  const body = parsed.ok && isRecord(parsed.value) ? parsed.value : {}
  const trace = Array.isArray(body.trace) ? body.trace.map(String) : undefined
  return {
    errorType: typeof body.errorType === "string" ? body.errorType : (errorTypeHeader ?? "Unknown"),
    errorMessage: typeof body.errorMessage === "string" ? body.errorMessage : text,
    ...(trace === undefined ? {} : { trace })
  }
}

const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res
    .writeHead(status, { "content-type": "application/json", ...headers })
    .end(JSON.stringify(body) ?? "null")
}

/** Starts the Runtime API on 127.0.0.1, on a port the OS picks. */
export const start = async (options: RuntimeApiOptions = {}): Promise<RuntimeApi> => {
  const functionArn = options.functionArn ?? "arn:aws:lambda:eu-west-1:123456789012:function:test"
  const initTimeoutMs = options.initTimeoutMs ?? 10_000
  const queue: Array<Pending> = []
  const waiters: Array<ServerResponse> = []
  let current: Pending | undefined
  let logs: Array<LogLine> = []
  const partial = { stdout: "", stderr: "" }
  let init: { readonly startedAt: number; timer?: NodeJS.Timeout } | undefined

  const settle = (pending: Pending, outcome: Outcome) => {
    clearTimeout(pending.timer)
    if (current === pending) current = undefined
    const queued = queue.indexOf(pending)
    if (queued >= 0) queue.splice(queued, 1)
    pending.resolve(outcome)
  }

  const baseOf = (pending: Pending, now: number): OutcomeBase => ({
    requestId: pending.requestId,
    deadlineMs: pending.deadlineMs,
    traceId: pending.traceId,
    logs,
    durationMs: pending.handedOutAt === undefined ? 0 : now - pending.handedOutAt,
    ...(pending.initDurationMs === undefined ? {} : { initDurationMs: pending.initDurationMs })
  })

  /** The answered invocation is over: its logs end here. */
  const finish = (pending: Pending) => {
    const answer = pending.answer!
    const outcome: Outcome =
      answer.kind === "error"
        ? { ...baseOf(pending, answer.at), kind: "error", phase: "invoke", body: answer.body }
        : { ...baseOf(pending, answer.at), kind: "response", body: answer.body }
    logs = []
    settle(pending, outcome)
  }

  const handOut = () => {
    while (current === undefined && queue.length > 0 && waiters.length > 0) {
      const waiter = waiters.shift()!
      if (waiter.destroyed) continue
      const pending = queue.shift()!
      const now = Date.now()
      if (init !== undefined) {
        clearTimeout(init.timer)
        pending.initDurationMs = now - init.startedAt
        init = undefined
      }
      pending.handedOutAt = now
      pending.deadlineMs = now + pending.timeoutMs
      pending.timer = setTimeout(() => {
        if (current !== pending || pending.answer !== undefined) return
        const seconds = (pending.timeoutMs / 1000).toFixed(2)
        settle(pending, {
          ...baseOf(pending, Date.now()),
          kind: "timeout",
          phase: "invoke",
          body: {
            errorType: "Sandbox.Timedout",
            errorMessage: `RequestId: ${pending.requestId} Error: Task timed out after ${seconds} seconds`
          }
        })
      }, pending.timeoutMs)
      current = pending
      send(waiter, 200, pending.event, {
        "Lambda-Runtime-Aws-Request-Id": pending.requestId,
        "Lambda-Runtime-Deadline-Ms": String(pending.deadlineMs),
        "Lambda-Runtime-Invoked-Function-Arn": functionArn,
        "Lambda-Runtime-Trace-Id": pending.traceId
      })
    }
  }

  const next = (res: ServerResponse) => {
    if (current?.answer !== undefined) finish(current)
    waiters.push(res)
    res.on("close", () => {
      const at = waiters.indexOf(res)
      if (at >= 0) waiters.splice(at, 1)
    })
    handOut()
  }

  const answer = (
    res: ServerResponse,
    requestId: string,
    kind: "response" | "error",
    text: string,
    errorType?: string
  ) => {
    if (current === undefined || current.requestId !== requestId || current.answer !== undefined) {
      return send(res, 400, {
        errorType: "InvalidRequestID",
        errorMessage: `no invocation ${requestId} in flight`
      })
    }
    clearTimeout(current.timer)
    if (kind === "error") {
      current.answer = { kind, body: functionError(text, errorType), at: Date.now() }
    } else {
      const parsed = parseJson(text)
      current.answer = { kind, body: parsed.ok ? parsed.value : text, at: Date.now() }
    }
    send(res, 202, { status: "OK" })
  }

  /** The init failed (or ended): the invocation waiting for it ends with `body`. */
  const failInit = (kind: "error" | "timeout", body: FunctionError) => {
    const waiting = queue[0]
    const startedAt = init?.startedAt
    clearTimeout(init?.timer)
    init = undefined
    if (waiting === undefined) return
    const initDurationMs = startedAt === undefined ? {} : { initDurationMs: Date.now() - startedAt }
    settle(waiting, { ...baseOf(waiting, Date.now()), ...initDurationMs, kind, phase: "init", body })
  }

  const server = createServer((req, res) => {
    const path = req.url ?? ""
    if (req.method === "GET" && path === `${base}/invocation/next`) return next(res)
    readBody(req).then(
      (text) => {
        const matched = req.method === "POST" ? invocationPath.exec(path) : null
        if (matched !== null) {
          const kind = matched[2] === "error" ? "error" : "response"
          const errorType = req.headers["lambda-runtime-function-error-type"]
          return answer(
            res,
            decodeURIComponent(matched[1]!),
            kind,
            text,
            typeof errorType === "string" ? errorType : undefined
          )
        }
        if (req.method === "POST" && path === `${base}/init/error`) {
          const errorType = req.headers["lambda-runtime-function-error-type"]
          failInit("error", functionError(text, typeof errorType === "string" ? errorType : undefined))
          return send(res, 202, { status: "OK" })
        }
        send(res, 404, { errorType: "NotFound", errorMessage: `${req.method} ${path}` })
      },
      () => res.destroy()
    )
  })
  // A long poll may wait for the next event for as long as a test likes.
  server.requestTimeout = 0
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo

  const pushLines = (stream: "stdout" | "stderr", text: string) => {
    for (const line of text.split("\n")) {
      if (line === "") continue
      const parsed = parseJson(line)
      logs.push(
        parsed.ok && isRecord(parsed.value)
          ? { stream, text: line, json: parsed.value }
          : { stream, text: line }
      )
    }
  }

  return {
    address: `127.0.0.1:${port}`,
    invoke: (event, { timeoutMs }) =>
      new Promise<Outcome>((resolve) => {
        queue.push({ requestId: randomUUID(), traceId: traceId(), event, timeoutMs, resolve, deadlineMs: 0 })
        handOut()
      }),
    capture: (stream, chunk) => {
      const text = partial[stream] + chunk.toString()
      const end = text.lastIndexOf("\n") + 1
      partial[stream] = text.slice(end)
      pushLines(stream, text.slice(0, end))
    },
    runtimeStarted: () => {
      logs = []
      const startedAt = Date.now()
      init = { startedAt }
      init.timer = setTimeout(
        () =>
          failInit("timeout", {
            errorType: "Sandbox.Timedout",
            errorMessage: `INIT_REPORT Init Duration: ${initTimeoutMs} ms Phase: init Status: timeout`
          }),
        initTimeoutMs
      )
    },
    runtimeExited: ({ code, signal }) => {
      for (const stream of ["stdout", "stderr"] as const) {
        pushLines(stream, partial[stream])
        partial[stream] = ""
      }
      const status = signal === null ? `exit status ${code}` : `signal: ${signal}`
      if (current !== undefined) {
        if (current.answer !== undefined) return finish(current)
        const outcome: Outcome = {
          ...baseOf(current, Date.now()),
          kind: "error",
          phase: "invoke",
          body: {
            errorType: "Runtime.ExitError",
            errorMessage: `RequestId: ${current.requestId} Error: Runtime exited with error: ${status}`
          }
        }
        return settle(current, outcome)
      }
      if (init !== undefined) {
        failInit("error", {
          errorType: "Runtime.ExitError",
          errorMessage: `Runtime exited with error: ${status}`
        })
      }
    },
    close: async () => {
      for (const waiter of waiters.splice(0)) waiter.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
