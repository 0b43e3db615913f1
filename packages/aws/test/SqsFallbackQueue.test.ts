/**
 * `SqsFallbackQueue` and `SqsFailureDestination` against fauxqs (through the fault proxy): the
 * shared conformance suite, then what only the SQS backends do — splitting over-limit sends,
 * answering a later batch's whole-call failure per entry, mapping SQS error names, deriving the
 * queue ARN, sending on-failure records, and reading their queue from `Config`.
 */
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { describe, expect, it } from "@effect/vitest"
import { FailureDestination, FallbackQueue, OnFailure } from "@spillway/core"
import { Emulators } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import * as SqsClient from "../src/SqsClient.js"
import * as SqsFailureDestination from "../src/SqsFailureDestination.js"
import * as SqsFallbackQueue from "../src/SqsFallbackQueue.js"
import { SqsHarness, sqsLayer } from "./support/harness.js"
import { serversForFile } from "./support/servers.js"

const { credentials, region } = Emulators
const servers = serversForFile("fauxqs")

Conformance.fallbackQueueSuite({
  name: "SQS on fauxqs",
  clock: "live",
  layer: (queue) => sqsLayer(servers.fauxqs, queue),
  faults: Conformance.QueueFaults,
  timeout: 30_000
})

const messages = (n: number, prefix = "m") =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, body: `${prefix} body ${i}` }))

describe("SqsFallbackQueue on fauxqs", () => {
  it.live("splits a send over 10 messages into batches and answers every message in order", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const harness = yield* SqsHarness
      const outcomes = yield* queue.send(messages(23))
      expect(outcomes.map((o) => o._tag)).toEqual(Array.from({ length: 23 }, () => "Sent"))
      expect(harness.proxy.requests("SendMessageBatch")).toBe(3)
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )

  it.live("splits by bytes too: no batch over the batch limit", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const harness = yield* SqsHarness
      const big = Array.from({ length: 4 }, (_, i) => ({ id: `b${i}`, body: "z".repeat(400 * 1024) }))
      const outcomes = yield* queue.send(big)
      expect(outcomes.map((o) => o._tag)).toEqual(["Sent", "Sent", "Sent", "Sent"])
      // 1 MiB per batch: two messages of 400 KiB fit, a third does not.
      expect(harness.proxy.requests("SendMessageBatch")).toBe(2)
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )

  it.live(
    "when a later batch fails whole, answers its messages Failed (retryable) and keeps the sent answers",
    () =>
      Effect.gen(function* () {
        const queue = yield* FallbackQueue.FallbackQueue
        const harness = yield* SqsHarness
        let calls = 0
        harness.proxy.setInterceptor((request) =>
          request.operation === "SendMessageBatch" && ++calls === 2
            ? {
                _tag: "Respond",
                status: 500,
                body: {
                  __type: "com.amazonaws.sqs#InternalError",
                  message: "We encountered an internal error."
                },
                headers: { "x-amzn-query-error": "InternalError;Receiver" }
              }
            : { _tag: "Forward" }
        )
        const outcomes = yield* queue.send(messages(15))
        expect(outcomes.slice(0, 10).every((o) => o._tag === "Sent")).toBe(true)
        expect(
          outcomes.slice(10).map((o) => (o._tag === "Failed" ? `${o.code}/${o.senderFault}` : o._tag))
        ).toEqual(Array.from({ length: 5 }, () => "Unavailable/false"))
        // Only the second call failed: the next one goes through.
        expect((yield* queue.send(messages(3, "next"))).map((o) => o._tag)).toEqual(["Sent", "Sent", "Sent"])
      }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )

  it.live("maps a missing queue to NotFound", () =>
    Effect.gen(function* () {
      const harness = yield* SqsHarness
      const queue = yield* SqsFallbackQueue.make({ queueUrl: `${harness.queueUrl}-missing` })
      const error = yield* Effect.flip(queue.send(messages(1)))
      expect(error.reason).toBe("NotFound")
      expect(error.message).toContain("QueueDoesNotExist")
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )
})

describe("SqsFallbackQueue.reasonOf", () => {
  const reason = (name: string, status: number | undefined) =>
    SqsFallbackQueue.reasonOf({ name, status, message: "" })

  it("maps the SQS error names and statuses of docs/aws-behaviour.md §4", () => {
    expect(reason("RequestThrottled", 400)).toBe("Throttled")
    expect(reason("ThrottlingException", 400)).toBe("Throttled")
    expect(reason("OverLimit", 403)).toBe("Throttled")
    expect(reason("KmsThrottled", 400)).toBe("Throttled")
    expect(reason("Unknown", 429)).toBe("Throttled")
    expect(reason("QueueDoesNotExist", 400)).toBe("NotFound")
    expect(reason("AWS.SimpleQueueService.NonExistentQueue", 400)).toBe("NotFound")
    expect(reason("KmsAccessDenied", 400)).toBe("AccessDenied")
    expect(reason("KmsDisabled", 400)).toBe("AccessDenied")
    expect(reason("AccessDeniedException", 400)).toBe("AccessDenied")
    expect(reason("InvalidSecurity", 403)).toBe("AccessDenied")
    expect(reason("InternalError", 500)).toBe("Unavailable")
    expect(reason("ServiceUnavailable", 503)).toBe("Unavailable")
    expect(reason("TimeoutError", undefined)).toBe("Unavailable")
    expect(reason("BatchEntryIdsNotDistinct", 400)).toBe("InvalidRequest")
    expect(reason("TooManyEntriesInBatchRequest", 400)).toBe("InvalidRequest")
    expect(reason("ReceiptHandleIsInvalid", 400)).toBe("InvalidRequest")
  })
})

describe("SqsFallbackQueue queue URLs and ARNs", () => {
  it("parses AWS and emulator queue URLs and refuses others", () => {
    expect(
      SqsFallbackQueue.parseQueueUrl("https://sqs.eu-west-1.amazonaws.com/123456789012/fallback")
    ).toEqual({
      account: "123456789012",
      name: "fallback",
      region: "eu-west-1"
    })
    expect(
      SqsFallbackQueue.parseQueueUrl("https://eu-west-1.queue.amazonaws.com/123456789012/fallback")?.region
    ).toBe("eu-west-1")
    expect(SqsFallbackQueue.parseQueueUrl("http://127.0.0.1:4566/000000000000/q1")?.region).toBeUndefined()
    expect(SqsFallbackQueue.parseQueueUrl("https://sqs.eu-west-1.amazonaws.com/fallback")).toBeUndefined()
    expect(SqsFallbackQueue.parseQueueUrl("not a url")).toBeUndefined()
  })

  it.live("derives the ARN from the URL's region, else from the client's", () =>
    Effect.gen(function* () {
      expect(
        yield* SqsFallbackQueue.queueArnOf("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
      ).toBe("arn:aws-cn:sqs:cn-north-1:123456789012:q")
      expect(yield* SqsFallbackQueue.queueArnOf("http://127.0.0.1:9/000000000000/q")).toBe(
        "arn:aws:sqs:us-east-1:000000000000:q"
      )
    }).pipe(Effect.provide(SqsClient.layer({ region, credentials })))
  )
})

describe("SqsFallbackQueue.layerConfig", () => {
  const provider = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

  it.live("reads FALLBACK_QUEUE_URL, and fails at start naming a missing or malformed variable", () =>
    Effect.gen(function* () {
      const harness = yield* SqsHarness
      const layer = (env: Record<string, string>) =>
        SqsFallbackQueue.layerConfig().pipe(
          Layer.provide(Layer.succeed(SqsClient.SqsClient, harness.client)),
          Layer.provide(provider(env))
        )
      const queue = yield* Effect.provide(
        FallbackQueue.FallbackQueue,
        layer({ FALLBACK_QUEUE_URL: harness.queueUrl })
      )
      expect((yield* queue.send(messages(1)))[0]?._tag).toBe("Sent")

      expect(String(yield* Effect.flip(Effect.provide(FallbackQueue.FallbackQueue, layer({}))))).toContain(
        "FALLBACK_QUEUE_URL"
      )
      expect(
        String(
          yield* Effect.flip(
            Effect.provide(FallbackQueue.FallbackQueue, layer({ FALLBACK_QUEUE_URL: "sqs://nowhere/queue" }))
          )
        )
      ).toContain("FALLBACK_QUEUE_URL")
      expect(
        String(
          yield* Effect.flip(
            Effect.provide(
              FallbackQueue.FallbackQueue,
              layer({ FALLBACK_QUEUE_URL: harness.queueUrl, FALLBACK_QUEUE_MAX_MESSAGE_BYTES: "12" })
            )
          )
        )
      ).toContain("FALLBACK_QUEUE_MAX_MESSAGE_BYTES")
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )
})

const onFailureRecord = Schema.decodeUnknownSync(OnFailure.OnFailureRecord)({
  requestContext: {
    requestId: "c9b8fa9f-5a7f-4e7d-8f3a-0f7a5d1c2e11",
    functionArn: "arn:aws:lambda:us-east-2:123456789012:function:processor",
    condition: "RetryAttemptsExhausted",
    approximateInvokeCount: 3
  },
  responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
  version: "1.0",
  timestamp: "2026-11-24T00:38:06.021Z",
  KinesisBatchInfo: {
    shardId: "shardId-000000000001",
    startSequenceNumber: "49601189658422359378836298521827638475320189012309704722",
    endSequenceNumber: "49601189658422359378836298522902373528957594348623495186",
    approximateArrivalOfFirstRecord: "2026-11-24T00:38:04.835Z",
    approximateArrivalOfLastRecord: "2026-11-24T00:38:05.580Z",
    batchSize: 500,
    streamArn: "arn:aws:kinesis:us-east-2:123456789012:stream/telemetry"
  }
})

describe("SqsFailureDestination on fauxqs", () => {
  it.live("sends the on-failure record as the JSON the event source mapping writes", () =>
    Effect.gen(function* () {
      const harness = yield* SqsHarness
      const destination = yield* FailureDestination.FailureDestination
      yield* destination.send(onFailureRecord)
      const received = yield* Effect.promise(() =>
        harness.client.send(
          new ReceiveMessageCommand({ QueueUrl: harness.queueUrl, MaxNumberOfMessages: 10 })
        )
      )
      expect(received.Messages).toHaveLength(1)
      const body = received.Messages?.[0]?.Body ?? ""
      expect(Schema.decodeUnknownSync(OnFailure.OnFailureRecordJson)(body)).toEqual(onFailureRecord)
      // Field names exactly as AWS writes them, capitals included.
      expect(JSON.parse(body)).toHaveProperty("KinesisBatchInfo.startSequenceNumber")
    }).pipe(
      Effect.provide(
        Layer.unwrap(
          Effect.map(SqsHarness, (harness) => SqsFailureDestination.layer({ queueUrl: harness.queueUrl }))
        ).pipe(Layer.provideMerge(sqsLayer(servers.fauxqs)))
      )
    )
  )

  it.live("fails Unavailable (retryable) during an outage and InvalidRequest for a missing queue", () =>
    Effect.gen(function* () {
      const harness = yield* SqsHarness
      const client = yield* SqsClient.SqsClient
      const destination = yield* SqsFailureDestination.make({ queueUrl: harness.queueUrl }).pipe(
        Effect.provideService(SqsClient.SqsClient, client)
      )
      harness.state.outage = true
      const outage = yield* Effect.flip(destination.send(onFailureRecord))
      expect(outage.reason).toBe("Unavailable")
      expect(outage.isRetryable).toBe(true)
      harness.state.outage = false

      const missing = yield* SqsFailureDestination.make({ queueUrl: `${harness.queueUrl}-gone` }).pipe(
        Effect.provideService(SqsClient.SqsClient, client)
      )
      const error = yield* Effect.flip(missing.send(onFailureRecord))
      expect(error.reason).toBe("InvalidRequest")
      expect(error.isRetryable).toBe(false)
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )

  it.live("reads FAILURE_QUEUE_URL from Config and fails at start naming it when malformed", () =>
    Effect.gen(function* () {
      const harness = yield* SqsHarness
      const layer = (env: Record<string, string>) =>
        SqsFailureDestination.layerConfig.pipe(
          Layer.provide(Layer.succeed(SqsClient.SqsClient, harness.client)),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
        )
      const destination = yield* Effect.provide(
        FailureDestination.FailureDestination,
        layer({ FAILURE_QUEUE_URL: harness.queueUrl })
      )
      yield* destination.send(onFailureRecord)
      const error = yield* Effect.flip(
        Effect.provide(FailureDestination.FailureDestination, layer({ FAILURE_QUEUE_URL: "queue" }))
      )
      expect(String(error)).toContain("FAILURE_QUEUE_URL")
    }).pipe(Effect.provide(sqsLayer(servers.fauxqs)))
  )
})
