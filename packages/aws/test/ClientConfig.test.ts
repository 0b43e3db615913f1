/**
 * Client configuration: variables read through `Config` fail at start naming the variable; the SDK
 * itself honours `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL` when no endpoint is passed; and
 * the retry split of `ClientConfig` holds on the wire — connection-level faults are retried by the
 * SDK, answered failures (throttling, 5xx) are not, so the stage schedules own them.
 */
import { ListStreamsCommand } from "@aws-sdk/client-kinesis"
import { ListQueuesCommand } from "@aws-sdk/client-sqs"
import { describe, expect, it } from "@effect/vitest"
import { RecordStream } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { type Config, ConfigProvider, Effect, Layer, Option, Result } from "effect"
import * as ClientConfig from "../src/ClientConfig.js"
import * as KinesisClient from "../src/KinesisClient.js"
import * as KinesisRecordStream from "../src/KinesisRecordStream.js"
import * as SqsClient from "../src/SqsClient.js"
import { KinesisHarness, kinesisLayer } from "./support/harness.js"
import { serversForFile } from "./support/servers.js"

const { credentials, region } = Emulators
const servers = serversForFile("kinesalite", "fauxqs")

const fromEnv = (env: Record<string, string>) => ConfigProvider.fromEnv({ env })

const read = <A>(config: Config.Config<A>, env: Record<string, string>) => config.parse(fromEnv(env))

/** Runs `body` with `process.env` changed, restoring it afterwards whatever happens. */
const withProcessEnv = <A, E, R>(env: Record<string, string>, body: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
      Object.assign(process.env, env)
      return saved
    }),
    () => body,
    (saved) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

describe("ClientConfig from Config", () => {
  it.effect("reads the region from AWS_REGION, else AWS_DEFAULT_REGION, and names both when missing", () =>
    Effect.gen(function* () {
      expect(yield* read(ClientConfig.region, { AWS_REGION: "eu-west-1" })).toBe("eu-west-1")
      expect(yield* read(ClientConfig.region, { AWS_DEFAULT_REGION: "ap-south-2" })).toBe("ap-south-2")
      const missing = String(yield* Effect.flip(read(ClientConfig.region, {})))
      expect(missing).toContain("AWS_REGION")
      expect(missing).toContain("AWS_DEFAULT_REGION")
      expect(String(yield* Effect.flip(read(ClientConfig.region, { AWS_REGION: "Ireland" })))).toContain(
        "must be an AWS region"
      )
    })
  )

  it.effect("takes the service endpoint over the global one, unless configured endpoints are ignored", () =>
    Effect.gen(function* () {
      const endpoint = ClientConfig.endpoint("KINESIS")
      expect(yield* read(endpoint, {})).toEqual(Option.none())
      expect(yield* read(endpoint, { AWS_ENDPOINT_URL: "http://global:1" })).toEqual(
        Option.some("http://global:1")
      )
      expect(
        yield* read(endpoint, {
          AWS_ENDPOINT_URL: "http://global:1",
          AWS_ENDPOINT_URL_KINESIS: "http://kinesis:2"
        })
      ).toEqual(Option.some("http://kinesis:2"))
      expect(
        yield* read(endpoint, {
          AWS_ENDPOINT_URL_KINESIS: "http://kinesis:2",
          AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true"
        })
      ).toEqual(Option.none())
      // Another service's variable does not apply.
      expect(
        yield* read(ClientConfig.endpoint("SQS"), { AWS_ENDPOINT_URL_KINESIS: "http://kinesis:2" })
      ).toEqual(Option.none())
    })
  )

  it.effect("fails naming the variable when an endpoint is not an http(s) URL", () =>
    Effect.gen(function* () {
      const error = String(
        yield* Effect.flip(
          read(ClientConfig.clientOptions("SQS"), {
            AWS_REGION: "us-east-1",
            AWS_ENDPOINT_URL_SQS: "localhost:4566"
          })
        )
      )
      expect(error).toContain("AWS_ENDPOINT_URL_SQS")
      expect(error).toContain("http")
    })
  )

  it.live("a client layer built from Config fails at start when the region is missing", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(
          KinesisClient.KinesisClient,
          KinesisClient.layerConfig({ credentials }).pipe(Layer.provide(ConfigProvider.layer(fromEnv({}))))
        )
      )
      expect(String(error)).toContain("AWS_REGION")
    })
  )

  it.live("a client layer built from Config talks to the configured endpoint", () =>
    Effect.gen(function* () {
      const client = yield* KinesisClient.KinesisClient
      const streams = yield* Effect.promise(() => client.send(new ListStreamsCommand({})))
      expect(streams.$metadata.httpStatusCode).toBe(200)
    }).pipe(
      Effect.provide(
        KinesisClient.layerConfig({ credentials }).pipe(
          Layer.provide(
            ConfigProvider.layer(
              fromEnv({ AWS_REGION: region, AWS_ENDPOINT_URL_KINESIS: servers.kinesalite.endpoint })
            )
          )
        )
      )
    )
  )
})

describe("the SDK's own endpoint resolution (no endpoint passed)", () => {
  it.live("honours AWS_ENDPOINT_URL_KINESIS", () =>
    withProcessEnv(
      { AWS_ENDPOINT_URL_KINESIS: servers.kinesalite.endpoint, AWS_ENDPOINT_URL: "http://127.0.0.1:9" },
      Effect.gen(function* () {
        const client = yield* KinesisClient.KinesisClient
        const streams = yield* Effect.promise(() => client.send(new ListStreamsCommand({})))
        expect(streams.$metadata.httpStatusCode).toBe(200)
      }).pipe(Effect.provide(KinesisClient.layer({ region, credentials, maxAttempts: 1 })))
    )
  )

  it.live("honours AWS_ENDPOINT_URL for SQS", () =>
    withProcessEnv(
      { AWS_ENDPOINT_URL: servers.fauxqs.endpoint },
      Effect.gen(function* () {
        yield* servers.fauxqs.createQueue("endpoint-from-env")
        const client = yield* SqsClient.SqsClient
        const queues = yield* Effect.promise(() => client.send(new ListQueuesCommand({})))
        expect(queues.QueueUrls?.some((url) => url.endsWith("/endpoint-from-env"))).toBe(true)
      }).pipe(Effect.provide(SqsClient.layer({ region, credentials, maxAttempts: 1 })))
    )
  )
})

describe("retries: the SDK retries connection-level faults only", () => {
  const putOne = Effect.gen(function* () {
    const stream = yield* RecordStream.RecordStream
    return yield* Effect.result(stream.putRecords([{ partitionKey: "k", data: new Uint8Array([1]) }]))
  })

  /** The stream of a fresh harness, reached through a second proxy that can drop connections. */
  const throughDroppingProxy = (
    drop: (attempt: number) => "reset" | "503" | "throttle" | "pass",
    maxAttempts: number
  ) =>
    Effect.gen(function* () {
      const harness = yield* KinesisHarness
      const proxy = yield* FaultProxy.scoped(harness.proxy.endpoint)
      let attempt = 0
      proxy.setInterceptor((request) => {
        if (request.operation !== "PutRecords") return FaultProxy.forward
        switch (drop(++attempt)) {
          case "reset":
            return { _tag: "Reset" }
          case "503":
            return { _tag: "Respond", status: 503, body: { __type: "ServiceUnavailable", message: "down" } }
          case "throttle":
            return {
              _tag: "Respond",
              status: 400,
              body: { __type: "ProvisionedThroughputExceededException", message: "Rate exceeded" }
            }
          case "pass":
            return FaultProxy.forward
        }
      })
      const client = yield* KinesisClient.make({ region, endpoint: proxy.endpoint, credentials, maxAttempts })
      const stream = yield* KinesisRecordStream.make({
        streamName: harness.streamName,
        streamArn: harness.streamArn
      }).pipe(Effect.provideService(KinesisClient.KinesisClient, client))
      const result = yield* putOne.pipe(Effect.provideService(RecordStream.RecordStream, stream))
      return { result, attempts: proxy.requests("PutRecords") }
    })

  it.live("a reset connection is retried and the call succeeds", () =>
    Effect.gen(function* () {
      const { result, attempts } = yield* throughDroppingProxy((n) => (n === 1 ? "reset" : "pass"), 3)
      expect(attempts).toBe(2)
      expect(Result.isSuccess(result) && result.success[0]?._tag).toBe("Stored")
    }).pipe(Effect.scoped, Effect.provide(kinesisLayer(servers.kinesalite.endpoint)))
  )

  it.live("connection faults stop after maxAttempts and surface as Unavailable", () =>
    Effect.gen(function* () {
      const { result, attempts } = yield* throughDroppingProxy(() => "reset", 2)
      expect(attempts).toBe(2)
      expect(Result.isFailure(result) && result.failure.reason).toBe("Unavailable")
    }).pipe(Effect.scoped, Effect.provide(kinesisLayer(servers.kinesalite.endpoint)))
  )

  it.live("a 503 is not retried by the SDK: one attempt, Unavailable for the stage schedule", () =>
    Effect.gen(function* () {
      const { result, attempts } = yield* throughDroppingProxy(() => "503", 3)
      expect(attempts).toBe(1)
      expect(Result.isFailure(result) && result.failure.reason).toBe("Unavailable")
    }).pipe(Effect.scoped, Effect.provide(kinesisLayer(servers.kinesalite.endpoint)))
  )

  it.live("throttling is not retried by the SDK: one attempt, Throttled for the stage schedule", () =>
    Effect.gen(function* () {
      const { result, attempts } = yield* throughDroppingProxy(() => "throttle", 3)
      expect(attempts).toBe(1)
      expect(Result.isFailure(result) && result.failure.reason).toBe("Throttled")
    }).pipe(Effect.scoped, Effect.provide(kinesisLayer(servers.kinesalite.endpoint)))
  )
})
