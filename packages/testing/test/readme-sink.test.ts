import { DocumentSink } from "@spillway/core"
import { Conformance } from "@spillway/testing"
import { Context, Effect, Layer } from "effect"

/** Each document kept as one JSON line in a Map, keyed by id: writing an id again replaces its line. */
class JsonLines extends Context.Service<JsonLines, Map<string, string>>()("example/JsonLines") {}

const jsonLines = (lines: Map<string, string>): DocumentSink.Service => ({
  name: "json-lines",
  write: (documents) =>
    Effect.sync(() =>
      documents.map((document): DocumentSink.WriteOutcome => {
        try {
          lines.set(document.id, JSON.stringify(document.body))
          return DocumentSink.written
        } catch (error) {
          return { _tag: "Rejected", reason: `not JSON: ${String(error)}` }
        }
      })
    )
})

const layer = Layer.effectContext(
  Effect.sync(() => {
    const lines = new Map<string, string>()
    return Context.make(JsonLines, lines).pipe(Context.add(DocumentSink.DocumentSink, jsonLines(lines)))
  })
)

Conformance.documentSinkSuite({
  name: "JSON lines in a Map",
  layer: () => layer,
  clock: "test",
  stored: JsonLines.useSync((lines) => Array.from(lines, ([id, line]) => ({ id, body: JSON.parse(line) }))),
  refusedDocument: (id) => ({ id, body: { count: 10n } })
})
