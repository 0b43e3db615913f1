/**
 * `npm run opensearch`: fetches OpenSearch through Maven when it is not cached, starts a single
 * node and keeps it running until Ctrl-C; `npm run opensearch -- --fetch-only` only fetches (CI
 * warms its cache with it). Options through the environment, as in the README.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as OpenSearchNode from "../src/OpenSearchNode.js"

const program = process.argv.includes("--fetch-only")
  ? Effect.flatMap(OpenSearchNode.fetch(), (home) => Console.log(`OpenSearch is in ${home}`))
  : Effect.scoped(
      Effect.gen(function* () {
        const node = yield* OpenSearchNode.start()
        yield* Console.log(
          `OpenSearch ${node.version} at ${node.url} (ready in ${(node.startMillis / 1000).toFixed(1)} s); snapshots under ${node.repoPath}. Ctrl-C stops it.`
        )
        return yield* Effect.never
      })
    )

NodeRuntime.runMain(program.pipe(Effect.provide(NodeServices.layer)))
