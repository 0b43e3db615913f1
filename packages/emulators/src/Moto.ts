/**
 * moto's server (`moto_server`, moto 5.x, Python) as a scoped resource: the AWS services no
 * in-process emulator covers — here Secrets Manager and SSM Parameter Store, which the collector's
 * API key store reads — answered on one endpoint for every service.
 *
 * `start` runs `moto_server -H 127.0.0.1 -p 0`: the OS picks a free port and the server prints it
 * (`Running on http://127.0.0.1:<port>`), so no port is chosen first and then raced for. It is
 * ready when it answers HTTP on that port; closing the scope stops it (SIGTERM to its process
 * group, SIGKILL after 5 s). One server holds state for every test that shares it; `reset`
 * forgets every resource. When `moto_server` is missing the error says what to install.
 *
 * moto checks no signatures: any credentials do (`Emulators.credentials`), and the account is
 * always 123456789012. What it does and does not do per API: docs/aws-behaviour.md and
 * platform-facts §5 (Secrets Manager and SSM get/put/versions work).
 *
 * Processes are spawned through Effect's `ChildProcessSpawner` (on Node, `@effect/platform-node`'s
 * `NodeServices.layer` provides it), which ties the server's process group to the scope.
 */
import { NodeServices } from "@effect/platform-node"
import { Deferred, Duration, Effect, Fiber, Schedule, type Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { type ClientOptions, credentials, EmulatorError, region } from "./Emulators.js"

export interface Options {
  /** The executable. @default `SPILLWAY_MOTO_SERVER`, else `moto_server` found on PATH */
  readonly command?: string
  /** How long the server may take to answer. @default 30 seconds */
  readonly startTimeout?: Duration.Input
}

export interface Moto {
  /** `http://127.0.0.1:<port>`: every service on one endpoint. */
  readonly endpoint: string
  /** What an SDK client needs to reach it (any service). */
  readonly client: ClientOptions
  /** Forgets every resource of every service (`POST /moto-api/reset`). */
  readonly reset: Effect.Effect<void, EmulatorError>
  /** The last lines the server logged (for a failure's message). */
  readonly logTail: Effect.Effect<string>
}

/** What to do when there is no `moto_server` to run. */
export const installHint =
  "install moto with its server extra (pip install 'moto[server]', Python 3.9 or newer), or set SPILLWAY_MOTO_SERVER to the moto_server executable"

const commandOf = (options: Options): string =>
  options.command ?? process.env.SPILLWAY_MOTO_SERVER ?? "moto_server"

// werkzeug's start-up line, printed once the socket is bound.
const runningOn = /Running on (http:\/\/127\.0\.0\.1:\d+)/

/** Any HTTP answer on the dashboard path means the server is serving. */
const answers = (endpoint: string) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await globalThis.fetch(`${endpoint}/moto-api/`, { signal })
      await response.arrayBuffer()
    },
    catch: (cause) => new EmulatorError({ message: `moto does not answer at ${endpoint}`, cause })
  })

/** Starts `moto_server` on 127.0.0.1 on a free port; stops it when the scope closes. */
export const start = Effect.fn("Moto.start")(function* (
  options: Options = {}
): Effect.fn.Return<Moto, EmulatorError, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner> {
  const command = commandOf(options)
  const timeout = options.startTimeout ?? Duration.seconds(30)
  // The handle is tied to the caller's scope: closing it stops the server's process group.
  const handle = yield* ChildProcessSpawner.ChildProcessSpawner.use((spawner) =>
    spawner.spawn(
      ChildProcess.make(command, ["-H", "127.0.0.1", "-p", "0"], {
        // Python buffers a pipe's output; the port line must arrive when it is printed.
        env: { PYTHONUNBUFFERED: "1" },
        extendEnv: true,
        killSignal: "SIGTERM",
        forceKillAfter: Duration.seconds(5)
      })
    )
  ).pipe(
    Effect.mapError((cause) =>
      cause.reason._tag === "NotFound"
        ? new EmulatorError({ message: `${command} was not found: ${installHint}`, cause })
        : new EmulatorError({ message: `cannot start ${command}: ${cause.message}`, cause })
    )
  )

  const lines: Array<string> = []
  const url = yield* Deferred.make<string>()
  const reader = yield* Stream.decodeText(handle.all).pipe(
    Stream.splitLines,
    Stream.runForEach((line) =>
      Effect.suspend(() => {
        lines.push(line)
        if (lines.length > 200) lines.shift()
        const match = runningOn.exec(line)
        return match === null ? Effect.void : Deferred.succeed(url, match[1]!)
      })
    ),
    Effect.ignore,
    Effect.forkScoped
  )
  const logTail = Effect.sync(() => lines.slice(-30).join("\n"))

  const exited = handle.exitCode.pipe(
    // What it printed before exiting is read to the end before it is quoted.
    Effect.tap(() => Fiber.await(reader)),
    Effect.flatMap((code) =>
      Effect.flatMap(logTail, (tail) =>
        Effect.fail(
          new EmulatorError({
            message:
              // 127: a shell or a pyenv shim found no moto_server behind the name.
              `${command} exited with ${code} before it answered${code === 127 ? `; ${installHint}` : ""}:\n${tail}`
          })
        )
      )
    ),
    Effect.catchTag("PlatformError", (cause) =>
      Effect.fail(new EmulatorError({ message: `${command} failed while starting: ${cause.message}`, cause }))
    )
  )
  const ready = Deferred.await(url).pipe(
    Effect.tap((endpoint) => answers(endpoint).pipe(Effect.retry(Schedule.spaced("50 millis"))))
  )
  const endpoint = yield* Effect.raceFirst(ready, exited).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.flatMap(logTail, (tail) =>
          Effect.fail(
            new EmulatorError({
              message: `${command} did not answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}:\n${tail}`
            })
          )
        )
    })
  )

  const reset = Effect.tryPromise({
    try: async (signal) => {
      const response = await globalThis.fetch(`${endpoint}/moto-api/reset`, { method: "POST", signal })
      await response.arrayBuffer()
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
    },
    catch: (cause) => new EmulatorError({ message: `cannot reset moto: ${String(cause)}`, cause })
  })

  return { endpoint, client: { region, endpoint, credentials }, reset, logTail }
})

/**
 * `start` with Node's process spawner (`NodeServices.layer`) provided, for callers that run on no
 * platform layer of their own (the AWS tests). The server still lives as long as the caller's scope.
 */
export const startOnNode = (options: Options = {}): Effect.Effect<Moto, EmulatorError, Scope.Scope> =>
  start(options).pipe(Effect.provide(NodeServices.layer))
