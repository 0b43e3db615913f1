/**
 * Logs as Lambda's JSON log format writes them: one JSON object per line on stdout, with
 * `timestamp` (ISO-8601), `level` (`TRACE` … `FATAL`), `requestId` and `message` first, then the
 * log's annotations (`function`, the invocation's own fields) and, for a log carrying a cause,
 * `errorType`, `errorMessage` and the whole `cause`. Lines are written with `process.stdout.write`,
 * not `console.log`, so the runtime's own console formatting never wraps them twice; CloudWatch
 * reads each line as a structured event.
 *
 * The minimum level comes from `LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL` (what Lambda sets from the
 * function's `LoggingConfig.ApplicationLogLevel`), else `INFO`: Lambda filters only what goes
 * through its console, so these lines are filtered here.
 */
import * as ClientConfig from "@spillway/aws/ClientConfig"
import { Cause, Config, Effect, Layer, Logger, type LogLevel, Option, References } from "effect"

/** Where lines go; the default writes to stdout. */
export type Output = (line: string) => void

export const stdout: Output = (line) => {
  process.stdout.write(`${line}\n`)
}

const levelNames: Readonly<Record<LogLevel.LogLevel, string>> = {
  All: "TRACE",
  Trace: "TRACE",
  Debug: "DEBUG",
  Info: "INFO",
  Warn: "WARN",
  Error: "ERROR",
  Fatal: "FATAL",
  None: "FATAL"
}

/** JSON for anything a log may carry: bigints as strings, errors by name and message, an object met twice written once. */
export const stringify = (value: unknown): string => {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString()
    if (v instanceof Error) return { name: v.name, message: v.message }
    if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[Circular]"
      seen.add(v)
    }
    return v
  })
}

const messageOf = (message: unknown): { readonly message: unknown; readonly details?: unknown } => {
  const parts = Array.isArray(message) ? message : [message]
  const text = parts.filter((part): part is string => typeof part === "string")
  const rest = parts.filter((part) => typeof part !== "string")
  if (text.length === 0 && rest.length === 1) return { message: rest[0] }
  const joined = text.join(" ")
  if (rest.length === 0) return { message: joined }
  return { message: joined, details: rest.length === 1 ? rest[0] : rest }
}

const describeCause = (cause: Cause.Cause<unknown>): Record<string, unknown> => {
  if (cause.reasons.length === 0) return {}
  const squashed = Cause.squash(cause)
  const errorType =
    typeof squashed === "object" &&
    squashed !== null &&
    "_tag" in squashed &&
    typeof squashed._tag === "string"
      ? squashed._tag
      : squashed instanceof Error
        ? squashed.name
        : typeof squashed
  const errorMessage =
    squashed instanceof Error || (typeof squashed === "object" && squashed !== null && "message" in squashed)
      ? String((squashed as { readonly message: unknown }).message)
      : String(squashed)
  return { errorType, errorMessage, cause: Cause.pretty(cause) }
}

/** The logger: each log one line of Lambda's JSON log format, handed to `output`. */
export const make = (output: Output): Logger.Logger<unknown, void> =>
  Logger.make(({ message, logLevel, date, cause, fiber }) => {
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    const { requestId, ...rest } = annotations
    const entry = {
      timestamp: date.toISOString(),
      level: levelNames[logLevel],
      ...(requestId === undefined ? {} : { requestId }),
      ...messageOf(message),
      ...rest,
      ...describeCause(cause)
    }
    let line: string
    try {
      line = stringify(entry)
    } catch (error) {
      line = stringify({ timestamp: entry.timestamp, level: entry.level, message: String(error) })
    }
    output(line)
  })

const levels: Readonly<Record<string, LogLevel.LogLevel>> = {
  TRACE: "Trace",
  DEBUG: "Debug",
  INFO: "Info",
  WARN: "Warn",
  WARNING: "Warn",
  ERROR: "Error",
  FATAL: "Fatal"
}

/** A level name in any case (`info`, `WARN`) when `variable` is set; anything else fails naming it. */
const levelFrom = (variable: string): Config.Config<Option.Option<LogLevel.LogLevel>> =>
  Config.option(Config.String(variable)).pipe(
    Config.mapEffect(
      Option.match({
        onNone: () => Effect.succeed(Option.none()),
        onSome: (raw) => {
          const found = levels[raw.trim().toUpperCase()]
          return found === undefined
            ? Effect.fail(
                ClientConfig.invalid(
                  variable,
                  `must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got ${JSON.stringify(raw.slice(0, 40))}`
                )
              )
            : Effect.succeed(Option.some(found))
        }
      })
    )
  )

/** `LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`, else `Info`. */
export const minimumLevel: Config.Config<LogLevel.LogLevel> = Config.all([
  levelFrom("LOG_LEVEL"),
  levelFrom("AWS_LAMBDA_LOG_LEVEL")
]).pipe(
  Config.map(([own, lambda]) =>
    Option.getOrElse(
      Option.orElse(own, () => lambda),
      (): LogLevel.LogLevel => "Info"
    )
  )
)

/** The JSON logger in place of the default one, and the minimum level from the environment. */
export const layer = (output: Output): Layer.Layer<never, Config.ConfigError> =>
  Layer.mergeAll(Logger.layer([make(output)]), Layer.effect(References.MinimumLogLevel, minimumLevel))
