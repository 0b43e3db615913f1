/**
 * The `FallbackQueue` conformance suite: what every backend (in-memory, SQS on an emulator, SQS
 * itself) must do, written once. A backend runs `fallbackQueueSuite` with a layer that builds a
 * fresh, empty queue for each test and, when it can fail on demand, the `QueueFaultsService` hooks
 * that make it fail as SQS fails (without them, the transient-failure and outage tests are not
 * registered).
 *
 * Covered: one answer per message in request order; per-message delays; receive, delete and
 * change visibility with the
 * latest receipt handle; redelivery after the visibility timeout with a new handle and a higher
 * receive count; per-entry refusals (`senderFault` for the message's own fault, not for the
 * service's) that leave the other messages sent; whole-call outages as retryable typed errors;
 * batches packed to the size limits by `encodeFallbackMessages` accepted whole.
 *
 * Waiting is bounded and never asserted on: on `TestClock` time is moved, against an emulator it
 * is slept in short steps until the expected message shows up or the bound is reached.
 */
import { describe, expect } from "@effect/vitest"
import { FallbackMessages, FallbackQueue } from "@spillway/core"
import { Clock, Context, type Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { register, registerWithFaults, type SuiteClock, type SuiteOptions } from "./Suite.js"

const { encodeFallbackMessages } = FallbackMessages

/** How a test makes the backend fail. Every hook lasts until `clear`. */
export interface QueueFaultsService {
  /** Messages for which `inject` returns a code are answered `Failed` with it (`senderFault: false`) and not stored. */
  readonly failSends: (
    inject: (message: FallbackQueue.OutgoingMessage) => string | undefined
  ) => Effect.Effect<void>
  /** Every call fails as a whole, as during an outage. */
  readonly outage: Effect.Effect<void>
  readonly clear: Effect.Effect<void>
}

/** A key for layers that build the hooks next to the queue: pass it as is, `faults: QueueFaults`. */
export class QueueFaults extends Context.Service<QueueFaults, QueueFaultsService>()(
  "spillway/conformance/QueueFaults"
) {}

export interface QueueOptions {
  /** The queue's `MaximumMessageSize`. */
  readonly maxMessageBytes: number
}

/** `layer` builds a fresh, empty queue with the given `MaximumMessageSize`. */
export type FallbackQueueSuiteOptions<R = never> = SuiteOptions<
  QueueOptions,
  FallbackQueue.FallbackQueue,
  QueueFaultsService,
  R
>

const defaultQueue: QueueOptions = { maxMessageBytes: FallbackQueue.defaultLimits.maxMessageBytes }

const messages = (bodies: ReadonlyArray<string>): Array<FallbackQueue.OutgoingMessage> =>
  bodies.map((body, i) => ({ id: `m${i}`, body }))

/** How time passes on the suite's clock, and a receive that waits, bounded, for what it expects. */
const waiting = (clock: SuiteClock) => {
  const pass = (duration: Duration.Input): Effect.Effect<void> =>
    clock === "test" ? TestClock.adjust(duration) : Effect.sleep(duration)

  /**
   * Receives until `count` messages arrived or `maxPolls` receives came back empty in a row, with
   * `step` of time passing between empty receives. Returns what arrived.
   */
  const receiveUntil = (
    count: number,
    receive: FallbackQueue.ReceiveOptions,
    bound: { readonly maxPolls?: number; readonly step?: Duration.Input } = {}
  ) =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const received: Array<FallbackQueue.QueueMessage> = []
      let empty = 0
      while (received.length < count && empty < (bound.maxPolls ?? 40)) {
        const batch = yield* queue.receive(receive)
        received.push(...batch)
        if (batch.length === 0) {
          empty++
          yield* pass(bound.step ?? "250 millis")
        } else empty = 0
      }
      return received
    })

  return { pass, receiveUntil }
}

type Body<R> = Effect.Effect<void, unknown, FallbackQueue.FallbackQueue | R>

/** What a group of cases needs: how to register a test on a fresh queue, and how to wait. */
interface Cases<R> extends ReturnType<typeof waiting> {
  /** Registers a test on a fresh queue built for `queue`, the default queue unless given. */
  readonly run: (name: string, body: () => Body<R>, queue?: QueueOptions) => void
  readonly runWithFaults: (name: string, body: (faults: QueueFaultsService) => Body<R>) => void
}

export const fallbackQueueSuite = <R = never>(options: FallbackQueueSuiteOptions<R>): void => {
  const test = register(options)
  const testWithFaults = registerWithFaults(options)
  const cases: Cases<R> = {
    ...waiting(options.clock),
    run: (name, body, queue = defaultQueue) => test(name, body, queue),
    runWithFaults: (name, body) => testWithFaults(name, body, defaultQueue)
  }

  describe(`FallbackQueue conformance: ${options.name}`, () => {
    deliveryCases(cases)
    sendCases(cases)
    faultCases(cases)
    batchCases(cases)
  })
}

/**
 * One answer per message in request order; receive, delete and change visibility with the latest
 * receipt handle; redelivery after the visibility timeout with a new handle and a higher count.
 */
const deliveryCases = <R>({ run, pass, receiveUntil }: Cases<R>): void => {
  run("answers once per message in request order, and delivers each body with its attributes", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const before = yield* Clock.currentTimeMillis
      const bodies = Array.from({ length: 10 }, (_, i) => `{"n":${i},"text":"é ✓ ${"x".repeat(i * 10)}"}`)
      const outcomes = yield* queue.send(messages(bodies))
      expect(outcomes.map((o) => o._tag)).toEqual(bodies.map(() => "Sent"))
      const ids = outcomes.map((o) => (o._tag === "Sent" ? o.messageId : ""))
      expect(new Set(ids).size).toBe(10)

      const received = yield* receiveUntil(10, { maxMessages: 10, visibilityTimeoutSeconds: 30 })
      const after = yield* Clock.currentTimeMillis
      expect(received.map((m) => m.body).sort()).toEqual([...bodies].sort())
      for (const m of received) {
        // The message id of the receive is the one the send answered for that body.
        expect(m.messageId).toBe(ids[bodies.indexOf(m.body)])
        expect(m.receiveCount).toBe(1)
        expect(m.receiptHandle.length).toBeGreaterThan(0)
        // Epoch milliseconds of the send (one second of clock skew allowed).
        expect(m.sentAt).toBeGreaterThanOrEqual(before - 1000)
        expect(m.sentAt).toBeLessThanOrEqual(after + 1000)
      }
      expect(queue.queueArn).toMatch(/^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/)
    })
  )

  run("redelivers a message not deleted within its visibility timeout, with a new handle and count", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      yield* queue.send(messages(["come back"]))
      const [first] = yield* receiveUntil(1, { maxMessages: 1, visibilityTimeoutSeconds: 2 })
      expect(first?.body).toBe("come back")
      // In flight: invisible to other receivers until the timeout ends.
      expect(yield* queue.receive({ maxMessages: 10, visibilityTimeoutSeconds: 2 })).toEqual([])

      const [second] = yield* receiveUntil(1, { maxMessages: 1, visibilityTimeoutSeconds: 30 })
      expect(second?.messageId).toBe(first?.messageId)
      expect(second?.receiveCount).toBe(2)
      expect(second?.receiptHandle).not.toBe(first?.receiptHandle)

      yield* queue.delete(second!.receiptHandle)
      yield* queue.changeVisibility(second!.receiptHandle, 0).pipe(Effect.ignore)
      expect(yield* receiveUntil(1, { maxMessages: 10 }, { maxPolls: 3 })).toEqual([])
    })
  )

  run("does not deliver a deleted message again, even after its visibility timeout", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      yield* queue.send(messages(["keep", "drop"]))
      const received = yield* receiveUntil(2, { maxMessages: 10, visibilityTimeoutSeconds: 2 })
      expect(received.map((m) => m.body).sort()).toEqual(["drop", "keep"])
      yield* queue.delete(received.find((m) => m.body === "drop")!.receiptHandle)
      yield* pass("2500 millis")
      const again = yield* receiveUntil(1, { maxMessages: 10, visibilityTimeoutSeconds: 30 }, { maxPolls: 8 })
      expect(again.map((m) => m.body)).toEqual(["keep"])
      expect(again[0]?.receiveCount).toBe(2)
    })
  )

  run("makes a message receivable at once when its visibility is changed to 0", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      yield* queue.send(messages(["now"]))
      const [first] = yield* receiveUntil(1, { maxMessages: 1, visibilityTimeoutSeconds: 600 })
      yield* queue.changeVisibility(first!.receiptHandle, 0)
      const [again] = yield* receiveUntil(
        1,
        { maxMessages: 1, visibilityTimeoutSeconds: 600 },
        { maxPolls: 4 }
      )
      expect(again?.messageId).toBe(first?.messageId)
      expect(again?.receiveCount).toBe(2)
    })
  )

  // What the redriver does to a message the stream refused: a long receive timeout cut short.
  run("holds a message back for a changed visibility, shorter than its receive's, then delivers it", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      yield* queue.send(messages(["soon"]))
      const [first] = yield* receiveUntil(1, { maxMessages: 1, visibilityTimeoutSeconds: 600 })
      yield* queue.changeVisibility(first!.receiptHandle, 2)
      // Not at once: the new timeout counts from the change.
      expect(yield* queue.receive({ maxMessages: 10, visibilityTimeoutSeconds: 600 })).toEqual([])
      const [again] = yield* receiveUntil(1, { maxMessages: 1, visibilityTimeoutSeconds: 600 })
      expect(again?.messageId).toBe(first?.messageId)
      expect(again?.receiveCount).toBe(2)
    })
  )
}

/** Per-message delays; per-entry refusals that are the message's own fault. */
const sendCases = <R>({ run, receiveUntil }: Cases<R>): void => {
  run("holds a message sent with delaySeconds back until its delay has passed", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const outcomes = yield* queue.send([
        { id: "later", body: "later", delaySeconds: 2 },
        { id: "now", body: "now" }
      ])
      expect(outcomes.map((o) => o._tag)).toEqual(["Sent", "Sent"])
      const first = yield* receiveUntil(1, { maxMessages: 10, visibilityTimeoutSeconds: 60 })
      expect(first.map((m) => m.body)).toEqual(["now"])
      const later = yield* receiveUntil(1, { maxMessages: 10, visibilityTimeoutSeconds: 60 })
      expect(later.map((m) => m.body)).toEqual(["later"])
      expect(later[0]?.receiveCount).toBe(1)
    })
  )

  run(
    "refuses a message over the queue's size limit or with invalid characters per entry, as the sender's fault",
    () =>
      Effect.gen(function* () {
        const queue = yield* FallbackQueue.FallbackQueue
        const outcomes = yield* queue.send(messages(["small", "y".repeat(3000), "fine", "nul \u0000 inside"]))
        expect(outcomes.map((o) => (o._tag === "Sent" ? "Sent" : `${o.code}/${o.senderFault}`))).toEqual([
          "Sent",
          "InvalidParameterValue/true",
          "Sent",
          "InvalidMessageContents/true"
        ])
        const received = yield* receiveUntil(2, { maxMessages: 10, visibilityTimeoutSeconds: 30 })
        expect(received.map((m) => m.body).sort()).toEqual(["fine", "small"])
      }),
    { maxMessageBytes: 2048 }
  )
}

/** With faults: transient per-entry failures (not the sender's fault), and whole-call outages. */
const faultCases = <R>({ runWithFaults, receiveUntil }: Cases<R>): void => {
  runWithFaults(
    "answers transient per-entry failures as not the sender's fault, and does not store those messages",
    (faults) =>
      Effect.gen(function* () {
        const queue = yield* FallbackQueue.FallbackQueue
        yield* faults.failSends((m) => (m.body.startsWith("flaky") ? "InternalError" : undefined))
        const outcomes = yield* queue.send(messages(["a", "flaky-1", "b", "flaky-2"]))
        expect(outcomes.map((o) => (o._tag === "Sent" ? "Sent" : `${o.code}/${o.senderFault}`))).toEqual([
          "Sent",
          "InternalError/false",
          "Sent",
          "InternalError/false"
        ])
        yield* faults.clear
        const retried = yield* queue.send([{ id: "retry", body: "flaky-1" }])
        expect(retried[0]?._tag).toBe("Sent")
        const received = yield* receiveUntil(
          4,
          { maxMessages: 10, visibilityTimeoutSeconds: 30 },
          { maxPolls: 6 }
        )
        expect(received.map((m) => m.body).sort()).toEqual(["a", "b", "flaky-1"])
      })
  )

  runWithFaults("fails every call during an outage as Unavailable, retryable", (faults) =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      yield* faults.outage
      const sendError = yield* Effect.flip(queue.send(messages(["x"])))
      expect(sendError._tag).toBe("FallbackQueueError")
      expect(sendError.reason).toBe("Unavailable")
      expect(sendError.isRetryable).toBe(true)
      expect((yield* Effect.flip(queue.receive({ maxMessages: 1 }))).reason).toBe("Unavailable")
      yield* faults.clear
      expect((yield* queue.send(messages(["x"])))[0]?._tag).toBe("Sent")
    })
  )
}

/** Batches that break the batch rules refused whole; batches packed to the size limits accepted. */
const batchCases = <R>({ run, receiveUntil }: Cases<R>): void => {
  run("refuses a batch that breaks the batch rules as a whole: InvalidRequest, not retryable", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const duplicate = yield* Effect.flip(
        queue.send([
          { id: "same", body: "1" },
          { id: "same", body: "2" }
        ])
      )
      expect(duplicate.reason).toBe("InvalidRequest")
      expect(duplicate.isRetryable).toBe(false)
      expect((yield* Effect.flip(queue.send([]))).reason).toBe("InvalidRequest")
      expect(yield* receiveUntil(1, { maxMessages: 10 }, { maxPolls: 2 })).toEqual([])
    })
  )

  run("accepts batches packed to the size limits: 30 records of 100 KiB in messages of up to 1 MiB", () =>
    Effect.gen(function* () {
      const queue = yield* FallbackQueue.FallbackQueue
      const encoder = new TextEncoder()
      const records = Array.from({ length: 30 }, (_, index) => ({
        index,
        data: encoder.encode(JSON.stringify({ n: index, pad: "p".repeat(100 * 1024) }))
      }))
      const { batches } = encodeFallbackMessages(records, FallbackQueue.defaultLimits)
      const packed = batches.flat()
      // Each message holds several records and no batch goes over the limits.
      expect(packed.length).toBeLessThan(records.length)
      for (const batch of batches) {
        const bytes = batch.reduce((n, m) => n + Buffer.byteLength(m.message.body, "utf8"), 0)
        expect(bytes).toBeLessThanOrEqual(FallbackQueue.defaultLimits.maxBatchBytes)
        const outcomes = yield* queue.send(batch.map((m) => m.message))
        expect(outcomes.map((o) => o._tag)).toEqual(batch.map(() => "Sent"))
      }
      const received = yield* receiveUntil(packed.length, { maxMessages: 10, visibilityTimeoutSeconds: 60 })
      const numbers = received
        .flatMap((m) => (JSON.parse(m.body) as { records: Array<{ n: number }> }).records.map((r) => r.n))
        .sort((a, b) => a - b)
      expect(numbers).toEqual(records.map((r) => r.index))
    })
  )
}
