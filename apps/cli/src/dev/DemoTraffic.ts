/**
 * The demo traffic of `spillway dev`: a well-behaved client posting telemetry to the collector
 * over HTTP, exactly as a device would.
 *
 * It sends at a steady `rate` (records/s), or, with no rate, as fast as the collector answers
 * (a few requests in parallel). It behaves as the contract asks a client to: records the
 * collector could not take (`unavailable`, 503, no answer) are sent again, so with `records` set
 * every one of them is eventually accepted. A small share of records is sent twice on purpose, as
 * a client retrying after a lost response would, to show the processor skipping duplicates.
 */
import { Clock, Duration, Effect, Random, Result, Schema } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"

export interface Config {
  /** The collector's telemetry endpoint. */
  readonly url: string
  readonly apiKey: string
  /** Records per second; absent: as fast as the collector answers. */
  readonly rate?: number | undefined
  /** Stop once this many distinct records were accepted; absent: until stopped. */
  readonly records?: number | undefined
  /** Share of records sent a second time. @default 0.01 */
  readonly duplicateRate?: number
}

export interface Stats {
  /** Distinct demo records sent. */
  readonly sent: number
  /** Extra copies sent on purpose. */
  readonly resent: number
  /** Records sent again because the collector could not take them. */
  readonly retried: number
  readonly requests: number
  /** Records refused by the collector (a demo record never should be). */
  readonly refused: number
}

export interface DemoTraffic {
  /** Sends until `records` are accepted, or until `stop`; never fails. */
  readonly run: Effect.Effect<void, never, HttpClient.HttpClient>
  /** Ends `run` after the requests in flight are answered. */
  readonly stop: Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

interface DemoRecord {
  readonly id: string
  readonly type: string
  readonly timestamp: string
  readonly payload: { readonly host: string; readonly value: number }
}

// Collector limit per request is 1,000 records; 500 keeps requests small and latency low.
const maxBatch = 500
const parallelRequests = 4
const tickMillis = 100

const types = ["cpu", "memory", "disk", "network"] as const

const Answer = Schema.Struct({
  unavailable: Schema.optional(Schema.Array(Schema.Struct({ index: Schema.Number })))
})
const decodeAnswer = Schema.decodeUnknownResult(Answer)

export const make = (config: Config): DemoTraffic => {
  const duplicateRate = config.duplicateRate ?? 0.01
  const target = config.records ?? Number.POSITIVE_INFINITY
  let next = 0
  let resent = 0
  let retried = 0
  let requests = 0
  let refused = 0
  let inFlight = 0
  let stopping = false
  let last: DemoRecord | undefined
  const retry: Array<DemoRecord> = []

  const finished = () => stopping || (next >= target && retry.length === 0 && inFlight === 0)

  const create = (n: number, now: number, value: number): DemoRecord => {
    return {
      id: `demo-${n}`,
      type: types[n % types.length] ?? "cpu",
      timestamp: new Date(now).toISOString(),
      payload: { host: `host-${n % 16}`, value: Math.round(value * 10_000) / 100 }
    }
  }

  /** Records to send now: those to send again first, then up to `allowance` new ones. */
  const takeBatch = (allowance: number) =>
    Effect.gen(function* () {
      const batch = retry.splice(0, maxBatch)
      const now = yield* Clock.currentTimeMillis
      const fresh = Math.max(0, Math.min(allowance, maxBatch - batch.length, target - next))
      // The numbers are taken before the first record is made, so that senders running at once
      // never make the same record or more than the allowance between them.
      const first = next
      next += fresh
      for (let i = 0; i < fresh; i++) {
        const record = create(first + i, now, yield* Random.next)
        batch.push(record)
        if (last !== undefined && batch.length < maxBatch && (yield* Random.next) < duplicateRate) {
          batch.push(last)
          resent++
        }
        last = record
      }
      return batch
    })

  const post = (client: HttpClient.HttpClient, batch: ReadonlyArray<DemoRecord>) =>
    Effect.gen(function* () {
      requests++
      const answer = yield* HttpClientRequest.post(config.url).pipe(
        HttpClientRequest.setHeader("x-api-key", config.apiKey),
        HttpClientRequest.bodyJsonUnsafe(batch),
        client.execute,
        Effect.flatMap((response) =>
          Effect.map(response.json, (body) => ({
            status: response.status,
            body,
            retryAfter: Number(response.headers["retry-after"] ?? 1)
          }))
        ),
        Effect.result
      )
      const again = (records: ReadonlyArray<DemoRecord>) => {
        retried += records.length
        retry.push(...records)
      }
      if (Result.isFailure(answer)) {
        again(batch)
        return Duration.seconds(1)
      }
      const { status, body, retryAfter } = answer.success
      if (status === 202) {
        const unavailable = Result.getOrUndefined(decodeAnswer(body))?.unavailable ?? []
        again(unavailable.flatMap((u) => batch[u.index] ?? []))
        return Duration.zero
      }
      if (status === 503) {
        again(batch)
        return Duration.seconds(Math.min(Number.isFinite(retryAfter) ? retryAfter : 1, 5))
      }
      refused += batch.length
      return Duration.zero
    })

  const worker = (client: HttpClient.HttpClient, startedAt: number) =>
    Effect.gen(function* () {
      while (!finished()) {
        const now = yield* Clock.currentTimeMillis
        // Paced: the records due since the start, so a slow answer is made up for by a larger batch.
        const allowance =
          config.rate === undefined ? maxBatch : Math.floor(((now - startedAt) / 1000) * config.rate) - next
        const batch = yield* takeBatch(Math.max(allowance, 0))
        if (batch.length === 0) {
          yield* Effect.sleep(Duration.millis(config.rate === undefined ? 20 : tickMillis))
          continue
        }
        inFlight++
        const pause = yield* post(client, batch).pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
        yield* Effect.sleep(Duration.max(pause, Duration.millis(config.rate === undefined ? 0 : tickMillis)))
      }
    })

  return {
    run: Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const startedAt = yield* Clock.currentTimeMillis
      // A few requests in flight, paced or not: the senders share one allowance (the records due
      // since the start), so the pace holds, and one slow answer does not cap it (one sender of
      // 500-record calls a tick apart could not pass about 4,000 records/s).
      yield* Effect.all(
        Array.from({ length: parallelRequests }, () => worker(client, startedAt)),
        { concurrency: "unbounded", discard: true }
      )
    }),
    stop: Effect.sync(() => {
      stopping = true
    }),
    stats: Effect.sync(() => ({ sent: next, resent, retried, requests, refused }))
  }
}
