/**
 * `spillway dev`: the whole pipeline on in-memory backends (or, with `backend: "emulators"`, on
 * the AWS layers against in-process Kinesis, SQS and S3 emulators and a real OpenSearch node:
 * `EmulatorPipeline`), in real time, behind the collector's real HTTP contract — the local
 * stand-in for the deployed system.
 *
 * Guarantees on the way out (Ctrl-C, SIGTERM, or the end of a `--records` run): the collector
 * stops taking requests first (requests in progress are answered), the demo generator stops, and
 * the pipeline drains before the summary is printed. A signal gives it `drainTimeout` at most; the
 * end of a `--records` run, which promises to wait until every record is indexed, waits as long
 * as the index keeps growing and gives up only after `drainTimeout` without progress (the demo
 * traffic can outrun the processor, so the backlog at the end is not bounded by a fixed time).
 * The summary's `lost` counts accepted ids that did not reach the index, looked up one by one in
 * the index itself (`IndexReader`: the memory index, or OpenSearch).
 *
 * On memory backends the collector's port also serves the read API (`ReadApi`, under `/local`):
 * what the records became in the index. It has no authentication, so it exists only here, in a
 * local run on memory backends.
 */
import { OpenSearchNode } from "@spillway/emulators"
import { MemoryPipeline } from "@spillway/memory"
import { Clock, Console, Duration, Effect, Exit, Fiber, type Layer, Result, Schema, Scope } from "effect"
import type { HttpClient, HttpServerError } from "effect/http"
import type { ChildProcessSpawner } from "effect/process"
import * as LocalCollector from "../collector/http.js"
import * as CollectorServer from "../collector/server.js"
import * as DemoTraffic from "./DemoTraffic.js"
import * as EmulatorPipeline from "./EmulatorPipeline.js"
import * as IndexReader from "./IndexReader.js"
import * as Ledger from "./Ledger.js"
import * as LiveView from "./LiveView.js"
import * as ReadApi from "./ReadApi.js"
import * as Summary from "./Summary.js"

/** `memory`: every AWS service in memory; `emulators`: the AWS layers against in-process kinesalite and fauxqs, and a real OpenSearch. */
export type Backend = "memory" | "emulators"

export interface Config {
  /** @default "memory" */
  readonly backend?: Backend
  /**
   * With `backend: "emulators"`: the OpenSearch to index into (an existing node's URL, else one is
   * started for the run) and the alias. @default a node started for the run, alias `spillway-dev`
   */
  readonly opensearch?: {
    readonly url?: string | undefined
    readonly alias?: string | undefined
  }
  /** 0 picks a free port. */
  readonly port: number
  /** @default "127.0.0.1" */
  readonly host?: string
  /** A key accepted in addition to the demo key (tenant "local"). */
  readonly apiKey?: string | undefined
  /** Run the demo traffic generator. */
  readonly demo: boolean
  /** Demo records per second; absent: 200, or as fast as accepted when `records` is set. */
  readonly rate?: number | undefined
  /** Stop after the demo generator had this many records accepted and they are indexed. */
  readonly records?: number | undefined
  /** The body's limit, raw and decompressed. @default 1 MiB */
  readonly maxBodyBytes?: number | undefined
  /** Origins browsers may post from. @default `LocalCollector.localOrigins` (pages on this machine) */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
  /** @default 30 seconds */
  readonly drainTimeout?: Duration.Input
  /** Shards of the stream (memory: the memory stream's, 1,000 records/s each; emulators: kinesalite's). @default 4 in memory, 2 on the emulators */
  readonly shards?: number | undefined
  /** Redraw the live view in place. */
  readonly tty: boolean
  /** Called with the summary, whether the run ended by itself or was interrupted. */
  readonly onSummary?: (summary: Summary.Summary) => Effect.Effect<void>
}

export const defaultRate = 200

/** The chosen backend could not be started (an emulator failed to listen or to create a resource). */
export class BackendError extends Schema.TaggedError<BackendError>()("BackendError", {
  message: Schema.String
}) {}

const demoKey = MemoryPipeline.defaultApiKeys[0]

export const run = (
  config: Config
): Effect.Effect<
  Summary.Summary,
  HttpServerError.ServeError | BackendError,
  HttpClient.HttpClient | ChildProcessSpawner.ChildProcessSpawner
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const keys = [
        ...MemoryPipeline.defaultApiKeys,
        ...(config.apiKey === undefined ? [] : [{ tenant: "local", key: config.apiKey }])
      ]
      const pipeline: Running =
        config.backend === "emulators"
          ? yield* emulatorPipeline(config, keys)
          : yield* memoryPipeline(keys, config.shards)
      const startedAt = yield* Clock.currentTimeMillis
      const ledger = Ledger.make()
      const serverScope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(serverScope, Exit.void))
      const listening = yield* CollectorServer.serve(
        {
          port: config.port,
          host: config.host ?? "127.0.0.1",
          // One local limit for the body raw and decompressed (`--max-body-bytes`).
          maxBodyBytes: config.maxBodyBytes ?? LocalCollector.defaultMaxBodyBytes,
          maxDecodedBytes: config.maxBodyBytes ?? LocalCollector.defaultMaxBodyBytes,
          allowedOrigins: config.allowedOrigins ?? LocalCollector.localOrigins,
          onCollected: ledger.collected,
          onResponse: ledger.record,
          localRoutes: pipeline.readApi
        },
        pipeline.layers.collector
      ).pipe(Scope.provide(serverScope))
      const endpoint = `${listening.url}${LocalCollector.telemetryPath}`
      const rate = config.rate ?? (config.records === undefined ? defaultRate : undefined)
      const readApi =
        pipeline.readApi === undefined ? undefined : `${listening.url}${ReadApi.searchPath}?limit=5`
      yield* Console.log(
        yield* banner(config, endpoint, readApi, rate, pipeline.opensearch, pipeline.emulators)
      )

      const traffic = config.demo
        ? DemoTraffic.make({ url: endpoint, apiKey: demoKey.key, rate, records: config.records })
        : undefined
      const trafficFiber = traffic === undefined ? undefined : yield* Effect.forkScoped(traffic.run)
      const viewFiber = yield* Effect.forkScoped(LiveView.run(pipeline, ledger, { tty: config.tty }))

      const drainTimeout = Duration.fromInputUnsafe(config.drainTimeout ?? "30 seconds")
      // Runs uninterruptibly when the run is interrupted: every wait in it is a polling loop with
      // its own deadline, since nothing inside can be interrupted to enforce one.
      const drain = Effect.fnUntraced(function* (wait: "bounded" | "while indexing") {
        yield* Console.log(
          wait === "bounded"
            ? `\nstopping: collector closed, waiting up to ${Duration.toSeconds(drainTimeout)} s for records in flight to be indexed (Ctrl-C again quits at once)`
            : `\nstopping: collector closed, waiting for the records in flight to be indexed (giving up after ${Duration.toSeconds(drainTimeout)} s without progress; Ctrl-C quits at once)`
        )
        if (traffic !== undefined && trafficFiber !== undefined) {
          yield* traffic.stop
          yield* awaitFiber(trafficFiber, Duration.seconds(5))
          yield* Fiber.interrupt(trafficFiber)
        }
        yield* Scope.close(serverScope, Exit.void)
        const drained = yield* waitUntilIdle(pipeline, drainTimeout, wait === "while indexing")
        // Firehose would deliver its buffer when the interval elapses; a stopping run delivers it now.
        const flushed = yield* Effect.interruptible(pipeline.backup.flush).pipe(
          Effect.timeout(backupFlushTimeout),
          Effect.result
        )
        if (Result.isFailure(flushed)) {
          yield* Console.log(`backup: the last buffer was not delivered: ${flushed.failure.message}`)
        }
        yield* Fiber.interrupt(viewFiber)
        const summary = yield* Summary.compute(
          pipeline,
          ledger,
          traffic === undefined ? undefined : yield* traffic.stats,
          drained,
          { from: startedAt, to: yield* Clock.currentTimeMillis }
        )
        yield* Console.log(Summary.format(summary))
        if (config.onSummary !== undefined) yield* config.onSummary(summary)
        return summary
      })

      const finished =
        config.records !== undefined && trafficFiber !== undefined ? Fiber.join(trafficFiber) : Effect.never
      yield* finished.pipe(Effect.onInterrupt(() => Effect.asVoid(drain("bounded"))))
      return yield* Effect.uninterruptible(drain("while indexing"))
    })
  )

/** What `run` needs of a pipeline, whichever its backend: the collector's services, the figures, idleness. */
type Running = Summary.Observed & {
  /** The collector function's layer over this backend (the key store, the stream, the fallback queue). */
  readonly layers: { readonly collector: Layer.Layer<CollectorServer.Services> }
  readonly isIdle: Effect.Effect<boolean>
  /** Served on the collector's port on memory backends only: it answers without a key. */
  readonly readApi?: ReadApi.ReadApi
  /** The OpenSearch the emulators backend indexes into. */
  readonly opensearch?: EmulatorPipeline.OpenSearch
  /** The emulators backend's servers, which the recovery commands can be pointed at. */
  readonly emulators?: {
    readonly kinesisEndpoint: string
    readonly sqsEndpoint: string
    readonly s3Endpoint: string
  }
}

/** A search over the alias, ready to paste. */
const searchExample = (opensearch: Pick<EmulatorPipeline.OpenSearch, "url" | "alias">): string =>
  `curl -s '${opensearch.url}/${opensearch.alias}/_search?q=type:cpu&size=5&pretty'`

const banner = (
  config: Config,
  endpoint: string,
  readApi: string | undefined,
  rate: number | undefined,
  opensearch: EmulatorPipeline.OpenSearch | undefined,
  emulators: Running["emulators"]
) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const example = JSON.stringify([
      { id: "hello-1", type: "cpu", timestamp: new Date(now).toISOString(), payload: { value: 42 } }
    ])
    const traffic = !config.demo
      ? "off (--no-demo): only what you post"
      : `${rate === undefined ? "as fast as the collector accepts" : `${rate} records/s`}${
          config.records === undefined ? "" : `, ${config.records} records, then a summary`
        }`
    return [
      config.backend === "emulators"
        ? `spillway dev: the pipeline on the AWS layers against in-process kinesalite (Kinesis) and fauxqs (SQS, S3 backup), indexing into OpenSearch ${opensearch?.version ?? ""}; Lambda mappings and Firehose emulated; in real time`
        : "spillway dev: the pipeline in memory (Kinesis, SQS, Lambda mappings, OpenSearch), in real time",
      `collector listening on ${endpoint}`,
      ...(readApi === undefined
        ? []
        : [`read API  ${readApi} (local only, no key; ${ReadApi.documentsPath}/{id} for one document)`]),
      ...(opensearch === undefined
        ? []
        : [
            `opensearch ${opensearch.url} (${opensearch.started ? "started for this run, stopped at exit" : "given by --opensearch-url"}), alias ${opensearch.alias} over daily indices ${opensearch.alias}-yyyy.MM.dd`,
            `search    ${searchExample(opensearch)}`
          ]),
      ...(emulators === undefined || opensearch === undefined
        ? []
        : [
            // dev's names are the emulators backend's defaults: the endpoints are all a recovery command needs.
            `recovery  spillway reprocess-failures|replay|restore --backend emulators --kinesis-endpoint ${emulators.kinesisEndpoint} --sqs-endpoint ${emulators.sqsEndpoint} --s3-endpoint ${emulators.s3Endpoint} --opensearch-endpoint ${opensearch.url}${
              opensearch.alias === EmulatorPipeline.defaultAlias
                ? ""
                : ` --opensearch-index ${opensearch.alias}`
            }`
          ]),
      `api key   ${demoKey.key} (tenant ${demoKey.tenant})${config.apiKey === undefined ? "" : ", and your key (tenant local)"}`,
      `demo      ${traffic}`,
      "try:",
      `  curl -i ${endpoint} -H 'content-type: application/json' -H 'x-api-key: ${demoKey.key}' -d '${example}'`,
      "Ctrl-C stops: the pipeline drains and prints a summary.",
      ""
    ].join("\n")
  })

const pollEvery = Duration.millis(100)
const backupFlushTimeout = Duration.seconds(10)

/** The memory backend: `MemoryPipeline` with the recommended mapping and its backup. */
const memoryPipeline = (
  keys: ReadonlyArray<{ readonly tenant: string; readonly key: string }>,
  shards: number | undefined
) =>
  Effect.gen(function* () {
    // The mapping and buffering are the defaults, always valid, and `shards` was checked by the
    // command: a config error here is a bug, not an input error.
    const pipeline = yield* Effect.orDie(
      MemoryPipeline.make({
        apiKeys: keys,
        ...(shards === undefined ? {} : { stream: { shardCount: shards } })
      })
    )
    const backup =
      pipeline.backup ?? (yield* Effect.die(new Error("the local pipeline was made without its backup")))
    return {
      ...pipeline,
      backup,
      indexed: IndexReader.fromMemory(pipeline.index),
      readApi: ReadApi.make(pipeline.index)
    } satisfies Running
  })

/** The emulators backend, telling first what takes time: a first start fetches OpenSearch. */
const emulatorPipeline = (
  config: Config,
  keys: ReadonlyArray<{ readonly tenant: string; readonly key: string }>
) =>
  Effect.gen(function* () {
    const url = config.opensearch?.url
    yield* Console.log(
      url === undefined
        ? `starting OpenSearch … (the first start fetches it through Maven, about 55 MB, into ${OpenSearchNode.cacheDir()}; later starts take seconds)`
        : `using OpenSearch at ${url}`
    )
    const pipeline = yield* EmulatorPipeline.make({
      apiKeys: keys,
      opensearch: { url, alias: config.opensearch?.alias },
      ...(config.shards === undefined ? {} : { emulators: { shardCount: config.shards } })
    }).pipe(Effect.mapError((e) => new BackendError({ message: `cannot start the emulators: ${e.message}` })))
    return {
      ...pipeline,
      emulators: {
        kinesisEndpoint: pipeline.emulators.kinesisEndpoint,
        sqsEndpoint: pipeline.emulators.sqsEndpoint,
        s3Endpoint: pipeline.emulators.s3.endpoint
      }
    }
  })

/** Waits for the fiber to end, at most `limit`. */
const awaitFiber = <A, E>(fiber: Fiber.Fiber<A, E>, limit: Duration.Duration) =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(limit)
    while (fiber.pollUnsafe() === undefined && (yield* Clock.currentTimeMillis) < deadline) {
      yield* Effect.sleep(pollEvery)
    }
  })

/**
 * Whether the pipeline was seen idle twice in a row (nothing in flight anywhere) before `limit`
 * ran out; with `whileIndexing`, the limit counts from the last time the index grew.
 */
const waitUntilIdle = (
  pipeline: Pick<Running, "isIdle" | "indexed">,
  limit: Duration.Duration,
  whileIndexing: boolean
) =>
  Effect.gen(function* () {
    let lastIndexed = 0
    // An unanswered count is no progress: the deadline stays.
    const indexed = pipeline.indexed.count.pipe(Effect.orElseSucceed(() => lastIndexed))
    let deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(limit)
    lastIndexed = yield* indexed
    let idleInARow = 0
    while (idleInARow < 2) {
      const now = yield* Clock.currentTimeMillis
      if (whileIndexing) {
        const count = yield* indexed
        if (count > lastIndexed) deadline = now + Duration.toMillis(limit)
        lastIndexed = count
      }
      if (now >= deadline) return false
      yield* Effect.sleep(pollEvery)
      idleInARow = (yield* pipeline.isIdle) ? idleInARow + 1 : 0
    }
    return true
  })
