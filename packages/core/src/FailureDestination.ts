/**
 * Where the Kinesis event source mapping sends metadata about batches it gave up on (an SQS
 * queue in production). The records themselves stay in the stream; the replay tool reads them
 * back by shard and sequence number.
 */
import { Context, type Effect, Schema } from "effect"
import type { OnFailureRecord } from "./OnFailure.js"

export class FailureDestinationError extends Schema.TaggedError<FailureDestinationError>()(
  "FailureDestinationError",
  {
    reason: Schema.Literals(["Unavailable", "InvalidRequest", "AccessDenied"]),
    message: Schema.String,
    /** What the backend threw or answered, when there was something (an SDK error, say). */
    cause: Schema.optionalKey(Schema.Defect())
  }
) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

export interface Service {
  readonly send: (record: OnFailureRecord) => Effect.Effect<void, FailureDestinationError>
}

export class FailureDestination extends Context.Service<FailureDestination, Service>()(
  "spillway/FailureDestination"
) {}
