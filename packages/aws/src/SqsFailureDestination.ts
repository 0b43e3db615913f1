/**
 * `FailureDestination` on an SQS queue: each `OnFailureRecord` becomes one message whose body is
 * the record's JSON exactly as the Kinesis event source mapping writes it (docs/aws-behaviour.md §2.6), so a
 * replay tool reads records sent here and records written by AWS the same way.
 *
 * A record that does not encode is refused as `InvalidRequest` before any call. Service failures
 * map onto the destination's three reasons: throttling, 5xx and network faults are `Unavailable`
 * (retryable: in production the sender is Lambda itself, which keeps trying a destination that is
 * down; the event source mapping emulation does the same), credentials and KMS problems are
 * `AccessDenied`, and everything else — including a queue that does not exist — is `InvalidRequest`.
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs"
import { FailureDestination, OnFailure } from "@spillway/core"
import { type Config, Effect, Layer, Schema } from "effect"
import * as AwsErrors from "./internal/awsErrors.js"
import { SqsClient } from "./SqsClient.js"
import * as SqsFallbackQueue from "./SqsFallbackQueue.js"

export interface Options {
  readonly queueUrl: string
}

const encode = Schema.encodeEffect(OnFailure.OnFailureRecordJson)

const destinationError = (
  reason: FailureDestination.FailureDestinationError["reason"],
  message: string,
  cause?: unknown
) =>
  new FailureDestination.FailureDestinationError({
    reason,
    message,
    ...(cause === undefined ? {} : { cause })
  })

export const make = (options: Options): Effect.Effect<FailureDestination.Service, never, SqsClient> =>
  Effect.gen(function* () {
    const client = yield* SqsClient
    const send = Effect.fn("SqsFailureDestination.send")(function* (record: OnFailure.OnFailureRecord) {
      const body = yield* encode(record).pipe(
        Effect.mapError((error) =>
          destinationError("InvalidRequest", `not a valid on-failure record: ${error.message}`)
        )
      )
      yield* Effect.tryPromise({
        try: (signal) =>
          client.send(new SendMessageCommand({ QueueUrl: options.queueUrl, MessageBody: body }), {
            abortSignal: signal
          }),
        catch: (error) => {
          const failure = AwsErrors.inspect(error)
          const reason = SqsFallbackQueue.reasonOf(failure)
          return destinationError(
            reason === "Throttled" || reason === "Unavailable"
              ? "Unavailable"
              : reason === "AccessDenied"
                ? "AccessDenied"
                : "InvalidRequest",
            `SendMessage: ${AwsErrors.describe(failure)}`,
            error
          )
        }
      })
    })
    return FailureDestination.FailureDestination.of({ send })
  })

export const layer = (
  options: Options
): Layer.Layer<FailureDestination.FailureDestination, never, SqsClient> =>
  Layer.effect(FailureDestination.FailureDestination, make(options))

/** The queue from `Config`: `FAILURE_QUEUE_URL`. */
export const layerConfig: Layer.Layer<FailureDestination.FailureDestination, Config.ConfigError, SqsClient> =
  Layer.effect(
    FailureDestination.FailureDestination,
    Effect.flatMap(SqsFallbackQueue.queueUrl("FAILURE_QUEUE_URL"), (queueUrl) => make({ queueUrl }))
  )
