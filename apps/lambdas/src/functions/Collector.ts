/**
 * The collector function: API Gateway HTTP API (payload format 2.0) and Lambda function URL
 * requests answered by the collector's HTTP contract (`CollectorHttp` in core) — the same one
 * `spillway dev` serves, so statuses, JSON error bodies, gzip and base64 bodies, size limits and
 * 503 + `Retry-After` are the same deployed and local. This module only maps the event to a
 * `CollectorHttp.Request` field by field and the `Response` back (docs/aws-behaviour.md §9):
 *
 * - method from `requestContext.http.method`; path from `rawPath` and `rawQueryString`, without
 *   the stage's prefix on an API with a named stage (`/prod/v1/telemetry` is `/v1/telemetry`);
 * - headers as sent (lower-cased and comma-joined by the gateway); the body as a string, base64
 *   when `isBase64Encoded` (API Gateway encodes a gzip body so), absent when none was sent;
 * - the answer `{ statusCode, headers, body, isBase64Encoded: false }`, the body the JSON text
 *   (none on a preflight's 204).
 *
 * The contract never fails: every request gets an answer, so the function errs only for an event
 * that is not an HTTP request at all. Browsers may post from `ALLOWED_ORIGINS` (comma-separated;
 * default none). One log line per request: `INFO` for 2xx, `WARN` for 4xx, `ERROR` for 5xx.
 */
import {
  type ApiKeys,
  CollectorHttp,
  type FallbackQueue,
  LambdaEvents,
  type RecordStream
} from "@spillway/core"
import { Config, Context, Effect, Layer } from "effect"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

export type Services = ApiKeys.ApiKeys | RecordStream.RecordStream | FallbackQueue.FallbackQueue

export interface CollectorSettingsValues {
  /** `ALLOWED_ORIGINS`. */
  readonly allowedOrigins: ReadonlyArray<string>
}

export class CollectorSettings extends Context.Service<CollectorSettings, CollectorSettingsValues>()(
  "spillway/lambdas/CollectorSettings"
) {}

export const settingsLayer: Layer.Layer<CollectorSettings, Config.ConfigError> = Layer.effect(
  CollectorSettings,
  Config.all({
    allowedOrigins: Config.String("ALLOWED_ORIGINS").pipe(
      Config.withDefault(""),
      Config.map((value) =>
        value
          .split(",")
          .map((origin) => origin.trim())
          .filter((origin) => origin.length > 0)
      )
    )
  })
)

/** The contract's request for an HTTP API / function URL event. */
export const toRequest = (event: LambdaEvents.HttpApiEvent): CollectorHttp.Request => {
  const stage = event.requestContext.stage
  const prefix = stage === "$default" || stage.length === 0 ? "" : `/${stage}`
  const path =
    prefix !== "" && (event.rawPath === prefix || event.rawPath.startsWith(`${prefix}/`))
      ? event.rawPath.slice(prefix.length) || "/"
      : event.rawPath
  return {
    method: event.requestContext.http.method,
    path: event.rawQueryString.length > 0 ? `${path}?${event.rawQueryString}` : path,
    headers: event.headers,
    body: event.body,
    isBase64Encoded: event.isBase64Encoded
  }
}

/** The gateway's answer for a contract response. */
export const toHttpResponse = (response: CollectorHttp.Response): LambdaEvents.HttpResponse => ({
  statusCode: response.status,
  headers: response.headers,
  ...(response.body === undefined ? {} : { body: JSON.stringify(response.body) }),
  isBase64Encoded: false
})

const logResponse = (request: CollectorHttp.Request, response: CollectorHttp.Response) => {
  const body = response.body
  const fields: Record<string, unknown> = {
    status: response.status,
    method: request.method,
    path: request.path.slice(0, 200),
    ...(body !== undefined && "error" in body ? { code: body.error.code } : {}),
    ...(body !== undefined && "accepted" in body
      ? {
          accepted: body.accepted,
          rejected: body.rejected?.length ?? 0,
          unavailable: body.unavailable?.length ?? 0
        }
      : {})
  }
  const message =
    body !== undefined && "error" in body
      ? `${response.status} ${body.error.code}: ${body.error.message}`
      : `${response.status}`
  const log =
    response.status >= 500 ? Effect.logError : response.status >= 400 ? Effect.logWarning : Effect.logInfo
  return log(message).pipe(Effect.annotateLogs(fields))
}

export interface Options extends LambdaHandler.Options {
  /** The contract's options, over those from the environment (tests, other deployments). */
  readonly http?: CollectorHttp.Options
}

export const handle = Effect.fn("Collector.handle")(function* (
  event: LambdaEvents.HttpApiEvent,
  http: CollectorHttp.Options = {}
) {
  const { allowedOrigins } = yield* CollectorSettings
  const request = toRequest(event)
  const response = yield* CollectorHttp.handle(request, { allowedOrigins, ...http })
  yield* logResponse(request, response)
  return toHttpResponse(response)
})

/**
 * The collector's handler over `layer`: deployed, `AwsPipeline.collector(ApiKeyStore.layerConfig)`
 * (the key store is the caller's choice); in tests, a memory pipeline's collector layer.
 */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options: Options = {}
): LambdaHandler.Handler<LambdaEvents.HttpResponse> =>
  LambdaHandler.make(
    Layer.merge(layer, settingsLayer),
    {
      name: "collector",
      event: LambdaEvents.HttpApiEvent,
      eventDescription: "an API Gateway HTTP API (payload format 2.0) or Lambda function URL event",
      handle: (event) => handle(event, options.http)
    },
    options
  )
