/**
 * The on-failure queue on SQS, read by `spillway reprocess-failures`: the queue the processor's
 * event source mapping sends the ranges of discarded batches to. Its messages are plain SQS
 * messages, so the queue is read through `SqsFallbackQueue` (receive, delete, change visibility:
 * the same SQS calls and error mapping), with a one-second long poll so an empty answer means the
 * queue has nothing visible rather than "this server had nothing" (SQS short polls sample a subset
 * of its servers). `GetQueueAttributes` first checks that the queue exists and gives its depth.
 */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { SqsClient, SqsFallbackQueue } from "@spillway/aws"
import { Effect } from "effect"
import { Refused } from "../Refusal.js"
import type { Queue } from "../reprocess-failures/ReprocessFailures.js"

export const make = (
  command: string,
  client: SqsClient.SqsClient["Service"],
  queueUrl: string
): Effect.Effect<Queue, Refused | { readonly message: string }> =>
  Effect.gen(function* () {
    const depth = Effect.tryPromise({
      try: () =>
        client.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
          })
        ),
      catch: SqsFallbackQueue.fromSdk("GetQueueAttributes")
    }).pipe(
      Effect.map(
        ({ Attributes: a = {} }) =>
          Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
      )
    )
    // Before anything is received: a queue that is not there, or not ours to read, is bad input.
    yield* depth.pipe(
      Effect.mapError((error) =>
        error.reason === "NotFound" || error.reason === "AccessDenied" || error.reason === "InvalidRequest"
          ? new Refused({
              command,
              message: `cannot read the on-failure queue ${queueUrl}: ${error.message}`
            })
          : error
      )
    )
    const queue = yield* SqsFallbackQueue.make({ queueUrl, waitTimeSeconds: 1 }).pipe(
      Effect.provideService(SqsClient.SqsClient, client)
    )
    return {
      ...queue,
      name: queueUrl,
      depth: depth.pipe(Effect.orElseSucceed(() => undefined))
    } satisfies Queue
  })
