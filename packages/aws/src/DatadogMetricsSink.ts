/**
 * `MetricsSink` over Datadog's metrics API v2 (`POST https://api.<site>/api/v2/series`,
 * docs/aws-behaviour.md §8), with Effect's `HttpClient`: the body gzipped (`Content-Encoding:
 * gzip`), the key in `DD-API-KEY`, read from Secrets Manager (`DatadogApiKey`) on the first send
 * and then cached — never while the function starts, so a key that cannot be read spools the
 * points instead of losing them (the Datadog forwarder's #1026).
 *
 * Every answer but a 2xx is a failure (the forwarder's swallowed errors, #1129), typed by what a
 * retry can do:
 *
 * | answer                       | reason           | retry?                                            |
 * |------------------------------|------------------|---------------------------------------------------|
 * | 202 (and any 2xx)            | —                | `errors` in the body reported as warnings         |
 * | 429                          | `Throttled`      | yes, not before `X-RateLimit-Reset` (or `Retry-After`) seconds |
 * | 408, 5xx, timeout, no answer | `Unavailable`    | yes                                               |
 * | 413                          | `TooLarge`       | split the payload                                 |
 * | 401, 403                     | `AccessDenied`   | no (the key is wrong or revoked: it is read again on the next send after `keyTtl`) |
 * | other 4xx and 3xx            | `InvalidRequest` | no                                                |
 *
 * A payload over the limits (`MetricsSink.datadogV2Limits`: points, decompressed bytes, and
 * compressed bytes once gzipped) is refused with `TooLarge` before anything is sent.
 *
 * A request that times out may still have been accepted: Datadog offers no idempotency key, so a
 * retry after a timeout can count its points twice. The timeout (`DD_TIMEOUT_MS`, 10 s) is set
 * well above the intake's normal answer time to keep that rare.
 *
 * Configuration (`layerConfig`): `DD_SITE` (default `datadoghq.com`: `datadoghq.eu`,
 * `us3.datadoghq.com`, `us5.datadoghq.com`, `ap1.datadoghq.com`, `ap2.datadoghq.com`,
 * `ddog-gov.com`, …; the API host is `api.<site>`), `DD_METRICS_URL` (the whole endpoint, for a
 * proxy or a test intake; overrides `DD_SITE`), `DD_TIMEOUT_MS` (default 10000), and the key as
 * `DatadogApiKey.layerConfig` reads it.
 */
import { gzipSync } from "node:zlib"
import { MetricsSink } from "@spillway/core"
import { Config, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Headers, HttpClient, HttpClientRequest } from "effect/http"
import * as ClientConfig from "./ClientConfig.js"
import * as DatadogApiKey from "./DatadogApiKey.js"

export interface Options {
  /** The endpoint, `https://api.<site>/api/v2/series`. */
  readonly url: string
  /** @default 10000 */
  readonly timeoutMillis?: number
  /** @default MetricsSink.datadogV2Limits */
  readonly limits?: MetricsSink.Limits
}

/** The v2 series endpoint of a Datadog site (`datadoghq.eu` → `https://api.datadoghq.eu/api/v2/series`). */
export const seriesUrl = (site: string): string => `https://api.${site}/api/v2/series`

const name = "datadog"

const sinkError = (
  reason: MetricsSink.ErrorReason,
  message: string,
  extra: { readonly status?: number; readonly retryAfterMillis?: number; readonly cause?: unknown } = {}
) =>
  new MetricsSink.MetricsSinkError({
    sink: name,
    reason,
    message,
    ...(extra.status === undefined ? {} : { status: extra.status }),
    ...(extra.retryAfterMillis === undefined ? {} : { retryAfterMillis: extra.retryAfterMillis }),
    ...(extra.cause === undefined ? {} : { cause: extra.cause })
  })

/** What a non-2xx status means (see the module header). */
export const reasonOfStatus = (status: number): MetricsSink.ErrorReason =>
  status === 429
    ? "Throttled"
    : status === 408 || status >= 500
      ? "Unavailable"
      : status === 413
        ? "TooLarge"
        : status === 401 || status === 403
          ? "AccessDenied"
          : "InvalidRequest"

/** Milliseconds until the reset a 429 names: `X-RateLimit-Reset` (seconds), else `Retry-After` (seconds). */
export const retryAfterOf = (headers: Headers.Headers): number | undefined => {
  for (const header of ["x-ratelimit-reset", "retry-after"]) {
    const value = Option.getOrUndefined(Headers.get(headers, header))
    const seconds = value === undefined ? Number.NaN : Number(value)
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  }
  return undefined
}

const errorsOf = (body: unknown): ReadonlyArray<string> => {
  if (typeof body !== "object" || body === null || !("errors" in body)) return []
  const errors = (body as { readonly errors: unknown }).errors
  return Array.isArray(errors) ? errors.map(String) : []
}

export const make = (
  options: Options
): Effect.Effect<MetricsSink.Service, never, HttpClient.HttpClient | DatadogApiKey.DatadogApiKey> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const keys = yield* DatadogApiKey.DatadogApiKey
    const limits = options.limits ?? MetricsSink.datadogV2Limits
    const timeout = Duration.millis(options.timeoutMillis ?? 10_000)

    const submit = Effect.fn("DatadogMetricsSink.submit")(function* (
      series: ReadonlyArray<MetricsSink.Series>
    ) {
      const points = MetricsSink.countPoints(series)
      if (points === 0) return { points: 0, warnings: [] }
      if (points > limits.maxPointsPerPayload) {
        return yield* sinkError(
          "TooLarge",
          `${points} points; at most ${limits.maxPointsPerPayload} per payload`
        )
      }
      const json = Buffer.from(MetricsSink.encodeV2Payload(series), "utf8")
      if (json.byteLength > limits.maxUncompressedBytes) {
        return yield* sinkError(
          "TooLarge",
          `${json.byteLength} bytes; at most ${limits.maxUncompressedBytes} decompressed`
        )
      }
      const body = gzipSync(json)
      if (body.byteLength > limits.maxCompressedBytes) {
        return yield* sinkError(
          "TooLarge",
          `${body.byteLength} bytes gzipped; at most ${limits.maxCompressedBytes}`
        )
      }
      const key = yield* keys.current.pipe(
        Effect.mapError((e) =>
          sinkError(
            e.reason === "AccessDenied" || e.reason === "NotFound" ? "AccessDenied" : "Unavailable",
            `the API key could not be read: ${e.message}`,
            { cause: e }
          )
        )
      )
      const response = yield* HttpClientRequest.post(options.url).pipe(
        HttpClientRequest.setHeaders({
          "DD-API-KEY": Redacted.value(key),
          "Content-Encoding": "gzip",
          Accept: "application/json"
        }),
        HttpClientRequest.bodyUint8Array(body, "application/json"),
        client.execute,
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(sinkError("Unavailable", `no answer within ${Duration.format(timeout)}`))
        }),
        Effect.catchTag("HttpClientError", (e) =>
          Effect.fail(sinkError("Unavailable", `no answer: ${e.message}`, { cause: e }))
        )
      )
      const status = response.status
      const text = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
      if (status >= 200 && status < 300) {
        let parsed: unknown
        try {
          parsed = JSON.parse(text)
        } catch {
          parsed = undefined
        }
        return { points, warnings: errorsOf(parsed) }
      }
      const reason = reasonOfStatus(status)
      if (reason === "AccessDenied") yield* keys.invalidate
      const retryAfterMillis = reason === "Throttled" ? retryAfterOf(response.headers) : undefined
      return yield* sinkError(reason, `${status}${text.length > 0 ? `: ${text.slice(0, 300)}` : ""}`, {
        status,
        ...(retryAfterMillis === undefined ? {} : { retryAfterMillis })
      })
    })

    return MetricsSink.MetricsSink.of({ name, limits, submit })
  })

export const layer = (
  options: Options
): Layer.Layer<MetricsSink.MetricsSink, never, HttpClient.HttpClient | DatadogApiKey.DatadogApiKey> =>
  Layer.effect(MetricsSink.MetricsSink, make(options))

const Site = Schema.String.check(
  Schema.isPattern(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, {
    message: "must be a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com"
  })
)

const TimeoutMillis = Schema.Int.check(
  Schema.isBetween(
    { minimum: 100, maximum: 60_000 },
    { message: "must be a whole number of milliseconds, 100–60000" }
  )
)

/** The endpoint, from `DD_METRICS_URL` or else `DD_SITE`. */
export const urlConfig: Config.Config<string> = Config.all([
  Config.option(ClientConfig.httpUrl("DD_METRICS_URL")),
  Config.schema(Site, "DD_SITE").pipe(Config.withDefault("datadoghq.com"))
]).pipe(Config.map(([url, site]) => Option.getOrElse(url, () => seriesUrl(site))))

/** From `Config` (see the module header). */
export const layerConfig: Layer.Layer<
  MetricsSink.MetricsSink,
  Config.ConfigError,
  HttpClient.HttpClient | DatadogApiKey.DatadogApiKey
> = Layer.effect(
  MetricsSink.MetricsSink,
  Effect.flatMap(
    Config.all({
      url: urlConfig,
      timeoutMillis: Config.schema(TimeoutMillis, "DD_TIMEOUT_MS").pipe(Config.withDefault(10_000))
    }),
    make
  )
)
