/**
 * The fallback queue (SQS in production): where the collector parks records the stream would not
 * take, and from which the redriver puts them back. At-least-once: a message received and not
 * deleted comes back after its visibility timeout, which is the redriver's retry delay.
 */
import { Context, type Effect, Schema } from "effect"

export interface OutgoingMessage {
  /** Unique within one `send` call (SQS batch entry id: ≤ 80 chars of `[A-Za-z0-9_-]`). */
  readonly id: string
  readonly body: string
  /** SQS `DelaySeconds` (0–900): the message stays invisible this long after it is sent. */
  readonly delaySeconds?: number
}

export type SendOutcome =
  | { readonly _tag: "Sent"; readonly messageId: string }
  /** `senderFault: true` means the message itself is at fault (too large, bad characters): do not retry it as is. */
  | {
      readonly _tag: "Failed"
      readonly code: string
      readonly senderFault: boolean
      readonly message: string
    }

export interface QueueMessage {
  readonly messageId: string
  /** The handle of this receive; delete and change visibility need the latest one. */
  readonly receiptHandle: string
  readonly body: string
  /** How many times the message has been received, this time included (`ApproximateReceiveCount`). */
  readonly receiveCount: number
  /** Epoch milliseconds at which the message was first sent. */
  readonly sentAt: number
}

export const ErrorReason = Schema.Literals([
  "Throttled",
  "Unavailable",
  "InvalidRequest",
  "NotFound",
  "AccessDenied"
])
export type ErrorReason = typeof ErrorReason.Type

const retryable: ReadonlySet<ErrorReason> = new Set(["Throttled", "Unavailable"])

export class FallbackQueueError extends Schema.TaggedError<FallbackQueueError>()("FallbackQueueError", {
  reason: ErrorReason,
  message: Schema.String,
  /** What the backend threw or answered, when there was something (an SDK error, say). */
  cause: Schema.optionalKey(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return retryable.has(this.reason)
  }
}

export interface ReceiveOptions {
  /** 1–10. */
  readonly maxMessages: number
  /** Overrides the queue's visibility timeout for these messages. */
  readonly visibilityTimeoutSeconds?: number
}

export interface Service {
  readonly queueArn: string
  /**
   * Sends messages (SendMessageBatch: 10 per call), answering once per message in request order.
   * As with `RecordStream.putRecords`, the AWS layer splits a larger call and the memory layer
   * refuses it as the raw API does.
   */
  readonly send: (
    messages: ReadonlyArray<OutgoingMessage>
  ) => Effect.Effect<ReadonlyArray<SendOutcome>, FallbackQueueError>
  readonly receive: (
    options: ReceiveOptions
  ) => Effect.Effect<ReadonlyArray<QueueMessage>, FallbackQueueError>
  readonly delete: (receiptHandle: string) => Effect.Effect<void, FallbackQueueError>
  readonly changeVisibility: (
    receiptHandle: string,
    timeoutSeconds: number
  ) => Effect.Effect<void, FallbackQueueError>
}

export class FallbackQueue extends Context.Service<FallbackQueue, Service>()("spillway/FallbackQueue") {}

/** SQS limits that shape a `send` call. */
export interface Limits {
  readonly maxEntriesPerCall: number
  /** Per message, and for the sum of a batch. */
  readonly maxMessageBytes: number
  readonly maxBatchBytes: number
}

export const defaultLimits: Limits = {
  maxEntriesPerCall: 10,
  // 1 MiB since August 2025. Queues created earlier keep `MaximumMessageSize` 262,144 unless
  // raised; configure the smaller value for those.
  maxMessageBytes: 1024 * 1024,
  maxBatchBytes: 1024 * 1024
}
