/**
 * How the forwarder and the retrier send series to the metrics sink — one mechanism for both:
 * packed into payloads within the sink's limits (`MetricsSink.chunkSeries`), each sent on
 * `Schedules.metricsSubmit` (429s and 5xx retried, a 429's reset honoured as a floor on the next
 * delay, a reset further than `Schedules.metricsRateLimitWaitCap` not waited for), a payload the
 * sink finds too large split in halves and sent again.
 *
 * Nothing is dropped: every payload ends delivered or in `undelivered`, with its reason and
 * whether to keep trying it (`park: false`: the intake was unavailable, throttling, or refused
 * the key) or to set it aside (`park: true`: refused for its content, or a single point too
 * large). Once a payload could not be delivered because the intake is unavailable, the payloads
 * after it are not tried in this call (they would spend the same retry budget for nothing): they
 * go to `undelivered` with the same reason.
 */
import { Cause, Duration, Effect, Exit, Metric, Option } from "effect"
import * as MetricsSink from "../MetricsSink.js"
import * as Schedules from "../Schedules.js"

export interface Undelivered {
  readonly series: ReadonlyArray<MetricsSink.Series>
  readonly reason: string
  /** Retrying cannot help: keep it aside rather than pending. */
  readonly park: boolean
}

export interface SendOutcome {
  /** Points the sink accepted. */
  readonly delivered: number
  /** Calls made to the sink, retries included. */
  readonly requests: number
  readonly warnings: ReadonlyArray<string>
  readonly undelivered: ReadonlyArray<Undelivered>
}

export const metricsSubmitRetries = Metric.counter("spillway_metrics_submit_retries", { incremental: true })
export const metricsPayloadsSplit = Metric.counter("spillway_metrics_payloads_split", { incremental: true })

const rateLimitCapMillis = Duration.toMillis(Schedules.metricsRateLimitWaitCap)

const describe = (error: MetricsSink.MetricsSinkError): string =>
  `${error.reason}${error.status === undefined ? "" : ` (${error.status})`}: ${error.message}`

/** Sends `series` (see the module header); never fails. */
export const sendSeries = (
  series: ReadonlyArray<MetricsSink.Series>
): Effect.Effect<SendOutcome, never, MetricsSink.MetricsSink> =>
  Effect.gen(function* () {
    const sink = yield* MetricsSink.MetricsSink
    const work = MetricsSink.chunkSeries(series, sink.limits)
    const undelivered: Array<Undelivered> = []
    const warnings: Array<string> = []
    let delivered = 0
    let requests = 0
    let down: string | undefined
    while (work.length > 0) {
      const payload = work.shift()!
      if (down !== undefined) {
        undelivered.push({ series: payload, reason: down, park: false })
        continue
      }
      let attempts = 0
      const exit = yield* Effect.exit(
        Effect.suspend(() => {
          attempts++
          requests++
          return sink.submit(payload)
        }).pipe(
          Effect.retry({
            schedule: Schedules.metricsSubmit,
            while: (e) => e.isRetryable && (e.retryAfterMillis ?? 0) <= rateLimitCapMillis
          })
        )
      )
      if (attempts > 1) yield* Metric.update(metricsSubmitRetries, attempts - 1)
      if (Exit.isSuccess(exit)) {
        delivered += exit.value.points
        warnings.push(...exit.value.warnings)
        continue
      }
      const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
      if (error === undefined) {
        down = "the metrics sink failed unexpectedly"
        undelivered.push({ series: payload, reason: down, park: false })
        continue
      }
      if (error.reason === "TooLarge") {
        const halves = MetricsSink.halve(payload)
        if (halves !== undefined) {
          yield* Metric.update(metricsPayloadsSplit, 1)
          work.unshift(...halves)
        } else undelivered.push({ series: payload, reason: describe(error), park: true })
      } else if (error.reason === "InvalidRequest") {
        undelivered.push({ series: payload, reason: describe(error), park: true })
      } else {
        down = describe(error)
        undelivered.push({ series: payload, reason: down, park: false })
      }
    }
    return { delivered, requests, warnings, undelivered }
  })
