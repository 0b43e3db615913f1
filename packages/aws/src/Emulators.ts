/**
 * Kinesis, SQS and S3 emulators started in-process on 127.0.0.1, on ports the OS picks: kinesalite
 * for Kinesis, fauxqs for SQS and S3. `start` is a scoped resource: it creates the stream, the
 * fallback queue (with its dead-letter queue) and the backup bucket, and answers once the stream is
 * ACTIVE; closing the scope stops both servers, so nothing outlives the run. `spillway dev
 * --backend emulators` runs the AWS layers against them.
 *
 * Imported as `@spillway/aws/Emulators`, not from the package index, so that a Lambda bundle of
 * the AWS layers never pulls in the emulators (fauxqs' web server, kinesalite's LevelDB).
 */
import type { Server } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { CreateStreamCommand, DescribeStreamSummaryCommand } from "@aws-sdk/client-kinesis"
import { Data, Effect, Schedule, type Scope } from "effect"
import { startFauxqs } from "fauxqs"
import type * as ClientConfig from "./ClientConfig.js"
import * as KinesisClient from "./KinesisClient.js"
import type * as S3Client from "./S3Client.js"

/** kinesalite is CommonJS and ships no types: this is the part of its API used here. */
type Kinesalite = (options: {
  readonly createStreamMs: number
  readonly deleteStreamMs: number
  readonly updateStreamMs: number
  readonly shardLimit: number
}) => Server

export class EmulatorError extends Data.TaggedError("EmulatorError")<{
  readonly message: string
}> {}

export interface Options {
  /** @default "spillway-dev" */
  readonly streamName?: string
  /** @default 2 */
  readonly shardCount?: number
  /** @default "spillway-fallback" (its dead-letter queue gets the suffix "-dlq") */
  readonly queueName?: string
  /** Receives after which a fallback message moves to the dead-letter queue. @default 1000 */
  readonly maxReceiveCount?: number
  /** Visibility timeout of the fallback queue: how soon a message that failed is tried again. @default 5 */
  readonly visibilityTimeoutSeconds?: number
  /** The S3 bucket the stream's backup is delivered to. @default "spillway-backup" */
  readonly archiveBucket?: string
}

export interface Running {
  readonly region: string
  readonly kinesisEndpoint: string
  readonly sqsEndpoint: string
  readonly streamName: string
  readonly streamArn: string
  readonly queueUrl: string
  readonly queueArn: string
  readonly deadLetterQueueUrl: string
  /** The (empty) S3 bucket on fauxqs for the stream's backup. */
  readonly archiveBucket: string
  /** Client options for Kinesis (`kinesis`), SQS (`sqs`) and S3 (`s3`) pointing at the emulators. */
  readonly kinesis: ClientConfig.ClientOptions
  readonly sqs: ClientConfig.ClientOptions
  /** Path-style: fauxqs serves S3 on one host, not on a host per bucket. */
  readonly s3: S3Client.Options
}

export const region = "us-east-1"
/** Emulators accept any credentials; passing them keeps the SDK away from the instance metadata service. */
export const credentials = { accessKeyId: "test", secretAccessKey: "test" }

const startKinesalite = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => {
      const kinesalite = createRequire(import.meta.url)("kinesalite") as Kinesalite
      // Zero delays: a real stream stays CREATING for seconds, which a local run need not wait for.
      const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
      return new Promise<Server>((resolve, reject) => {
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    },
    catch: (cause) => new EmulatorError({ message: `cannot start kinesalite: ${String(cause)}` })
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const startFauxqsServer = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => startFauxqs({ port: 0, logger: false }),
    catch: (cause) => new EmulatorError({ message: `cannot start fauxqs: ${String(cause)}` })
  }),
  (server) => Effect.promise(() => server.stop()).pipe(Effect.ignore)
)

/** Starts both emulators and creates the stream and queues; stops them when the scope closes. */
export const start = Effect.fn("Emulators.start")(function* (
  options: Options = {}
): Effect.fn.Return<Running, EmulatorError, Scope.Scope> {
  const streamName = options.streamName ?? "spillway-dev"
  const queueName = options.queueName ?? "spillway-fallback"
  const kinesalite = yield* startKinesalite
  const fauxqs = yield* startFauxqsServer
  const kinesisEndpoint = `http://127.0.0.1:${(kinesalite.address() as AddressInfo).port}`
  const kinesis: ClientConfig.ClientOptions = { region, endpoint: kinesisEndpoint, credentials }
  const sqs: ClientConfig.ClientOptions = { region, endpoint: fauxqs.address, credentials }
  const s3: S3Client.Options = { region, endpoint: fauxqs.address, credentials, forcePathStyle: true }

  const deadLetter = yield* Effect.try({
    try: () => fauxqs.createQueue(`${queueName}-dlq`),
    catch: (cause) => new EmulatorError({ message: `cannot create the dead-letter queue: ${String(cause)}` })
  })
  const queue = yield* Effect.try({
    try: () =>
      fauxqs.createQueue(queueName, {
        attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 5),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: deadLetter.queueArn,
            maxReceiveCount: options.maxReceiveCount ?? 1000
          })
        }
      }),
    catch: (cause) => new EmulatorError({ message: `cannot create the fallback queue: ${String(cause)}` })
  })

  const archiveBucket = yield* Effect.try({
    try: () => fauxqs.createBucket(options.archiveBucket ?? "spillway-backup").bucketName,
    catch: (cause) => new EmulatorError({ message: `cannot create the backup bucket: ${String(cause)}` })
  })

  const client = yield* KinesisClient.make(kinesis)
  yield* Effect.tryPromise({
    try: () =>
      client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: options.shardCount ?? 2 })),
    catch: (cause) => new EmulatorError({ message: `cannot create the stream: ${String(cause)}` })
  })
  // Even with createStreamMs 0 the stream turns ACTIVE on a later tick: poll, bounded (~2 s).
  const summary = yield* Effect.tryPromise({
    try: () => client.send(new DescribeStreamSummaryCommand({ StreamName: streamName })),
    catch: (cause) => new EmulatorError({ message: `cannot describe the stream: ${String(cause)}` })
  }).pipe(
    Effect.map((output) => output.StreamDescriptionSummary),
    Effect.filterOrFail(
      (s) => s?.StreamStatus === "ACTIVE" && s.StreamARN !== undefined,
      () => new EmulatorError({ message: `stream ${streamName} did not become ACTIVE` })
    ),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 100 })))
  )

  return {
    region,
    kinesisEndpoint,
    sqsEndpoint: fauxqs.address,
    streamName,
    streamArn: summary?.StreamARN ?? "",
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    deadLetterQueueUrl: deadLetter.queueUrl,
    archiveBucket,
    kinesis,
    sqs,
    s3
  }
})
