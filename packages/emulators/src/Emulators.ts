/**
 * The one way an AWS emulator comes to life in Spillway, for the AWS tests and for `spillway dev
 * --backend emulators`: each server is a scoped resource, started in-process on 127.0.0.1 on a
 * port the OS picks and stopped (open connections closed) when its scope closes, so nothing
 * outlives a test file or a run.
 *
 * - `kinesalite` stands for Kinesis Data Streams (streams, shards, PutRecords, GetRecords), in
 *   memory, with zero CREATING/UPDATING delays.
 * - `fauxqs` stands for SQS (queues, visibility timeouts, redrive to a dead-letter queue) and S3
 *   (buckets and objects, path-style URLs).
 * - `start` is the bundle `spillway dev` runs on: both servers, the stream (ACTIVE when `start`
 *   answers), the fallback queue with its dead-letter queue, and the backup bucket.
 *
 * What they do not do: neither enforces AWS's throughput limits — kinesalite never answers
 * `ProvisionedThroughputExceededException` and fauxqs never throttles — nor fails on its own. The
 * failures AWS produces (per-entry throttling inside a 200, 503s, expired iterators, reset
 * connections) are injected by `FaultProxy` in front of a server. Signatures are not checked.
 *
 * Nothing here is imported by a Lambda bundle: `@spillway/aws` only has this package as a
 * devDependency, so fauxqs' web server and kinesalite's LevelDB never ship to Lambda. This package
 * does not import `@spillway/aws` either (its tests depend on this one); the client options below
 * are plain values that its `ClientConfig.ClientOptions` and `S3Client.Options` accept as they are.
 */
import type { Server } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from "@aws-sdk/client-kinesis"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Data, Effect, Schedule, type Scope } from "effect"
import { type FauxqsServer, startFauxqs } from "fauxqs"

/** An emulator that would not start or set up; `cause` is the server's or the SDK's own error. */
export class EmulatorError extends Data.TaggedError("EmulatorError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export const region = "us-east-1"
/** Emulators accept any credentials; passing them keeps the SDK away from the instance metadata service. */
export const credentials = { accessKeyId: "test", secretAccessKey: "test" }

/** What an SDK client needs to reach an emulator. */
export interface ClientOptions {
  readonly region: string
  readonly endpoint: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
}

/** Path-style: fauxqs serves S3 on one host, not on a host per bucket. */
export interface S3ClientOptions extends ClientOptions {
  readonly forcePathStyle: true
}

// ---------------------------------------------------------------------------------------------
// The servers

/** kinesalite is CommonJS and ships no types: this is the part of its API used here. */
type KinesaliteFactory = (options: {
  readonly createStreamMs: number
  readonly deleteStreamMs: number
  readonly updateStreamMs: number
  readonly shardLimit: number
}) => Server

export interface Kinesalite {
  readonly endpoint: string
  readonly client: ClientOptions
}

/** kinesalite on a free port, in memory, for the life of the scope. */
export const kinesalite: Effect.Effect<Kinesalite, EmulatorError, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => {
      const create = createRequire(import.meta.url)("kinesalite") as KinesaliteFactory
      // Zero delays: a real stream stays CREATING for seconds, which a local run need not wait for.
      const server = create({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
      return new Promise<Server>((resolve, reject) => {
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    },
    catch: (cause) => new EmulatorError({ message: `cannot start kinesalite: ${String(cause)}`, cause })
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(
  Effect.map((server): Kinesalite => {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return { endpoint, client: { region, endpoint, credentials } }
  })
)

export interface Queue {
  readonly queueUrl: string
  readonly queueArn: string
}

export interface Fauxqs {
  readonly endpoint: string
  readonly sqs: ClientOptions
  readonly s3: S3ClientOptions
  readonly createQueue: (
    name: string,
    attributes?: Readonly<Record<string, string>>
  ) => Effect.Effect<Queue, EmulatorError>
  /** Creates the bucket; answers its name. */
  readonly createBucket: (name: string) => Effect.Effect<string, EmulatorError>
  /** Bodies of every message the queue holds, visible, delayed or in flight. */
  readonly messageBodies: (queueName: string) => Effect.Effect<ReadonlyArray<string>, EmulatorError>
}

const fauxqsHandle = (server: FauxqsServer): Fauxqs => ({
  endpoint: server.address,
  sqs: { region, endpoint: server.address, credentials },
  s3: { region, endpoint: server.address, credentials, forcePathStyle: true },
  createQueue: (name, attributes = {}) =>
    Effect.try({
      try: () => {
        const { queueUrl, queueArn } = server.createQueue(name, { attributes: { ...attributes } })
        return { queueUrl, queueArn }
      },
      catch: (cause) =>
        new EmulatorError({ message: `cannot create the queue ${name}: ${String(cause)}`, cause })
    }),
  createBucket: (name) =>
    Effect.try({
      try: () => server.createBucket(name).bucketName,
      catch: (cause) =>
        new EmulatorError({ message: `cannot create the bucket ${name}: ${String(cause)}`, cause })
    }),
  messageBodies: (queueName) =>
    Effect.suspend(() => {
      const queue = server.inspectQueue(queueName)
      return queue === undefined
        ? Effect.fail(new EmulatorError({ message: `no queue ${queueName} on fauxqs` }))
        : Effect.succeed([
            ...queue.messages.ready.map((m) => m.body),
            ...queue.messages.delayed.map((m) => m.body),
            ...queue.messages.inflight.map((m) => m.message.body)
          ])
    })
})

/** fauxqs (SQS and S3) on a free port, for the life of the scope. */
export const fauxqs: Effect.Effect<Fauxqs, EmulatorError, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => startFauxqs({ port: 0, logger: false }),
    catch: (cause) => new EmulatorError({ message: `cannot start fauxqs: ${String(cause)}`, cause })
  }),
  (server) => Effect.promise(() => server.stop()).pipe(Effect.ignore)
).pipe(Effect.map(fauxqsHandle))

// ---------------------------------------------------------------------------------------------
// Streams

/**
 * A Kinesis SDK client for kinesalite, for the life of the scope. HTTP/1.1: the Kinesis client
 * defaults to HTTP/2, which kinesalite does not speak.
 */
export const kinesisClient = (options: ClientOptions): Effect.Effect<KinesisClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new KinesisClient({ ...options, requestHandler: new NodeHttpHandler() })),
    (client) => Effect.sync(() => client.destroy())
  )

/** Creates a stream and waits (bounded, ~2 s) until it is ACTIVE; answers its ARN. */
export const createStream = (
  client: KinesisClient,
  streamName: string,
  shardCount: number
): Effect.Effect<string, EmulatorError> =>
  Effect.tryPromise({
    try: () => client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount })),
    catch: (cause) =>
      new EmulatorError({ message: `cannot create the stream ${streamName}: ${String(cause)}`, cause })
  }).pipe(
    Effect.andThen(
      // Even with createStreamMs 0 the stream turns ACTIVE on a later tick.
      Effect.tryPromise({
        try: () => client.send(new DescribeStreamSummaryCommand({ StreamName: streamName })),
        catch: (cause) =>
          new EmulatorError({ message: `cannot describe the stream ${streamName}: ${String(cause)}`, cause })
      }).pipe(
        Effect.flatMap(({ StreamDescriptionSummary: s }) =>
          s?.StreamStatus === "ACTIVE" && s.StreamARN !== undefined
            ? Effect.succeed(s.StreamARN)
            : Effect.fail(new EmulatorError({ message: `stream ${streamName} did not become ACTIVE` }))
        ),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 100 })))
      )
    )
  )

// ---------------------------------------------------------------------------------------------
// The bundle `spillway dev` runs on

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
  readonly kinesis: ClientOptions
  readonly sqs: ClientOptions
  readonly s3: S3ClientOptions
}

/** Starts both emulators and creates the stream, the queues and the bucket; stops them when the scope closes. */
export const start = Effect.fn("Emulators.start")(function* (
  options: Options = {}
): Effect.fn.Return<Running, EmulatorError, Scope.Scope> {
  const streamName = options.streamName ?? "spillway-dev"
  const queueName = options.queueName ?? "spillway-fallback"
  const kinesisServer = yield* kinesalite
  const fauxqsServer = yield* fauxqs
  const deadLetter = yield* fauxqsServer.createQueue(`${queueName}-dlq`)
  const queue = yield* fauxqsServer.createQueue(queueName, {
    VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 5),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: deadLetter.queueArn,
      maxReceiveCount: options.maxReceiveCount ?? 1000
    })
  })
  const archiveBucket = yield* fauxqsServer.createBucket(options.archiveBucket ?? "spillway-backup")
  const client = yield* kinesisClient(kinesisServer.client)
  const streamArn = yield* createStream(client, streamName, options.shardCount ?? 2)
  return {
    region,
    kinesisEndpoint: kinesisServer.endpoint,
    sqsEndpoint: fauxqsServer.endpoint,
    streamName,
    streamArn,
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    deadLetterQueueUrl: deadLetter.queueUrl,
    archiveBucket,
    kinesis: kinesisServer.client,
    sqs: fauxqsServer.sqs,
    s3: fauxqsServer.s3
  }
})
