/**
 * Helpers of the AWS tests that are not emulators: unique names, a stream created and ACTIVE (the
 * emulators' own `createStream`, a test failing on a defect), and a read of a whole stream for
 * assertions on what it holds.
 */
import {
  type _Record,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand
} from "@aws-sdk/client-kinesis"
import { Emulators } from "@spillway/emulators"
import { Effect } from "effect"

let counter = 0
/** A name no other test of this process uses. */
export const uniqueName = (prefix: string): string =>
  `${prefix}-${process.pid}-${++counter}-${Math.floor(Math.random() * 1e6)}`

/** Creates a stream and waits (bounded) until it is ACTIVE; returns its ARN. */
export const createStream = (client: KinesisClient, streamName: string, shardCount: number) =>
  Emulators.createStream(client, streamName, shardCount).pipe(Effect.orDie)

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
