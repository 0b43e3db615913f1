/**
 * The one starter: `start` answers with the stream ACTIVE, the fallback queue redriving to its
 * dead-letter queue and the backup bucket in place; closing the scope stops both servers; a
 * question about a queue that does not exist is a typed error; and the fault proxy answers,
 * forwards and counts as its interceptor says.
 */
import { DescribeStreamSummaryCommand, ListStreamsCommand, PutRecordsCommand } from "@aws-sdk/client-kinesis"
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3"
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Emulators, FaultProxy } from "../src/index.js"

const sqsClient = (options: Emulators.ClientOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => new SQSClient(options)),
    (client) => Effect.sync(() => client.destroy())
  )

describe("Emulators.start", () => {
  it.live("creates the stream (ACTIVE), the fallback queue with its dead-letter queue, and the bucket", () =>
    Effect.gen(function* () {
      const running = yield* Emulators.start({ streamName: "s", shardCount: 3, maxReceiveCount: 7 })
      const kinesis = yield* Emulators.kinesisClient(running.kinesis)
      const summary = yield* Effect.promise(() =>
        kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "s" }))
      )
      expect(summary.StreamDescriptionSummary?.StreamStatus).toBe("ACTIVE")
      expect(summary.StreamDescriptionSummary?.OpenShardCount).toBe(3)
      expect(summary.StreamDescriptionSummary?.StreamARN).toBe(running.streamArn)

      const sqs = yield* sqsClient(running.sqs)
      const attributes = yield* Effect.promise(() =>
        sqs.send(new GetQueueAttributesCommand({ QueueUrl: running.queueUrl, AttributeNames: ["All"] }))
      )
      expect(attributes.Attributes?.QueueArn).toBe(running.queueArn)
      expect(attributes.Attributes?.VisibilityTimeout).toBe("5")
      const redrive = JSON.parse(attributes.Attributes?.RedrivePolicy ?? "{}") as {
        deadLetterTargetArn?: string
        maxReceiveCount?: number | string
      }
      expect(Number(redrive.maxReceiveCount)).toBe(7)
      expect(redrive.deadLetterTargetArn).toMatch(/spillway-fallback-dlq$/)

      const s3 = new S3Client(running.s3)
      yield* Effect.addFinalizer(() => Effect.sync(() => s3.destroy()))
      const head = yield* Effect.promise(() =>
        s3.send(new HeadBucketCommand({ Bucket: running.archiveBucket }))
      )
      expect(head.$metadata.httpStatusCode).toBe(200)
      expect(running.archiveBucket).toBe("spillway-backup")
    }).pipe(Effect.scoped)
  )

  it.live("stops both servers when its scope closes", () =>
    Effect.gen(function* () {
      const running = yield* Effect.scoped(Emulators.start())
      for (const endpoint of [running.kinesisEndpoint, running.sqsEndpoint]) {
        const refused = yield* Effect.flip(Effect.tryPromise(() => fetch(endpoint)))
        expect(String(refused.cause)).toContain("fetch failed")
      }
    })
  )
})

describe("Emulators.fauxqs", () => {
  it.live("answers a question about a queue it does not hold with an EmulatorError", () =>
    Effect.gen(function* () {
      const fauxqs = yield* Emulators.fauxqs
      const error = yield* Effect.flip(fauxqs.messageBodies("missing"))
      expect(error._tag).toBe("EmulatorError")
      expect(error.message).toContain("missing")
      yield* fauxqs.createQueue("present")
      expect(yield* fauxqs.messageBodies("present")).toEqual([])
    }).pipe(Effect.scoped)
  )
})

describe("FaultProxy", () => {
  it.live("answers in place of the server when told to, forwards otherwise, and counts both", () =>
    Effect.gen(function* () {
      const kinesalite = yield* Emulators.kinesalite
      const proxy = yield* FaultProxy.scoped(kinesalite.endpoint)
      const client = yield* Emulators.kinesisClient({ ...kinesalite.client, endpoint: proxy.endpoint })
      yield* Emulators.createStream(client, "proxied", 1)
      proxy.setInterceptor(({ operation }) =>
        operation === "PutRecords"
          ? {
              _tag: "Respond",
              status: 400,
              body: { __type: "ProvisionedThroughputExceededException", message: "Rate exceeded" }
            }
          : FaultProxy.forward
      )
      const put = new PutRecordsCommand({
        StreamName: "proxied",
        Records: [{ PartitionKey: "k", Data: new Uint8Array([1]) }]
      })
      const throttled = yield* Effect.flip(Effect.tryPromise(() => client.send(put)))
      expect((throttled.cause as Error).name).toBe("ProvisionedThroughputExceededException")
      const streams = yield* Effect.promise(() => client.send(new ListStreamsCommand({})))
      expect(streams.StreamNames).toContain("proxied")
      proxy.setInterceptor(undefined)
      const stored = yield* Effect.promise(() => client.send(put))
      expect(stored.FailedRecordCount).toBe(0)
      expect(proxy.requests("PutRecords")).toBeGreaterThanOrEqual(2)
      expect(proxy.requests("ListStreams")).toBe(1)
    }).pipe(Effect.scoped)
  )
})
