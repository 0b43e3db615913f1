/** Helpers for the collector and `spillway dev` tests: records, in-process requests, settling on TestClock. */
import { gzipSync } from "node:zlib"
import { CollectorHttp } from "@spillway/core"
import type { MemoryPipeline } from "@spillway/memory"
import { Harness as Testing } from "@spillway/testing"
import { type Console, type Duration, Effect } from "effect"

export const { apiKey, record, records, whileClockRuns } = Testing

export const jsonHeaders = { "content-type": "application/json", "x-api-key": apiKey } as const

/** A request as a transport would build it; `body` is sent as is when bytes or a string, else as JSON. */
export const request = (
  options: {
    readonly method?: string
    readonly url?: string
    readonly headers?: Readonly<Record<string, CollectorHttp.HeaderValue>>
    readonly body?: unknown
    readonly gzip?: boolean
  } = {}
): CollectorHttp.Request => {
  const raw =
    options.body instanceof Uint8Array
      ? options.body
      : Buffer.from(typeof options.body === "string" ? options.body : JSON.stringify(options.body ?? []))
  const body = options.gzip === true ? gzipSync(raw) : raw
  return {
    method: options.method ?? "POST",
    path: options.url ?? CollectorHttp.telemetryPath,
    headers: {
      ...jsonHeaders,
      ...(options.gzip === true ? { "content-encoding": "gzip" } : {}),
      ...options.headers
    },
    body
  }
}

/** Settles the pipeline on TestClock; fails after `max` of simulated time. */
export const settle = (pipeline: MemoryPipeline.Pipeline, max: Duration.Input = "10 minutes") =>
  Testing.settle(pipeline, { max })

/** `settle` on the live clock (polling every 100 ms): whether the pipeline settled within `max`. */
export const waitUntilIdle = (pipeline: { readonly isIdle: Effect.Effect<boolean> }, max: Duration.Input) =>
  Testing.settle(pipeline, { clock: "live", step: "100 millis", max }).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )

/** A console that keeps what is logged to stdout, line by line, and what goes to stderr. */
export const captureConsole = () => {
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  const ignore = () => {}
  const console: Console.Console = {
    assert: ignore,
    clear: ignore,
    count: ignore,
    countReset: ignore,
    debug: ignore,
    dir: ignore,
    dirxml: ignore,
    error: (...args) => void stderr.push(args.join(" ")),
    group: ignore,
    groupCollapsed: ignore,
    groupEnd: ignore,
    info: (...args) => void stdout.push(args.join(" ")),
    log: (...args) => void stdout.push(args.join(" ")),
    table: ignore,
    time: ignore,
    timeEnd: ignore,
    timeLog: ignore,
    trace: ignore,
    warn: (...args) => void stderr.push(args.join(" "))
  }
  return { console, stdout, stderr }
}
