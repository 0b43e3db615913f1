/**
 * How a batch function (processor, redriver, failure reprocessor) answers its event source
 * mapping: the partial batch response, `{ batchItemFailures: [{ itemIdentifier }] }`, naming the
 * items that failed and the items the deadline left unfinished, so Lambda retries only those
 * (docs/aws-behaviour.md §2.4, §3.4).
 *
 * Identifiers are Kinesis sequence numbers (Lambda checkpoints before the lowest one and sends
 * everything from there again) or SQS message ids (Lambda deletes the others). A partial response
 * is only read as such when the mapping has `FunctionResponseTypes: ["ReportBatchItemFailures"]`;
 * without it Lambda reads any response as success and would checkpoint past, or delete, items
 * that were never done. `REPORT_BATCH_ITEM_FAILURES=false` says the mapping has it off: any
 * failed or unfinished item then fails the whole invocation (`BatchNotSaved`), so Lambda sends
 * the batch again.
 */
import { type LambdaEvents, RecordStream } from "@spillway/core"
import { Config, Context, Data, Effect, Layer, Metric } from "effect"
import type * as Deadline from "./Deadline.js"

export interface BatchSettingsValues {
  /** `REPORT_BATCH_ITEM_FAILURES`: whether the mapping reads partial batch responses. */
  readonly reportBatchItemFailures: boolean
}

export class BatchSettings extends Context.Service<BatchSettings, BatchSettingsValues>()(
  "spillway/lambdas/BatchSettings"
) {}

export const layerConfig: Layer.Layer<BatchSettings, Config.ConfigError> = Layer.effect(
  BatchSettings,
  Config.all({
    reportBatchItemFailures: Config.Boolean("REPORT_BATCH_ITEM_FAILURES").pipe(Config.withDefault(true))
  })
)

/** Items failed or were left unfinished, and the mapping cannot be told which: the batch is retried whole. */
export class BatchNotSaved extends Data.TaggedError("BatchNotSaved")<{ readonly message: string }> {}

/** Items the deadline left unfinished (records or messages), reported as failed so Lambda sends them again. */
export const itemsUnfinished = Metric.counter("spillway_items_unfinished_at_deadline", { incremental: true })

/** Logs and counts what the deadline left undone. */
export const noteUnfinished = (
  what: string,
  count: number,
  deadline: Deadline.Deadline
): Effect.Effect<void> =>
  count === 0
    ? Effect.void
    : Effect.gen(function* () {
        yield* Metric.update(itemsUnfinished, count)
        const remainingMillis = yield* deadline.remainingMillis
        yield* Effect.logWarning(
          `${count} ${what} left unfinished at the deadline, reported as failed so that Lambda sends them again`
        ).pipe(
          Effect.annotateLogs({ unfinished: count, remainingMillis, marginMillis: deadline.marginMillis })
        )
      })

export interface Outcome {
  /** Identifiers of items that failed. */
  readonly failed: ReadonlyArray<string>
  /** Identifiers of items not done before the deadline. */
  readonly unfinished: ReadonlyArray<string>
  /** `"sequence"`: Kinesis sequence numbers, answered lowest first. */
  readonly order?: "sequence" | "event"
}

/** The partial batch response of `outcome`, or `BatchNotSaved` when the mapping cannot read one. */
export const respond = (
  outcome: Outcome
): Effect.Effect<LambdaEvents.BatchResponse, BatchNotSaved, BatchSettings> =>
  Effect.gen(function* () {
    const { reportBatchItemFailures } = yield* BatchSettings
    const identifiers = [...new Set([...outcome.failed, ...outcome.unfinished])]
    if (outcome.order === "sequence") identifiers.sort(RecordStream.compareSequenceNumbers)
    if (identifiers.length > 0 && !reportBatchItemFailures) {
      return yield* new BatchNotSaved({
        message: `${outcome.failed.length} items failed and ${outcome.unfinished.length} were left unfinished; failing the invocation so that Lambda sends the whole batch again (REPORT_BATCH_ITEM_FAILURES=false: the mapping would read a partial batch response as success)`
      })
    }
    return { batchItemFailures: identifiers.map((itemIdentifier) => ({ itemIdentifier })) }
  })
