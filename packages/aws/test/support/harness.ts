/**
 * Per-test AWS backends for the conformance suites: a fresh stream on kinesalite or a fresh queue
 * on fauxqs, reached through a `FaultProxy` whose interceptor turns the suites' fault hooks into
 * the wire-level failures Kinesis and SQS produce. Everything is scoped to the test.
 *
 * Injected per-entry failures are faithful: the failing entries are removed from the request
 * before it reaches the emulator, so — as on AWS — a failed entry is not stored.
 */
import type * as Kinesis from "@aws-sdk/client-kinesis"
import type * as Sqs from "@aws-sdk/client-sqs"
import { FallbackQueue, RecordStream } from "@spillway/core"
import { Emulators, FaultProxy } from "@spillway/emulators"
import { Conformance } from "@spillway/testing"
import { Context, Effect, Layer } from "effect"
import * as KinesisClient from "../../src/KinesisClient.js"
import * as KinesisRecordStream from "../../src/KinesisRecordStream.js"
import * as SqsClient from "../../src/SqsClient.js"
import * as SqsFallbackQueue from "../../src/SqsFallbackQueue.js"
import { createStream, uniqueName } from "./streams.js"

const { credentials, region } = Emulators

const { QueueFaults, StreamFaults } = Conformance
type QueueFaults = Conformance.QueueFaults
type StreamFaults = Conformance.StreamFaults

// ---------------------------------------------------------------------------------------------
// Kinesis

interface WireEntry {
  readonly PartitionKey: string
  readonly Data: string
}

interface WireResult {
  readonly SequenceNumber?: string
  readonly ShardId?: string
  readonly ErrorCode?: string
  readonly ErrorMessage?: string
}

/** The fault switches of one stream, as the interceptor reads them. */
export interface KinesisFaultState {
  inject: ((entry: RecordStream.PutEntry) => RecordStream.EntryErrorCode | undefined) | undefined
  /** Whole PutRecords calls fail with this (Unavailable: every call). */
  failure: "Throttled" | "Unavailable" | undefined
  /** Decides per PutRecords call (1-based count) whether it answers 503. */
  failCall: ((call: number) => boolean) | undefined
  /** Decides per GetRecords call (1-based count) whether it answers ExpiredIteratorException. */
  expireIterator: ((call: number) => boolean) | undefined
  getRecordsCalls: number
  /** Sequence numbers of every record stored through the proxy. */
  readonly written: Set<string>
  /** Sequence numbers GetRecords no longer returns (fallen out of retention). */
  readonly trimmed: Set<string>
  putCalls: number
}

export const newKinesisFaultState = (): KinesisFaultState => ({
  inject: undefined,
  failure: undefined,
  failCall: undefined,
  expireIterator: undefined,
  getRecordsCalls: 0,
  written: new Set(),
  trimmed: new Set(),
  putCalls: 0
})

const kinesisError = (status: number, type: string, message: string): FaultProxy.Action => ({
  _tag: "Respond",
  status,
  body: { __type: type, message }
})

const unavailable = kinesisError(
  503,
  "ServiceUnavailable",
  "Service Unavailable (injected by the fault proxy)"
)

export const kinesisInterceptor =
  (state: KinesisFaultState, streamName: string): FaultProxy.Interceptor =>
  ({ operation, body }) => {
    if (state.failure === "Unavailable") return unavailable
    if (operation === "GetRecords") {
      if (state.expireIterator?.(++state.getRecordsCalls) === true) {
        return kinesisError(
          400,
          "ExpiredIteratorException",
          "Iterator expired (injected by the fault proxy)."
        )
      }
      return {
        _tag: "Rewrite",
        body,
        response: (answer) => {
          const out = answer as { Records?: Array<WireResult>; MillisBehindLatest?: number }
          const records = out.Records ?? []
          const kept = records.filter((r) => !state.trimmed.has(r.SequenceNumber ?? ""))
          // Kinesis would have started past trimmed records, so a page emptied here is not the
          // tip: newer records follow it.
          return kept.length < records.length
            ? { ...out, Records: kept, MillisBehindLatest: Math.max(out.MillisBehindLatest ?? 0, 1000) }
            : out
        }
      }
    }
    if (operation !== "PutRecords") return FaultProxy.forward
    state.putCalls++
    if (state.failure === "Throttled") {
      return kinesisError(
        400,
        "ProvisionedThroughputExceededException",
        `Rate exceeded for stream ${streamName} under account 000000000000.`
      )
    }
    if (state.failCall?.(state.putCalls) === true) return unavailable
    const request = body as { Records: Array<WireEntry> }
    const codes = request.Records.map((r) =>
      state.inject?.({ partitionKey: r.PartitionKey, data: Buffer.from(r.Data, "base64") })
    )
    const merge = (answer: { Records?: Array<WireResult> }) => {
      let next = 0
      const records = codes.map((code): WireResult => {
        if (code === undefined) return answer.Records?.[next++] ?? {}
        return {
          ErrorCode: code,
          ErrorMessage:
            code === "InternalFailure"
              ? "Internal service failure."
              : `Rate exceeded for shard in stream ${streamName} under account 000000000000.`
        }
      })
      for (const r of records) if (r.SequenceNumber !== undefined) state.written.add(r.SequenceNumber)
      return {
        ...answer,
        FailedRecordCount: records.filter((r) => r.ErrorCode !== undefined).length,
        Records: records
      }
    }
    const kept = request.Records.filter((_, i) => codes[i] === undefined)
    if (kept.length === 0) return { _tag: "Respond", status: 200, body: merge({ Records: [] }) }
    return {
      _tag: "Rewrite",
      body: { ...request, Records: kept },
      response: (answer) => merge(answer as { Records?: Array<WireResult> })
    }
  }

export interface KinesisHarnessService {
  readonly streamName: string
  readonly streamArn: string
  readonly proxy: FaultProxy.FaultProxy
  readonly state: KinesisFaultState
  /** An SDK client through the proxy, for assertions on the raw API. */
  readonly client: Kinesis.KinesisClient
}

export class KinesisHarness extends Context.Service<KinesisHarness, KinesisHarnessService>()(
  "test/KinesisHarness"
) {}

export interface KinesisLayerOptions {
  readonly shardCount?: number
  readonly readPageSize?: number
}

/** A fresh stream behind a fault proxy, served as `RecordStream`, with its `StreamFaults`. */
export const kinesisLayer = (
  kinesaliteEndpoint: string,
  options: KinesisLayerOptions = {}
): Layer.Layer<RecordStream.RecordStream | StreamFaults | KinesisHarness | KinesisClient.KinesisClient> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const proxy = yield* FaultProxy.scoped(kinesaliteEndpoint)
      const client = yield* KinesisClient.make({ region, endpoint: proxy.endpoint, credentials })
      const streamName = uniqueName("stream")
      const streamArn = yield* createStream(client, streamName, options.shardCount ?? 2)
      const state = newKinesisFaultState()
      proxy.setInterceptor(kinesisInterceptor(state, streamName))
      const stream = yield* KinesisRecordStream.make({
        streamName,
        streamArn,
        ...(options.readPageSize === undefined ? {} : { readPageSize: options.readPageSize })
      }).pipe(Effect.provideService(KinesisClient.KinesisClient, client))
      const faults = StreamFaults.of({
        failEntries: (inject) =>
          Effect.sync(() => {
            state.inject = inject
          }),
        failPuts: (reason) =>
          Effect.sync(() => {
            state.failure = reason
          }),
        trimWritten: Effect.sync(() => {
          for (const sequence of state.written) state.trimmed.add(sequence)
        }),
        clear: Effect.sync(() => {
          state.inject = undefined
          state.failure = undefined
          state.failCall = undefined
          state.expireIterator = undefined
        })
      })
      return Context.make(RecordStream.RecordStream, stream).pipe(
        Context.add(StreamFaults, faults),
        Context.add(KinesisHarness, { streamName, streamArn, proxy, state, client }),
        Context.add(KinesisClient.KinesisClient, client)
      )
    })
  )

// ---------------------------------------------------------------------------------------------
// SQS

interface WireBatchEntry {
  readonly Id: string
  readonly MessageBody: string
}

export interface SqsFaultState {
  inject: ((message: FallbackQueue.OutgoingMessage) => string | undefined) | undefined
  outage: boolean
}

const sqsUnavailable: FaultProxy.Action = {
  _tag: "Respond",
  status: 503,
  body: {
    __type: "com.amazonaws.sqs#ServiceUnavailable",
    message: "Service Unavailable (injected by the fault proxy)"
  },
  headers: { "x-amzn-query-error": "ServiceUnavailable;Receiver" }
}

export const sqsInterceptor =
  (state: SqsFaultState): FaultProxy.Interceptor =>
  ({ operation, body }) => {
    if (state.outage) return sqsUnavailable
    if (operation !== "SendMessageBatch" || state.inject === undefined) return FaultProxy.forward
    const request = body as { Entries: Array<WireBatchEntry> }
    const codes = request.Entries.map((e) => state.inject?.({ id: e.Id, body: e.MessageBody }))
    const injected = request.Entries.flatMap((e, i) => {
      const code = codes[i]
      return code === undefined
        ? []
        : [
            {
              Id: e.Id,
              SenderFault: false,
              Code: code,
              Message: "Internal service failure (injected by the fault proxy)"
            }
          ]
    })
    if (injected.length === 0) return FaultProxy.forward
    const kept = request.Entries.filter((_, i) => codes[i] === undefined)
    if (kept.length === 0) return { _tag: "Respond", status: 200, body: { Successful: [], Failed: injected } }
    return {
      _tag: "Rewrite",
      body: { ...request, Entries: kept },
      response: (answer) => {
        const out = answer as { Successful?: Array<unknown>; Failed?: Array<unknown> }
        return { ...out, Failed: [...(out.Failed ?? []), ...injected] }
      }
    }
  }

export interface SqsHarnessService {
  readonly queueUrl: string
  readonly proxy: FaultProxy.FaultProxy
  readonly state: SqsFaultState
  readonly client: Sqs.SQSClient
}

export class SqsHarness extends Context.Service<SqsHarness, SqsHarnessService>()("test/SqsHarness") {}

/** A fresh queue behind a fault proxy, served as `FallbackQueue`, with its `QueueFaults`. */
export const sqsLayer = (
  fauxqs: Emulators.Fauxqs,
  queue: { readonly maxMessageBytes?: number; readonly attributes?: Readonly<Record<string, string>> } = {}
): Layer.Layer<FallbackQueue.FallbackQueue | QueueFaults | SqsHarness | SqsClient.SqsClient> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const proxy = yield* FaultProxy.scoped(fauxqs.endpoint)
      const client = yield* SqsClient.make({ region, endpoint: proxy.endpoint, credentials })
      const maxMessageBytes = queue.maxMessageBytes ?? FallbackQueue.defaultLimits.maxMessageBytes
      const { queueUrl } = yield* fauxqs
        .createQueue(uniqueName("queue"), {
          MaximumMessageSize: String(maxMessageBytes),
          ...queue.attributes
        })
        .pipe(Effect.orDie)
      const state: SqsFaultState = { inject: undefined, outage: false }
      proxy.setInterceptor(sqsInterceptor(state))
      const fallback = yield* SqsFallbackQueue.make({
        queueUrl,
        limits: { ...FallbackQueue.defaultLimits, maxMessageBytes }
      }).pipe(Effect.provideService(SqsClient.SqsClient, client), Effect.orDie)
      const faults = QueueFaults.of({
        failSends: (inject) =>
          Effect.sync(() => {
            state.inject = inject
          }),
        outage: Effect.sync(() => {
          state.outage = true
        }),
        clear: Effect.sync(() => {
          state.inject = undefined
          state.outage = false
        })
      })
      return Context.make(FallbackQueue.FallbackQueue, fallback).pipe(
        Context.add(QueueFaults, faults),
        Context.add(SqsHarness, { queueUrl, proxy, state, client }),
        Context.add(SqsClient.SqsClient, client)
      )
    })
  )
