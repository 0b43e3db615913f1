/**
 * `FallbackQueue` on an SQS standard queue (docs/aws-behaviour.md §4), through the SDK v3 client.
 *
 * Guarantees:
 * - `send` uses SendMessageBatch (with each message's `DelaySeconds`) and answers once per
 *   message in request order, from the
 *   response's `Successful` and `Failed` lists matched by entry id (`SenderFault` kept, so the
 *   caller retries only what the service, not the message, is at fault for). A call over the batch
 *   limits (10 entries, the batch byte limit) is split and sent batch after batch; if a later batch
 *   fails as a whole, its messages and the following ones are answered `Failed` — never the earlier,
 *   sent ones, which a caller would otherwise send twice.
 * - `receive` asks for `ApproximateReceiveCount` and `SentTimestamp`, so redelivery after the
 *   visibility timeout is visible to the caller; `delete` and `changeVisibility` take the receipt
 *   handle of the latest receive, as SQS requires.
 * - whole-call errors become `FallbackQueueError` reasons: throttling and `OverLimit` →
 *   `Throttled`; 5xx, network and timeouts → `Unavailable`; unknown queue → `NotFound`;
 *   credentials and KMS key problems → `AccessDenied`; anything else the caller sent → `InvalidRequest`.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand
} from "@aws-sdk/client-sqs"
import { Batching, FallbackQueue } from "@spillway/core"
import { Config, Effect, Layer, Result, Schema } from "effect"
import * as ClientConfig from "./ClientConfig.js"
import * as AwsErrors from "./internal/awsErrors.js"
import { SqsClient } from "./SqsClient.js"

export interface Options {
  readonly queueUrl: string
  /** @default derived from the queue URL and the client's region */
  readonly queueArn?: string
  /** @default FallbackQueue.defaultLimits */
  readonly limits?: FallbackQueue.Limits
  /** Long poll of `receive`, 0–20 s (0 answers at once, possibly empty). @default 0 */
  readonly waitTimeSeconds?: number
}

const throttlingNames: ReadonlySet<string> = new Set([
  "RequestThrottled",
  "ThrottlingException",
  "Throttling",
  // Too many messages in flight (≈120,000): draining the queue is what lets the next call through.
  "OverLimit",
  "KmsThrottled",
  "KmsThrottledException"
])

const notFoundNames: ReadonlySet<string> = new Set([
  "QueueDoesNotExist",
  "AWS.SimpleQueueService.NonExistentQueue",
  "QueueDeletedRecently"
])

/** The reason for a whole-call failure of an SQS operation. */
export const reasonOf = (failure: AwsErrors.AwsFailure): FallbackQueue.ErrorReason => {
  if (throttlingNames.has(failure.name) || failure.status === 429) return "Throttled"
  if (notFoundNames.has(failure.name)) return "NotFound"
  if (/^Kms/i.test(failure.name) || AwsErrors.authErrorNames.has(failure.name)) return "AccessDenied"
  if (failure.status === undefined || failure.status >= 500) return "Unavailable"
  return "InvalidRequest"
}

const queueError = (reason: FallbackQueue.ErrorReason, message: string, cause?: unknown) =>
  new FallbackQueue.FallbackQueueError({ reason, message, ...(cause === undefined ? {} : { cause }) })

export const fromSdk =
  (operation: string) =>
  (error: unknown): FallbackQueue.FallbackQueueError => {
    const failure = AwsErrors.inspect(error)
    return queueError(reasonOf(failure), `${operation}: ${AwsErrors.describe(failure)}`, error)
  }

/** `https://sqs.<region>.amazonaws.com/<account>/<name>` (or any host, as emulators serve it). */
export const parseQueueUrl = (
  url: string
): { readonly account: string; readonly name: string; readonly region: string | undefined } | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return undefined
  }
  const match = /^\/(\d{12})\/([A-Za-z0-9_-]{1,80}(\.fifo)?)\/?$/.exec(parsed.pathname)
  if (match === null || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) return undefined
  const region =
    /^sqs\.([a-z0-9-]+)\./.exec(parsed.hostname)?.[1] ?? /^([a-z0-9-]+)\.queue\./.exec(parsed.hostname)?.[1]
  return { account: match[1]!, name: match[2]!, region }
}

const QueueUrl = Schema.String.check(
  Schema.makeFilter((url: string) => parseQueueUrl(url) !== undefined, {
    message: "must be an SQS queue URL: https://sqs.<region>.amazonaws.com/<account id>/<queue name>"
  })
)

/** A queue URL from `Config`; a value that is not an SQS queue URL fails naming the variable. */
export const queueUrl = (variable: string): Config.Config<string> => Config.schema(QueueUrl, variable)

/** The queue's ARN: from the URL when it names the region, else from the client's region. */
export const queueArnOf = (url: string): Effect.Effect<string, FallbackQueue.FallbackQueueError, SqsClient> =>
  Effect.gen(function* () {
    const parts = parseQueueUrl(url)
    if (parts === undefined) return yield* queueError("InvalidRequest", `${url} is not an SQS queue URL`)
    const client = yield* SqsClient
    const region =
      parts.region ??
      (yield* Effect.tryPromise({
        try: () => client.config.region(),
        catch: () => queueError("InvalidRequest", "the SQS client has no region")
      }))
    return `arn:${ClientConfig.partitionOf(region)}:sqs:${region}:${parts.account}:${parts.name}`
  })

const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8")

/** Splits messages into SendMessageBatch calls within `limits`, keeping their order. */
const batchesOf = (
  messages: ReadonlyArray<FallbackQueue.OutgoingMessage>,
  limits: FallbackQueue.Limits
): Array<Array<FallbackQueue.OutgoingMessage>> =>
  Batching.chunkBySize(messages, (message) => utf8Bytes(message.body), {
    maxCount: limits.maxEntriesPerCall,
    maxBytes: limits.maxBatchBytes
  })

const toQueueMessage = (message: Message): FallbackQueue.QueueMessage | undefined => {
  if (message.MessageId === undefined || message.ReceiptHandle === undefined) return undefined
  const receiveCount = Number.parseInt(message.Attributes?.ApproximateReceiveCount ?? "", 10)
  const sentAt = Number.parseInt(message.Attributes?.SentTimestamp ?? "", 10)
  return {
    messageId: message.MessageId,
    receiptHandle: message.ReceiptHandle,
    body: message.Body ?? "",
    receiveCount: Number.isFinite(receiveCount) ? receiveCount : 1,
    sentAt: Number.isFinite(sentAt) ? sentAt : 0
  }
}

export const make = (
  options: Options
): Effect.Effect<FallbackQueue.Service, FallbackQueue.FallbackQueueError, SqsClient> =>
  Effect.gen(function* () {
    const client = yield* SqsClient
    const { queueUrl } = options
    const queueArn = options.queueArn ?? (yield* queueArnOf(queueUrl))
    const limits = options.limits ?? FallbackQueue.defaultLimits
    const waitTimeSeconds = options.waitTimeSeconds ?? 0

    const sendBatch = (batch: ReadonlyArray<FallbackQueue.OutgoingMessage>) =>
      Effect.tryPromise({
        try: (signal) =>
          client.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: batch.map((message) => ({
                Id: message.id,
                MessageBody: message.body,
                ...(message.delaySeconds === undefined ? {} : { DelaySeconds: message.delaySeconds })
              }))
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("SendMessageBatch")
      }).pipe(
        Effect.map((output) => {
          const sent = new Map((output.Successful ?? []).map((entry) => [entry.Id, entry]))
          const failed = new Map((output.Failed ?? []).map((entry) => [entry.Id, entry]))
          return batch.map((message): FallbackQueue.SendOutcome => {
            const ok = sent.get(message.id)
            if (ok?.MessageId !== undefined) return { _tag: "Sent", messageId: ok.MessageId }
            const refused = failed.get(message.id)
            return refused === undefined
              ? {
                  _tag: "Failed",
                  code: "MissingResult",
                  senderFault: false,
                  message: "SendMessageBatch returned no result for this entry"
                }
              : {
                  _tag: "Failed",
                  code: refused.Code ?? "Unknown",
                  senderFault: refused.SenderFault ?? false,
                  message: refused.Message ?? refused.Code ?? "failed"
                }
          })
        })
      )

    const send = Effect.fn("SqsFallbackQueue.send")(function* (
      messages: ReadonlyArray<FallbackQueue.OutgoingMessage>
    ) {
      if (messages.length === 0) {
        return yield* queueError("InvalidRequest", "EmptyBatchRequest: a send needs at least one message")
      }
      const batches = batchesOf(messages, limits)
      const outcomes: Array<FallbackQueue.SendOutcome> = []
      for (const [index, batch] of batches.entries()) {
        const answer = yield* Effect.result(sendBatch(batch))
        if (Result.isSuccess(answer)) {
          outcomes.push(...answer.success)
          continue
        }
        if (index === 0) return yield* answer.failure
        const failed: FallbackQueue.SendOutcome = {
          _tag: "Failed",
          code: answer.failure.reason,
          senderFault: !answer.failure.isRetryable,
          message: answer.failure.message
        }
        for (const _ of batches.slice(index).flat()) outcomes.push(failed)
        break
      }
      return outcomes
    })

    const receive = Effect.fn("SqsFallbackQueue.receive")(function* (
      receiveOptions: FallbackQueue.ReceiveOptions
    ) {
      const output = yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: receiveOptions.maxMessages,
              WaitTimeSeconds: waitTimeSeconds,
              MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
              ...(receiveOptions.visibilityTimeoutSeconds === undefined
                ? {}
                : { VisibilityTimeout: receiveOptions.visibilityTimeoutSeconds })
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("ReceiveMessage")
      })
      const messages: Array<FallbackQueue.QueueMessage> = []
      for (const message of output.Messages ?? []) {
        const received = toQueueMessage(message)
        // Without an id and a handle the message could be neither reported nor deleted; SQS always
        // sends both, so a response lacking them is a broken response, not an empty one.
        if (received === undefined) {
          return yield* queueError(
            "Unavailable",
            "ReceiveMessage returned a message without id or receipt handle"
          )
        }
        messages.push(received)
      }
      return messages
    })

    const deleteMessage = Effect.fn("SqsFallbackQueue.delete")(function* (receiptHandle: string) {
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }), {
            abortSignal: signal
          }),
        catch: fromSdk("DeleteMessage")
      })
    })

    const changeVisibility = Effect.fn("SqsFallbackQueue.changeVisibility")(function* (
      receiptHandle: string,
      timeoutSeconds: number
    ) {
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queueUrl,
              ReceiptHandle: receiptHandle,
              VisibilityTimeout: timeoutSeconds
            }),
            { abortSignal: signal }
          ),
        catch: fromSdk("ChangeMessageVisibility")
      })
    })

    return FallbackQueue.FallbackQueue.of({
      queueArn,
      send,
      receive,
      delete: deleteMessage,
      changeVisibility
    })
  })

export const layer = (
  options: Options
): Layer.Layer<FallbackQueue.FallbackQueue, FallbackQueue.FallbackQueueError, SqsClient> =>
  Layer.effect(FallbackQueue.FallbackQueue, make(options))

/**
 * The queue from `Config`: `FALLBACK_QUEUE_URL`, and `FALLBACK_QUEUE_MAX_MESSAGE_BYTES` for queues
 * whose `MaximumMessageSize` is below the 1 MiB default (262,144 on queues created before Aug 2025).
 */
export const layerConfig = (
  options: Omit<Options, "queueUrl" | "limits"> = {}
): Layer.Layer<
  FallbackQueue.FallbackQueue,
  Config.ConfigError | FallbackQueue.FallbackQueueError,
  SqsClient
> =>
  Layer.effect(
    FallbackQueue.FallbackQueue,
    Effect.gen(function* () {
      const [url, maxMessageBytes] = yield* Config.all([
        queueUrl("FALLBACK_QUEUE_URL"),
        Config.schema(
          Schema.Int.check(
            Schema.isBetween(
              { minimum: 1024, maximum: 1_048_576 },
              { message: "must be an integer in 1024–1048576 (the queue's MaximumMessageSize)" }
            )
          ),
          "FALLBACK_QUEUE_MAX_MESSAGE_BYTES"
        ).pipe(Config.withDefault(FallbackQueue.defaultLimits.maxMessageBytes))
      ])
      return yield* make({
        ...options,
        queueUrl: url,
        limits: { ...FallbackQueue.defaultLimits, maxMessageBytes }
      })
    })
  )
