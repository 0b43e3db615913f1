/**
 * The per-function layers, built from an environment as a Lambda gets it: each provides the
 * services its stage needs, reads only its own variables, and fails at start naming a missing one.
 * Endpoints point at a closed port on 127.0.0.1: building a layer makes no AWS call.
 */
import { describe, expect, it } from "@effect/vitest"
import { Archive, DedupCache, DocumentSink, FallbackQueue, RecordStream } from "@spillway/core"
import { ConfigProvider, Effect, Layer } from "effect"
import * as AwsPipeline from "../src/AwsPipeline.js"

const streamArn = "arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry"
const queueUrl = "https://sqs.eu-west-1.amazonaws.com/123456789012/fallback"

const base = {
  AWS_REGION: "eu-west-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_ENDPOINT_URL: "http://127.0.0.1:9"
}
const env = {
  ...base,
  STREAM_ARN: streamArn,
  FALLBACK_QUEUE_URL: queueUrl,
  OPENSEARCH_ENDPOINT: "http://127.0.0.1:9",
  ARCHIVE_BUCKET: "spillway-backup",
  FIREHOSE_STREAM_NAME: "spillway-backup-stream"
}

const build = <A, E>(layer: Layer.Layer<A, E>, vars: Record<string, string>) =>
  Layer.build(layer).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))))

describe("AwsPipeline", () => {
  it.live("the redriver's layer provides the stream and the fallback queue named by the environment", () =>
    Effect.gen(function* () {
      const context = yield* build(AwsPipeline.redriver, env)
      const services = yield* Effect.all([RecordStream.RecordStream, FallbackQueue.FallbackQueue]).pipe(
        Effect.provide(context)
      )
      expect(services[0].streamArn).toBe(streamArn)
      expect(services[1].queueArn).toBe("arn:aws:sqs:eu-west-1:123456789012:fallback")
    })
  )

  it.live("the processor's layer needs only the sink's variables, and gives a dedup cache of 10M ids", () =>
    Effect.gen(function* () {
      const context = yield* build(AwsPipeline.processor, {
        ...base,
        OPENSEARCH_ENDPOINT: "http://127.0.0.1:9"
      })
      const [cache, sink] = yield* Effect.all([DedupCache.DedupCache, DocumentSink.DocumentSink]).pipe(
        Effect.provide(context)
      )
      expect((yield* cache.stats).capacity).toBe(DedupCache.defaultCapacity)
      expect(sink.name).toContain("opensearch")
    })
  )

  it.live(
    "the failure reprocessor, the backup replayer and the restore build from the same environment",
    () =>
      Effect.gen(function* () {
        const reprocessor = yield* build(AwsPipeline.failureReprocessor, env)
        expect((yield* Effect.provide(RecordStream.RecordStream, reprocessor)).streamArn).toBe(streamArn)
        const replayer = yield* build(AwsPipeline.backupReplayer, env)
        yield* Effect.provide(Archive.Archive, replayer)
        const restore = yield* build(AwsPipeline.restore, env)
        yield* Effect.provide(Effect.all([Archive.Archive, DocumentSink.DocumentSink]), restore)
      })
  )

  it.live("a function whose variable is missing fails at start, naming it", () =>
    Effect.gen(function* () {
      const { OPENSEARCH_ENDPOINT: _, ...withoutSink } = env
      const error = yield* build(AwsPipeline.processor, withoutSink).pipe(Effect.flip)
      expect(String(error)).toContain("OPENSEARCH_ENDPOINT")
      const { STREAM_ARN: __, ...withoutStream } = env
      const streamError = yield* build(AwsPipeline.redriver, withoutStream).pipe(Effect.flip)
      expect(String(streamError)).toContain("STREAM_ARN")
    })
  )
})
