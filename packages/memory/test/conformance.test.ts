/**
 * The in-memory backends against the shared conformance suites (`packages/core/test/conformance`),
 * on `TestClock`: the same tests the AWS backends pass against kinesalite and fauxqs.
 */
import { FallbackQueue } from "@spillway/core"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { fallbackQueueSuite, QueueFaults } from "../../core/test/conformance/FallbackQueueSuite.js"
import { recordStreamSuite, StreamFaults } from "../../core/test/conformance/RecordStreamSuite.js"
import * as MemoryQueue from "../src/MemoryQueue.js"
import * as MemoryStream from "../src/MemoryStream.js"

const retentionHours = 24

const streamFaults = Layer.effect(
  StreamFaults,
  Effect.map(MemoryStream.MemoryStream, (stream) =>
    StreamFaults.of({
      failEntries: (inject) => stream.injectEntryFailures((entry) => inject(entry)),
      failPuts: (reason) => (reason === "Throttled" ? stream.startThrottling() : stream.startOutage()),
      // Retention is time: every record written so far is older than the retention an hour from now.
      trimWritten: TestClock.adjust(`${retentionHours + 1} hours`),
      clear: stream.clearFaults
    })
  )
)

recordStreamSuite({
  name: "MemoryStream",
  clock: "test",
  makeLayer: () =>
    Layer.provideMerge(
      streamFaults,
      MemoryStream.layerMemory({
        shardCount: 2,
        retentionHours,
        // The per-shard budget is a fault of its own (tested in MemoryStream.test.ts); here it must
        // not throttle the suite's bursts, which all happen in the same simulated second.
        recordsPerSecondPerShard: 1_000_000,
        bytesPerSecondPerShard: 1024 * 1024 * 1024
      })
    )
})

fallbackQueueSuite({
  name: "MemoryQueue",
  clock: "test",
  makeLayer: (queue) =>
    Layer.provideMerge(
      Layer.effect(
        QueueFaults,
        Effect.map(MemoryQueue.MemoryQueue, (handle) =>
          QueueFaults.of({
            failSends: (inject) => handle.failSends(inject),
            outage: handle.startOutage(),
            clear: Effect.andThen(handle.endOutage, handle.failSends(undefined))
          })
        )
      ),
      MemoryQueue.layerMemory({
        limits: { ...FallbackQueue.defaultLimits, maxMessageBytes: queue.maxMessageBytes }
      })
    )
})
