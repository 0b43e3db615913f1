/**
 * The redriver function: the fallback queue's SQS events through `Redrive`, which puts the parked
 * records back into the stream; the messages it could not finish are reported, so SQS keeps them
 * (they come back after the visibility timeout, and the queue's redrive policy dead-letters a
 * message that keeps failing).
 *
 * Messages are redriven `sliceSize` at a time while the deadline allows; the messages of slices
 * not finished are reported with the failed ones. A message whose records reached the stream
 * before its slice was cut off is sent again: its records go into the stream twice, which the
 * processor's dedup cache absorbs.
 */
import { type FallbackQueue, LambdaEvents, type RecordStream, Redrive } from "@spillway/core"
import { Array as Arr, Effect, Layer } from "effect"
import * as BatchResponse from "../runtime/BatchResponse.js"
import * as Deadline from "../runtime/Deadline.js"
import * as LambdaHandler from "../runtime/LambdaHandler.js"

/** Messages per slice (one SQS batch's worth): the deadline is looked at between slices. */
export const sliceSize = 10

export type Services = RecordStream.RecordStream | FallbackQueue.FallbackQueue

export const handle = Effect.fn("Redriver.handle")(function* (
  event: LambdaEvents.SqsEvent,
  deadline: Deadline.Deadline
) {
  const { finished, unfinished } = yield* Deadline.forEachUnit(
    deadline,
    Arr.chunksOf(event.Records, sliceSize),
    (Records) => Redrive.redriveSqsEvent({ Records })
  )
  const failed = finished.flatMap(({ result }) => result.result.failed)
  const unfinishedMessages = unfinished.flat()
  yield* BatchResponse.noteUnfinished("messages", unfinishedMessages.length, deadline)
  for (const failure of failed) {
    yield* Effect.logWarning(`message kept on the queue: ${failure.reason}`).pipe(
      Effect.annotateLogs({ messageId: failure.messageId })
    )
  }
  const stored = finished.reduce((n, { result }) => n + result.result.stored, 0)
  const reparked = finished.reduce((n, { result }) => n + result.result.reparked, 0)
  yield* Effect.logInfo(
    `redrove ${event.Records.length} messages: ${stored} records stored, ${reparked} parked again, ${failed.length} messages failed, ${unfinishedMessages.length} unfinished`
  ).pipe(
    Effect.annotateLogs({
      messages: event.Records.length,
      stored,
      reparked,
      failed: failed.length,
      unfinished: unfinishedMessages.length
    })
  )
  return yield* BatchResponse.respond({
    failed: failed.map((failure) => failure.messageId),
    unfinished: unfinishedMessages.map((message) => message.messageId)
  })
})

/** The redriver's handler over `layer` (`AwsPipeline.redriver` deployed). */
export const make = <E>(
  layer: Layer.Layer<Services, E>,
  options?: LambdaHandler.Options
): LambdaHandler.Handler<LambdaEvents.BatchResponse> =>
  LambdaHandler.make(
    Layer.merge(layer, BatchResponse.layerConfig),
    {
      name: "redriver",
      event: LambdaEvents.SqsEvent,
      eventDescription: "an SQS event (Records of the fallback queue's event source mapping)",
      handle: (event, { deadline }) => handle(event, deadline)
    },
    options
  )
