/**
 * The example's Lambda entry: importing it builds nothing and reads no variable (the bundle's
 * init, and this import, would fail otherwise), and the processor over `Pipeline.processor` reads
 * the sink's variables when its runtime builds, failing the invocation with an
 * `InitializationError` that names a missing or malformed one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Processor } from "@spillway/lambdas"
import { EventFixtures, Harness, LambdaContext } from "@spillway/testing"
import { Effect } from "effect"
import * as Pipeline from "../src/Pipeline.js"

/** Everything the processor reads but the sink's bucket; nothing is reached while building. */
const configured = {
  AWS_REGION: "eu-west-1",
  OPENSEARCH_ENDPOINT: "http://127.0.0.1:1",
  AWS_ENDPOINT_URL: "http://127.0.0.1:1"
}

/** The error the first invocation of a processor configured with `env` answers. */
const startFailure = async (env: Readonly<Record<string, string>>) => {
  const lines: Array<string> = []
  const handler = Processor.make(Pipeline.processor, {
    env,
    shutdown: false,
    output: (line) => lines.push(line)
  })
  try {
    const event = EventFixtures.kinesisEventOfRecords(Harness.records(2))
    const context = Effect.runSync(LambdaContext.make({ timeout: "1 minute" }))
    const error = await handler(event, context).then(
      () => undefined,
      (error: unknown) => error as Error
    )
    return { name: error?.name, message: error?.message ?? "" }
  } finally {
    await handler.dispose()
  }
}

describe("the custom-sink processor entry", () => {
  it("exports the Lambda handler; importing it reads no variable and builds nothing", async () => {
    const entry = await import("../src/processor.js")
    expect(entry.handler).toBeTypeOf("function")
    expect(entry.handler.dispose).toBeTypeOf("function")
    // Nothing was built, so there is nothing to release.
    await entry.handler.dispose()
  })

  it("fails its first invocation naming CUSTOM_SINK_BUCKET when it is missing", async () => {
    const failure = await startFailure(configured)
    expect(failure.name).toBe("InitializationError")
    expect(failure.message).toMatch(/^processor could not start: .*CUSTOM_SINK_BUCKET/s)
  })

  it("fails naming the variable that is malformed, with what it must be", async () => {
    const bucket = await startFailure({ ...configured, CUSTOM_SINK_BUCKET: "Not_A_Bucket" })
    expect(bucket.message).toContain("CUSTOM_SINK_BUCKET")
    expect(bucket.message).toContain("must be an S3 bucket name")
    const prefix = await startFailure({
      ...configured,
      CUSTOM_SINK_BUCKET: "lake",
      CUSTOM_SINK_PREFIX: "/x/"
    })
    expect(prefix.message).toContain("CUSTOM_SINK_PREFIX")
  })

  it("not configured at all, names a missing variable", async () => {
    const failure = await startFailure({})
    expect(failure.name).toBe("InitializationError")
    expect(failure.message).toMatch(/^processor could not start: .*\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/s)
  })
})
