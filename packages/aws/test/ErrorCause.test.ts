/**
 * A typed error made from an SDK failure keeps that failure as its `cause`, so a log or a
 * debugger sees the original (request id, stack) and not only our one-line message; the errors
 * still encode, cause included, for the places they travel (queue bodies, CLI output).
 */
import { describe, expect, it } from "@effect/vitest"
import { RecordStream } from "@spillway/core"
import { Schema } from "effect"
import * as KinesisReads from "../src/internal/kinesisReads.js"
import * as SqsFallbackQueue from "../src/SqsFallbackQueue.js"

const sdkError = (name: string, status: number) =>
  Object.assign(new Error(`${name} from the service`), { name, $metadata: { httpStatusCode: status } })

describe("errors made from SDK failures", () => {
  it("Kinesis: the reason is ours, the cause is the SDK's error", () => {
    const thrown = sdkError("ProvisionedThroughputExceededException", 400)
    const error = KinesisReads.fromSdk("PutRecords")(thrown)
    expect(error.reason).toBe("Throttled")
    expect(error.message).toBe(
      "PutRecords: ProvisionedThroughputExceededException: ProvisionedThroughputExceededException from the service"
    )
    expect(error.cause).toBe(thrown)
  })

  it("SQS: the same, for the fallback queue", () => {
    const thrown = sdkError("QueueDoesNotExist", 400)
    const error = SqsFallbackQueue.fromSdk("SendMessageBatch")(thrown)
    expect(error.reason).toBe("NotFound")
    expect(error.cause).toBe(thrown)
  })

  it("an error with a cause still encodes, the cause as its name and message", () => {
    const error = KinesisReads.fromSdk("GetRecords")(sdkError("InternalFailure", 500))
    const encoded = Schema.encodeUnknownSync(RecordStream.RecordStreamError)(error)
    expect(encoded).toMatchObject({
      _tag: "RecordStreamError",
      reason: "Unavailable",
      cause: { name: "InternalFailure", message: "InternalFailure from the service" }
    })
  })
})
