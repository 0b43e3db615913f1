/**
 * An in-memory SQS standard queue behind the `FallbackQueue` tag, for tests and local runs.
 *
 * It reproduces the behaviour the collector and the redriver depend on (docs/aws-behaviour.md §4):
 * SendMessageBatch validation (whole-call errors vs per-entry `Failed` with `SenderFault`),
 * visibility timeouts with a new receipt handle and a growing receive count on every receive,
 * deletes that need the latest handle, redrive to a dead-letter queue once a message's receive
 * count would pass `maxReceiveCount`, and retention expiry. All time comes from Effect's `Clock`,
 * in whole milliseconds as SQS keeps it, and message ids from Effect's `Random`, so a test drives
 * the queue with `TestClock.adjust` and a seeded `Random` and sees the same run every time.
 *
 * Deliberate simplifications: delivery order is insertion order (SQS is only best-effort), a
 * receive never samples a subset of servers (no spurious empty short polls), and there are no
 * message attributes, per-queue delays or FIFO semantics (a message's own `DelaySeconds` is kept).
 */
import { hash } from "node:crypto"
import { FallbackQueue } from "@spillway/core"
import { Clock, Context, Deferred, Effect, Layer, Random } from "effect"

/** Where a message goes once it has been received `maxReceiveCount` times without being deleted. */
export interface RedrivePolicy {
  /** 1–1,000. */
  readonly maxReceiveCount: number
  readonly deadLetterQueue: Handle
}

export interface Options {
  /** @default "fallback" */
  readonly queueName?: string
  /** @default "us-east-1" */
  readonly region?: string
  /** @default "123456789012" */
  readonly accountId?: string
  /** 0–43,200. @default 30 */
  readonly visibilityTimeoutSeconds?: number
  /** 60–1,209,600. @default 345,600 (4 days) */
  readonly messageRetentionSeconds?: number
  /** @default FallbackQueue.defaultLimits */
  readonly limits?: FallbackQueue.Limits
  readonly redrivePolicy?: RedrivePolicy
  /** The `SenderId` system attribute of every message sent here. @default "AIDAIENQZJOLO23YVJ4VO" */
  readonly senderId?: string
}

/** A received message with the system attributes the Lambda SQS event carries. */
export interface ReceivedMessage extends FallbackQueue.QueueMessage {
  /** Hex MD5 of the UTF-8 body, as SQS returns it in `MD5OfBody`. */
  readonly md5OfBody: string
  readonly senderId: string
  /** Epoch milliseconds of the first receive (`ApproximateFirstReceiveTimestamp`). */
  readonly firstReceivedAt: number
  /** Set on messages a source queue moved here through its redrive policy. */
  readonly deadLetterQueueSourceArn?: string
}

/** A message as stored, for assertions. */
export interface MessageSnapshot {
  readonly messageId: string
  readonly body: string
  readonly sentAt: number
  readonly receiveCount: number
  readonly inFlight: boolean
  /** Epoch milliseconds at which it is (or became) visible. */
  readonly visibleAt: number
}

export interface Stats {
  /** Receivable now (`ApproximateNumberOfMessages`). */
  readonly visible: number
  /** Received and neither deleted nor back to visible (`ApproximateNumberOfMessagesNotVisible`). */
  readonly inFlight: number
  /** `visible + inFlight`: every message the queue still holds. */
  readonly total: number
  /** Messages this queue moved to its dead-letter queue. */
  readonly deadLettered: number
  /** Messages dropped because they outlived the retention period. */
  readonly expired: number
  readonly sent: number
  readonly deleted: number
}

/**
 * Decides, per entry of a `send`, whether the service fails it as if it had an internal error
 * (retryable, `senderFault: false`). Return a code to fail the entry, `undefined` to let it through.
 */
export type SendFailure = (message: FallbackQueue.OutgoingMessage) => string | undefined

export interface ReceiveOptions extends FallbackQueue.ReceiveOptions {
  /** 0–20: long polling; an empty receive waits this long for a message before answering. @default 0 */
  readonly waitTimeSeconds?: number
}

export interface Handle extends FallbackQueue.Service {
  readonly queueName: string
  readonly queueUrl: string
  readonly region: string
  readonly visibilityTimeoutSeconds: number
  readonly receive: (
    options: ReceiveOptions
  ) => Effect.Effect<ReadonlyArray<ReceivedMessage>, FallbackQueue.FallbackQueueError>
  /**
   * Waits until a message may be receivable (one is visible, one is sent or made visible, or an
   * in-flight one's timeout ends), or at most `maxWaitMillis` rounded up to whole milliseconds
   * (the queue's unit of time): the waiting half of a long poll, which wakes a consumer on the
   * event instead of on a timer.
   */
  readonly awaitVisible: (maxWaitMillis: number) => Effect.Effect<void>
  /** Every call fails `Unavailable` until `endOutage`, or until the clock reaches `until` (epoch ms). */
  readonly startOutage: (options?: { readonly until?: number }) => Effect.Effect<void>
  readonly endOutage: Effect.Effect<void>
  /** Installs (or with `undefined` removes) a per-entry send failure. */
  readonly failSends: (failure: SendFailure | undefined) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
  /** Bodies of every message the queue holds, visible or in flight, in delivery order. */
  readonly bodies: Effect.Effect<ReadonlyArray<string>>
  readonly messages: Effect.Effect<ReadonlyArray<MessageSnapshot>>
}

/** Control of an in-memory queue: fault injection and observation, next to the `FallbackQueue` it serves. */
export class MemoryQueue extends Context.Service<MemoryQueue, Handle>()("spillway/memory/MemoryQueue") {}

/** SQS's ceiling for `DelaySeconds` (15 minutes). */
const maxDelaySeconds = 900

/** SQS's hard ceiling for a visibility timeout, and for the total time since a receive. */
const maxVisibilitySeconds = 43_200

// Characters SQS accepts in a body (XML 1.0 `Char`); anything else is rejected, not replaced.
const disallowedCharacter = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const batchEntryId = /^[A-Za-z0-9_-]{1,80}$/

interface Stored {
  readonly messageId: string
  readonly body: string
  readonly md5OfBody: string
  readonly sentAt: number
  readonly deadLetterQueueSourceArn: string | undefined
  receiveCount: number
  visibleAt: number
  receiptHandle: string | undefined
  receivedAt: number
  firstReceivedAt: number | undefined
}

// How a source queue hands a message over to its dead-letter queue without going through `send`
// (the move is internal to SQS: it keeps the message id and the original enqueue time).
const deadLetterInbox = new WeakMap<Handle, (message: Stored, sourceArn: string, now: number) => void>()

const invalid = (code: string, message: string) =>
  new FallbackQueue.FallbackQueueError({ reason: "InvalidRequest", message: `${code}: ${message}` })

const md5Hex = (body: string): string => hash("md5", body, "hex")

const hex32 = (n: number): string =>
  Math.floor(n * 0x1_0000_0000)
    .toString(16)
    .padStart(8, "0")

/** A version-4 UUID from Effect's `Random`, so a seeded run reproduces its message ids. */
const randomUuid: Effect.Effect<string> = Effect.map(
  Effect.all([Random.next, Random.next, Random.next, Random.next]),
  ([a, b, c, d]) => {
    const h = hex32(a) + hex32(b) + hex32(c) + hex32(d)
    const variant = ((Number.parseInt(h[16] ?? "0", 16) & 0x3) | 0x8).toString(16)
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
  }
)

/**
 * The queue's time: the clock in whole milliseconds, as SQS keeps it (its timestamps are epoch
 * milliseconds). A `TestClock` can stand at a fractional instant (jittered retries sleep
 * fractions of a millisecond); whole milliseconds keep every visibility deadline and wait exact.
 */
const currentMillis: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, Math.floor)

const checkRange = (name: string, value: number, min: number, max: number): Effect.Effect<void> =>
  Number.isInteger(value) && value >= min && value <= max
    ? Effect.void
    : Effect.die(new Error(`MemoryQueue: ${name} must be an integer in ${min}–${max}, got ${value}`))

export const make = (options: Options = {}): Effect.Effect<Handle> =>
  Effect.gen(function* () {
    const queueName = options.queueName ?? "fallback"
    const region = options.region ?? "us-east-1"
    const accountId = options.accountId ?? "123456789012"
    const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 30
    const retentionMillis = (options.messageRetentionSeconds ?? 345_600) * 1000
    const limits = options.limits ?? FallbackQueue.defaultLimits
    const senderId = options.senderId ?? "AIDAIENQZJOLO23YVJ4VO"
    const redrive = options.redrivePolicy
    const queueArn = `arn:aws:sqs:${region}:${accountId}:${queueName}`
    const queueUrl = `https://sqs.${region}.amazonaws.com/${accountId}/${queueName}`

    if (!/^[A-Za-z0-9_-]{1,80}$/.test(queueName)) {
      return yield* Effect.die(new Error(`MemoryQueue: invalid queue name ${JSON.stringify(queueName)}`))
    }
    yield* checkRange("visibilityTimeoutSeconds", visibilityTimeoutSeconds, 0, maxVisibilitySeconds)
    yield* checkRange("messageRetentionSeconds", retentionMillis / 1000, 60, 1_209_600)
    if (redrive !== undefined) {
      yield* checkRange("redrivePolicy.maxReceiveCount", redrive.maxReceiveCount, 1, 1000)
      if (!deadLetterInbox.has(redrive.deadLetterQueue)) {
        return yield* Effect.die(
          new Error("MemoryQueue: redrivePolicy.deadLetterQueue must be made by MemoryQueue.make")
        )
      }
    }

    // Insertion order is delivery order: a message made visible again keeps its place.
    const store = new Map<string, Stored>()
    // Receipt handles are numbered; a handle names its message and number, so telling a stale
    // handle from one that was never valid needs no record of every handle ever issued (a long
    // run issues millions).
    let handleSequence = 0
    const handlePrefix = `${queueArn}|`
    const messageIdOfHandle = (receiptHandle: string): string | undefined => {
      if (!receiptHandle.startsWith("AQEB")) return undefined
      const text = Buffer.from(receiptHandle.slice(4), "base64").toString()
      if (!text.startsWith(handlePrefix)) return undefined
      const bar = text.lastIndexOf("|")
      const sequence = text.slice(bar + 1)
      if (bar <= handlePrefix.length || !/^[1-9]\d*$/.test(sequence) || Number(sequence) > handleSequence)
        return undefined
      const messageId = text.slice(handlePrefix.length, bar)
      // Only a handle this queue wrote reads back to the same bytes.
      return issuedHandle(messageId, sequence) === receiptHandle ? messageId : undefined
    }
    const issuedHandle = (messageId: string, sequence: number | string): string =>
      `AQEB${Buffer.from(`${handlePrefix}${messageId}|${sequence}`).toString("base64")}`
    let outage: { readonly until: number | undefined } | undefined
    let sendFailure: SendFailure | undefined
    const counts = { deadLettered: 0, expired: 0, sent: 0, deleted: 0 }
    // Completed, and replaced, whenever a message may have become receivable earlier than planned.
    let changed = Deferred.makeUnsafe<void>()
    const signal = (): void => {
      Deferred.doneUnsafe(changed, Effect.void)
      changed = Deferred.makeUnsafe<void>()
    }

    const nextVisibleAt = (now: number): number => {
      let next = Number.POSITIVE_INFINITY
      for (const message of store.values()) {
        if (message.visibleAt <= now) return now
        next = Math.min(next, message.visibleAt)
      }
      return next
    }

    // Rounded up to whole milliseconds: to Effect's `Duration` a wait under half a nanosecond is
    // no wait at all, and a caller whose deadline is on a fractional clock would poll again at once.
    const awaitVisible = (maxWaitMillis: number): Effect.Effect<void> =>
      Effect.flatMap(currentMillis, (now) => {
        expire(now)
        const wait = Math.ceil(Math.min(Math.max(0, maxWaitMillis), nextVisibleAt(now) - now))
        if (wait <= 0) return Effect.void
        return wait === Number.POSITIVE_INFINITY
          ? Deferred.await(changed)
          : Effect.race(Deferred.await(changed), Effect.sleep(wait))
      })

    // The earliest time a stored message expires, so most operations skip the scan.
    let nextExpiry = Number.POSITIVE_INFINITY
    const expire = (now: number): void => {
      if (now < nextExpiry) return
      nextExpiry = Number.POSITIVE_INFINITY
      for (const [id, message] of store) {
        if (message.sentAt + retentionMillis <= now) {
          store.delete(id)
          counts.expired += 1
        } else {
          nextExpiry = Math.min(nextExpiry, message.sentAt + retentionMillis)
        }
      }
    }

    // Every operation first sees the queue as of `now`: expired messages are gone, outages checked.
    const at: Effect.Effect<number, FallbackQueue.FallbackQueueError> = Effect.gen(function* () {
      const now = yield* currentMillis
      expire(now)
      if (outage !== undefined && outage.until !== undefined && now >= outage.until) outage = undefined
      if (outage !== undefined) {
        return yield* new FallbackQueue.FallbackQueueError({
          reason: "Unavailable",
          message: `ServiceUnavailable: ${queueName} is unavailable (injected outage)`
        })
      }
      return now
    })

    const send = Effect.fn("MemoryQueue.send")(function* (
      messages: ReadonlyArray<FallbackQueue.OutgoingMessage>
    ) {
      const now = yield* at
      if (messages.length === 0) {
        return yield* invalid(
          "EmptyBatchRequest",
          "There should be at least one SendMessageBatchRequestEntry in the request."
        )
      }
      if (messages.length > limits.maxEntriesPerCall) {
        return yield* invalid(
          "TooManyEntriesInBatchRequest",
          `Maximum number of entries per request are ${limits.maxEntriesPerCall}. You have sent ${messages.length}.`
        )
      }
      const ids = new Set<string>()
      let totalBytes = 0
      for (const message of messages) {
        if (!batchEntryId.test(message.id)) {
          return yield* invalid(
            "InvalidBatchEntryId",
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
          )
        }
        if (ids.has(message.id))
          return yield* invalid("BatchEntryIdsNotDistinct", `Id ${message.id} repeated.`)
        ids.add(message.id)
        const delay = message.delaySeconds ?? 0
        if (!Number.isInteger(delay) || delay < 0 || delay > maxDelaySeconds) {
          return yield* invalid(
            "InvalidParameterValue",
            `Value ${delay} for parameter DelaySeconds is invalid. Reason: Must be between 0 and ${maxDelaySeconds}.`
          )
        }
        totalBytes += Buffer.byteLength(message.body, "utf8")
      }
      if (totalBytes > limits.maxBatchBytes) {
        return yield* invalid(
          "BatchRequestTooLong",
          `Batch requests cannot be longer than ${limits.maxBatchBytes} bytes. You have sent ${totalBytes} bytes.`
        )
      }
      const messageIds = yield* Effect.all(messages.map(() => randomUuid))
      const outcomes = messages.map((message, i): FallbackQueue.SendOutcome => {
        const bytes = Buffer.byteLength(message.body, "utf8")
        if (bytes > limits.maxMessageBytes) {
          return {
            _tag: "Failed",
            code: "InvalidParameterValue",
            senderFault: true,
            message: `One or more parameters are invalid. Reason: Message must be shorter than ${limits.maxMessageBytes} bytes.`
          }
        }
        if (disallowedCharacter.test(message.body)) {
          return {
            _tag: "Failed",
            code: "InvalidMessageContents",
            senderFault: true,
            message:
              "Invalid binary character in the message body: see the allowed list of characters in the SQS limits."
          }
        }
        const injected = sendFailure?.(message)
        if (injected !== undefined) {
          return {
            _tag: "Failed",
            code: injected,
            senderFault: false,
            message: "Internal service failure (injected)"
          }
        }
        const messageId = messageIds[i] ?? `${now}-${i}`
        store.set(messageId, {
          messageId,
          body: message.body,
          md5OfBody: md5Hex(message.body),
          sentAt: now,
          deadLetterQueueSourceArn: undefined,
          receiveCount: 0,
          visibleAt: now + (message.delaySeconds ?? 0) * 1000,
          receiptHandle: undefined,
          receivedAt: now,
          firstReceivedAt: undefined
        })
        counts.sent += 1
        nextExpiry = Math.min(nextExpiry, now + retentionMillis)
        return { _tag: "Sent", messageId }
      })
      signal()
      return outcomes
    })

    const receiveNow = (receiveOptions: ReceiveOptions) =>
      Effect.gen(function* () {
        const now = yield* at
        const { maxMessages } = receiveOptions
        if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > 10) {
          return yield* invalid(
            "InvalidParameterValue",
            `Value ${maxMessages} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.`
          )
        }
        const timeout = receiveOptions.visibilityTimeoutSeconds ?? visibilityTimeoutSeconds
        if (!Number.isInteger(timeout) || timeout < 0 || timeout > maxVisibilitySeconds) {
          return yield* invalid(
            "InvalidParameterValue",
            `Value ${timeout} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and ${maxVisibilitySeconds}.`
          )
        }
        const received: Array<ReceivedMessage> = []
        for (const message of store.values()) {
          if (received.length >= maxMessages) break
          if (message.visibleAt > now) continue
          // SQS moves the message instead of handing it out a (maxReceiveCount + 1)th time.
          if (redrive !== undefined && message.receiveCount >= redrive.maxReceiveCount) {
            store.delete(message.messageId)
            counts.deadLettered += 1
            deadLetterInbox.get(redrive.deadLetterQueue)?.(message, queueArn, now)
            continue
          }
          handleSequence += 1
          const receiptHandle = issuedHandle(message.messageId, handleSequence)
          message.receiptHandle = receiptHandle
          message.receiveCount += 1
          message.receivedAt = now
          message.visibleAt = now + timeout * 1000
          message.firstReceivedAt ??= now
          received.push({
            messageId: message.messageId,
            receiptHandle,
            body: message.body,
            receiveCount: message.receiveCount,
            sentAt: message.sentAt,
            md5OfBody: message.md5OfBody,
            senderId,
            firstReceivedAt: message.firstReceivedAt,
            ...(message.deadLetterQueueSourceArn === undefined
              ? {}
              : { deadLetterQueueSourceArn: message.deadLetterQueueSourceArn })
          })
        }
        return received
      })

    const receive = Effect.fn("MemoryQueue.receive")(function* (receiveOptions: ReceiveOptions) {
      const waitTimeSeconds = receiveOptions.waitTimeSeconds ?? 0
      if (!Number.isInteger(waitTimeSeconds) || waitTimeSeconds < 0 || waitTimeSeconds > 20) {
        return yield* invalid(
          "InvalidParameterValue",
          `Value ${waitTimeSeconds} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.`
        )
      }
      const deadline = (yield* currentMillis) + waitTimeSeconds * 1000
      while (true) {
        const received = yield* receiveNow(receiveOptions)
        const now = yield* currentMillis
        if (received.length > 0 || now >= deadline) return received
        yield* awaitVisible(deadline - now)
      }
    })

    // The message a handle designates, if the handle is its latest one; fails on a handle that was
    // never issued or has been superseded by a later receive.
    const resolve = (receiptHandle: string) => {
      const messageId = messageIdOfHandle(receiptHandle)
      if (messageId === undefined) {
        return Effect.fail(
          invalid("ReceiptHandleIsInvalid", `The input receipt handle "${receiptHandle}" is not valid.`)
        )
      }
      const message = store.get(messageId)
      if (message !== undefined && message.receiptHandle !== receiptHandle) {
        return Effect.fail(
          invalid(
            "ReceiptHandleIsInvalid",
            `The receipt handle has been superseded by a later receive of message ${messageId}.`
          )
        )
      }
      return Effect.succeed(message)
    }

    const deleteMessage = Effect.fn("MemoryQueue.delete")(function* (receiptHandle: string) {
      yield* at
      const message = yield* resolve(receiptHandle)
      // Deleting a message that is already gone (deleted, expired, redriven) succeeds, as in SQS.
      if (message !== undefined) {
        store.delete(message.messageId)
        counts.deleted += 1
      }
    })

    const changeVisibility = Effect.fn("MemoryQueue.changeVisibility")(function* (
      receiptHandle: string,
      timeoutSeconds: number
    ) {
      const now = yield* at
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > maxVisibilitySeconds) {
        return yield* invalid(
          "InvalidParameterValue",
          `Value ${timeoutSeconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and ${maxVisibilitySeconds}.`
        )
      }
      const message = yield* resolve(receiptHandle)
      if (message === undefined || message.visibleAt <= now) {
        return yield* invalid("MessageNotInflight", "The message referred to isn't in flight.")
      }
      // The new timeout counts from now, but the whole time since the receive is capped at 12 h.
      if (now + timeoutSeconds * 1000 - message.receivedAt > maxVisibilitySeconds * 1000) {
        return yield* invalid(
          "InvalidParameterValue",
          `Value ${timeoutSeconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [${maxVisibilitySeconds} seconds].`
        )
      }
      message.visibleAt = now + timeoutSeconds * 1000
      signal()
    })

    const observe = <A>(f: (now: number) => A): Effect.Effect<A> =>
      Effect.map(currentMillis, (now) => {
        expire(now)
        return f(now)
      })

    const handle: Handle = {
      queueArn,
      queueName,
      queueUrl,
      region,
      visibilityTimeoutSeconds,
      send,
      receive,
      awaitVisible,
      delete: deleteMessage,
      changeVisibility,
      startOutage: (outageOptions = {}) =>
        Effect.sync(() => {
          outage = { until: outageOptions.until }
        }),
      endOutage: Effect.sync(() => {
        outage = undefined
      }),
      failSends: (failure) =>
        Effect.sync(() => {
          sendFailure = failure
        }),
      stats: observe((now) => {
        let visible = 0
        for (const message of store.values()) if (message.visibleAt <= now) visible += 1
        return { visible, inFlight: store.size - visible, total: store.size, ...counts }
      }),
      bodies: observe(() => Array.from(store.values(), (message) => message.body)),
      messages: observe((now) =>
        Array.from(store.values(), (message) => ({
          messageId: message.messageId,
          body: message.body,
          sentAt: message.sentAt,
          receiveCount: message.receiveCount,
          inFlight: message.visibleAt > now,
          visibleAt: message.visibleAt
        }))
      )
    }
    deadLetterInbox.set(handle, (message, sourceArn, now) => {
      // Receive count starts again in the dead-letter queue (⚠ not documented); the message keeps
      // its id and its original enqueue time, so it can expire soon after landing (§4.5).
      store.set(message.messageId, {
        messageId: message.messageId,
        body: message.body,
        md5OfBody: message.md5OfBody,
        sentAt: message.sentAt,
        deadLetterQueueSourceArn: sourceArn,
        receiveCount: 0,
        visibleAt: now,
        receiptHandle: undefined,
        receivedAt: now,
        firstReceivedAt: undefined
      })
      nextExpiry = Math.min(nextExpiry, message.sentAt + retentionMillis)
      signal()
    })
    return handle
  })

/** A queue serving `FallbackQueue`, with its control handle under `MemoryQueue`. */
export const layerMemory = (options: Options = {}): Layer.Layer<FallbackQueue.FallbackQueue | MemoryQueue> =>
  Layer.effectContext(
    Effect.map(make(options), (handle) =>
      Context.make(MemoryQueue, handle).pipe(Context.add(FallbackQueue.FallbackQueue, handle))
    )
  )
