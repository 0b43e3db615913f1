/**
 * The emulators the AWS tests run against, started in-process on 127.0.0.1 with ports the OS picks
 * and stopped by the test file's `afterAll`: kinesalite for Kinesis, fauxqs for SQS and S3.
 */
import type { AddressInfo } from "node:net"
import {
  type _Record,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import { Effect, Schedule } from "effect"
import { startFauxqs } from "fauxqs"
import kinesalite from "kinesalite"

export const region = "us-east-1"
/** Emulators accept any credentials; passing them keeps the SDK away from the instance metadata service. */
export const credentials = { accessKeyId: "test", secretAccessKey: "test" }

export interface Emulator {
  readonly endpoint: string
  readonly stop: () => Promise<void>
}

export const startKinesalite = (): Promise<Emulator> => {
  const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}

export type Fauxqs = Emulator & {
  readonly createQueue: (
    name: string,
    attributes?: Readonly<Record<string, string>>
  ) => { readonly queueUrl: string; readonly queueArn: string }
  readonly createBucket: (name: string) => void
  /** Bodies of every message the queue holds, visible or in flight. */
  readonly messageBodies: (queueName: string) => ReadonlyArray<string>
}

export const startFauxqsServer = async (): Promise<Fauxqs> => {
  const server = await startFauxqs({ port: 0, logger: false })
  return {
    endpoint: server.address,
    stop: () => server.stop(),
    createQueue: (name, attributes = {}) => server.createQueue(name, { attributes: { ...attributes } }),
    createBucket: (name) => {
      server.createBucket(name)
    },
    messageBodies: (queueName) => {
      const queue = server.inspectQueue(queueName)
      if (queue === undefined) throw new Error(`no queue ${queueName}`)
      return [
        ...queue.messages.ready.map((m) => m.body),
        ...queue.messages.delayed.map((m) => m.body),
        ...queue.messages.inflight.map((m) => m.message.body)
      ]
    }
  }
}

let counter = 0
/** A name no other test of this process uses. */
export const uniqueName = (prefix: string): string =>
  `${prefix}-${process.pid}-${++counter}-${Math.floor(Math.random() * 1e6)}`

/** Creates a stream and waits (bounded) until it is ACTIVE; returns its ARN. */
export const createStream = (client: KinesisClient, streamName: string, shardCount: number) =>
  Effect.gen(function* () {
    yield* Effect.promise(() =>
      client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount }))
    )
    const summary = yield* Effect.promise(() =>
      client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))
    ).pipe(
      Effect.map((output) => output.StreamDescriptionSummary),
      Effect.filterOrFail(
        (s) => s?.StreamStatus === "ACTIVE",
        () => "stream not active yet"
      ),
      Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 100 }))),
      Effect.orDie
    )
    return summary!.StreamARN!
  })

/** Every record of every shard, from the trim horizon to the tip, shard by shard. */
export const readWholeStream = (client: KinesisClient, streamName: string) =>
  Effect.promise(async () => {
    const records: Array<_Record & { readonly shardId: string }> = []
    const shards = await client.send(new ListShardsCommand({ StreamName: streamName }))
    for (const shard of shards.Shards ?? []) {
      const shardId = shard.ShardId!
      let iterator = (
        await client.send(
          new GetShardIteratorCommand({
            StreamName: streamName,
            ShardId: shardId,
            ShardIteratorType: "TRIM_HORIZON"
          })
        )
      ).ShardIterator
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }))
        for (const record of page.Records ?? []) records.push({ ...record, shardId })
        iterator = (page.Records ?? []).length === 0 ? undefined : page.NextShardIterator
      }
    }
    return records
  })
