/**
 * What every Spillway function shares: the function's layer turned into a `ManagedRuntime`, the
 * event decoded at the edge, the invocation's deadline, JSON logs and EMF metrics, and failures
 * that read well in Lambda's console. A function is `make(layer, definition)`; its `handle` is
 * the few lines that call a core stage.
 *
 * - The runtime is made when the module is loaded and built on the first invocation — not during
 *   init — so importing a handler reads no variable and calls no AWS API (bundles, tests), and a
 *   missing or malformed variable fails that invocation with an `InitializationError` naming it,
 *   as a clear error instead of an init crash. The services are built once and kept for every
 *   later invocation of the execution environment (SDK clients, the processor's dedup cache). A
 *   build that failed is not kept: the next invocation builds again (a variable fixed in place, a
 *   stream that now resolves). The first build registers a `SIGTERM` listener that disposes the
 *   runtime (SDK clients destroyed, finalizers run) and exits; Lambda sends `SIGTERM` before
 *   ending an environment with extensions and gives it a few hundred milliseconds.
 * - The event is decoded with its schema before anything runs: an event of the wrong shape fails
 *   the invocation with an `InvalidEvent` whose message says what was expected and which fields
 *   are wrong, and no stage sees it.
 * - Errors Lambda reports (`errorType`, `errorMessage`, `trace`) carry the error's tag and a
 *   message, and a one-line trace: no stack of Effect internals. The full cause of a defect is in
 *   the function's log, as an `ERROR` line.
 * - Logs are JSON lines (`JsonLog`) annotated with `requestId` and `function`; the metrics each
 *   invocation updated are written as EMF lines when it ends (`EmbeddedMetrics`).
 *
 * Variables read here, for every function: `DEADLINE_MARGIN_MS`, `METRICS_NAMESPACE`, `LOG_LEVEL`
 * (else `AWS_LAMBDA_LOG_LEVEL`).
 */
import { Telemetry } from "@spillway/core"
import {
  Cause,
  Clock,
  Config,
  ConfigProvider,
  Context,
  Data,
  Effect,
  Exit,
  Layer,
  ManagedRuntime,
  Metric,
  Result,
  Schema,
  SchemaParser
} from "effect"
import * as Deadline from "./Deadline.js"
import * as EmbeddedMetrics from "./EmbeddedMetrics.js"
import * as JsonLog from "./JsonLog.js"

/** The part of the Node.js runtime's `Context` a handler uses. */
export interface LambdaContext extends Deadline.Clocked {
  readonly awsRequestId: string
  readonly functionName: string
}

export interface Invocation {
  readonly requestId: string
  readonly context: LambdaContext
  readonly deadline: Deadline.Deadline
}

export interface Definition<Event, Response, E, R> {
  /** The function's name in logs, metrics and errors: `processor`, `collector`, … */
  readonly name: string
  readonly event: Schema.Decoder<Event>
  /** What the event must be, for the error when it is not: "a Kinesis event". */
  readonly eventDescription: string
  readonly handle: (event: Event, invocation: Invocation) => Effect.Effect<Response, E, R | Settings>
}

/** A Lambda handler (`index.handler`): an async function of the event and the context. */
export interface Handler<Response> {
  (event: unknown, context: LambdaContext): Promise<Response>
  /** Releases the runtime's resources, as `SIGTERM` does (without ending the process); the next invocation builds again. */
  readonly dispose: () => Promise<void>
}

/** Where `SIGTERM` comes from and how the process ends (the process itself, unless a test says otherwise). */
export interface Shutdown {
  readonly signals: { readonly once: (signal: "SIGTERM", listener: () => void) => unknown }
  readonly exit: (code: number) => void
}

export interface Options {
  /** The environment the function's configuration is read from. @default process.env */
  readonly env?: Readonly<Record<string, string>>
  /** Where log and EMF lines go. @default stdout */
  readonly output?: JsonLog.Output
  /** `false`: no `SIGTERM` listener. @default the process */
  readonly shutdown?: Shutdown | false
}

/** The settings every function reads from its environment. */
export interface SettingsValues {
  /** `DEADLINE_MARGIN_MS`; `undefined`: 10% of the invocation's time, at least 1 s. */
  readonly marginMillis: number | undefined
  /** `METRICS_NAMESPACE`. */
  readonly metricsNamespace: string
}

export class Settings extends Context.Service<Settings, SettingsValues>()("spillway/lambdas/Settings") {}

const MarginMillis = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(0, { message: "must be a whole number of milliseconds, 0 or more" })
)
const Namespace = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(255, { message: "must be at most 255 characters (a CloudWatch namespace)" })
)

export const settingsConfig: Config.Config<SettingsValues> = Config.all({
  marginMillis: Config.schema(MarginMillis, "DEADLINE_MARGIN_MS").pipe(
    Config.option,
    Config.map((margin) => (margin._tag === "Some" ? margin.value : undefined))
  ),
  metricsNamespace: Config.schema(Namespace, "METRICS_NAMESPACE").pipe(Config.withDefault("Spillway"))
})

export const settingsLayer: Layer.Layer<Settings, Config.ConfigError> = Layer.effect(Settings, settingsConfig)

/** The error Lambda reports: `name` as `errorType`, a message, and a trace of one line. */
export class InvocationError extends Error {
  constructor(name: string, message: string) {
    super(message)
    this.name = name
    this.stack = `${name}: ${message}`
  }
}

/** The event does not have the shape the function takes. */
export class InvalidEvent extends Data.TaggedError("InvalidEvent")<{ readonly message: string }> {}

/** The tag and message of a typed failure, for logs and the error Lambda reports. */
export const describeFailure = (error: unknown): { readonly name: string; readonly message: string } => {
  if (typeof error !== "object" || error === null) return { name: "Error", message: String(error) }
  const record = error as { readonly _tag?: unknown; readonly name?: unknown; readonly message?: unknown }
  const name =
    typeof record._tag === "string" ? record._tag : typeof record.name === "string" ? record.name : "Error"
  // A `Config.ConfigError`'s message wraps its cause's (`SchemaError(Missing data at X: …)`); the cause's reads better.
  const cause = (record as { readonly cause?: { readonly message?: unknown } }).cause
  if (name === "ConfigError" && typeof cause?.message === "string") return { name, message: cause.message }
  if (typeof record.message === "string" && record.message.length > 0)
    return { name, message: record.message }
  const { _tag, ...fields } = error as Record<string, unknown>
  return { name, message: JsonLog.stringify(fields) }
}

const defectMessage = (cause: Cause.Cause<unknown>): string => {
  const defect = Cause.squash(cause)
  return defect instanceof Error ? defect.message : String(defect)
}

/** How long `SIGTERM` waits for the runtime's disposal before the process exits (Lambda allows 500 ms or more). */
const shutdownBudgetMillis = 400

/** An event wrong in many places (10,000 records) is described by its first problems. */
const maxProblemsLength = 2000

export const make = <Event, Response, E, R, LE>(
  layer: Layer.Layer<R, LE>,
  definition: Definition<Event, Response, E, R>,
  options: Options = {}
): Handler<Response> => {
  const output = options.output ?? JsonLog.stdout
  const name = definition.name
  const withEnv = <A, E2, R2>(l: Layer.Layer<A, E2, R2>) =>
    options.env === undefined
      ? l
      : Layer.provide(l, ConfigProvider.layer(ConfigProvider.fromEnv({ env: { ...options.env } })))
  // The function's layer is built with the JSON logger in place, so what its services log while
  // building, or later from fibers of their own (a key store's refresh), is JSON as well.
  const runtimeLayer = withEnv(
    layer.pipe(Layer.provideMerge(Layer.merge(settingsLayer, JsonLog.layer(output))))
  )
  const decode = SchemaParser.decodeUnknownResult(definition.event, { errors: "all" })
  const log = (level: string, message: string, fields: Record<string, unknown> = {}) =>
    output(
      JsonLog.stringify({ timestamp: new Date().toISOString(), level, message, function: name, ...fields })
    )

  let current: ManagedRuntime.ManagedRuntime<R | Settings, LE | Config.ConfigError> | undefined
  let listening = false

  const listenForShutdown = () => {
    if (listening || options.shutdown === false) return
    listening = true
    const shutdown: Shutdown = options.shutdown ?? {
      signals: process,
      exit: (code) => process.exit(code)
    }
    shutdown.signals.once("SIGTERM", () => {
      log("INFO", `${name}: SIGTERM, releasing its resources`)
      const budget = new Promise<void>((resolve) => setTimeout(resolve, shutdownBudgetMillis).unref())
      void Promise.race([dispose(), budget]).finally(() => shutdown.exit(0))
    })
  }

  const dispose = async () => {
    const runtime = current
    current = undefined
    if (runtime !== undefined) await runtime.dispose()
  }

  /** The runtime with its services built; a build that failed is disposed and reported. */
  const ready = async () => {
    if (current === undefined) {
      current = ManagedRuntime.make(runtimeLayer)
      listenForShutdown()
    }
    const runtime = current
    if (runtime.cachedContext !== undefined) return runtime
    const built = await Effect.runPromiseExit(runtime.contextEffect)
    if (Exit.isSuccess(built)) return runtime
    if (current === runtime) current = undefined
    await runtime.dispose()
    const failure = Cause.findErrorOption(built.cause)
    const message =
      failure._tag === "Some" ? describeFailure(failure.value).message : defectMessage(built.cause)
    const text = `${name} could not start: ${message}`
    log("ERROR", text, failure._tag === "Some" ? {} : { cause: Cause.pretty(built.cause) })
    throw new InvocationError("InitializationError", text)
  }

  const invoke = async (event: unknown, context: LambdaContext): Promise<Response> => {
    // Before the first build takes its share: the margin is a part of the whole invocation.
    const remainingAtStart = context.getRemainingTimeInMillis()
    const runtime = await ready()
    const requestId = context.awsRequestId
    const recorder = new EmbeddedMetrics.Recorder()
    const writeMetrics = Effect.gen(function* () {
      const settings = yield* Settings
      const timestamp = yield* Clock.currentTimeMillis
      const lines = EmbeddedMetrics.render(recorder, {
        namespace: settings.metricsNamespace,
        dimensions: { function: name },
        properties: { requestId, functionName: context.functionName },
        timestamp
      })
      for (const line of lines) output(line)
    })
    const program = Effect.gen(function* () {
      const settings = yield* Settings
      const deadline = Deadline.make(context, settings.marginMillis, remainingAtStart)
      const decoded = decode(event)
      if (Result.isFailure(decoded)) {
        const problems = Telemetry.formatIssue(decoded.failure, "event")
        return yield* new InvalidEvent({
          message: `${name} takes ${definition.eventDescription}; this event is not one: ${
            problems.length > maxProblemsLength ? `${problems.slice(0, maxProblemsLength)}…` : problems
          }`
        })
      }
      return yield* definition.handle(decoded.success, { requestId, context, deadline })
    }).pipe(
      Effect.tapCause((cause) => {
        const failure = Cause.findErrorOption(cause)
        if (failure._tag === "Some") {
          const described = describeFailure(failure.value)
          return Effect.logError(described.message).pipe(Effect.annotateLogs({ errorType: described.name }))
        }
        return Effect.logError(`${name} failed`, cause)
      }),
      Effect.ensuring(writeMetrics),
      Effect.annotateLogs({ requestId, function: name }),
      Effect.provideService(Metric.MetricRegistry, recorder)
    )
    const exit = await runtime.runPromiseExit(program)
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.findErrorOption(exit.cause)
    if (failure._tag === "Some") {
      const described = describeFailure(failure.value)
      throw new InvocationError(described.name, described.message)
    }
    throw new InvocationError("InternalError", `${name} failed: ${defectMessage(exit.cause)}`)
  }
  return Object.assign(invoke, { dispose })
}
