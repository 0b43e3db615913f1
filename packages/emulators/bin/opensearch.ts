/**
 * `npm run opensearch`: fetches OpenSearch through Maven when it is not cached, starts a single
 * node and keeps it running until Ctrl-C. `-E<setting>=<value>` arguments become node settings
 * (as OpenSearch's own launcher takes them); `--fetch-only` only fetches (CI warms its cache
 * with it). Options through the environment, as in the README.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as OpenSearchNode from "../src/OpenSearchNode.js"

const args = process.argv.slice(2)
const settings = Object.fromEntries(
  args
    .filter((arg) => arg.startsWith("-E") && arg.includes("="))
    .map((arg) => [arg.slice(2, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)])
)
const unknown = args.filter((arg) => arg !== "--fetch-only" && !(arg.startsWith("-E") && arg.includes("=")))

const program =
  unknown.length > 0
    ? Effect.flatMap(
        Console.error(
          `npm run opensearch: unknown argument ${unknown.join(" ")}; takes --fetch-only or -E<setting>=<value>`
        ),
        () => Effect.sync(() => process.exit(2))
      )
    : args.includes("--fetch-only")
      ? Effect.flatMap(OpenSearchNode.fetch(), (home) => Console.log(`OpenSearch is in ${home}`))
      : Effect.scoped(
          Effect.gen(function* () {
            const node = yield* OpenSearchNode.start({ settings })
            yield* Console.log(
              [
                `OpenSearch ${node.version} at ${node.url} (ready in ${(node.startMillis / 1000).toFixed(1)} s); snapshots under ${node.repoPath}. Ctrl-C stops it.`,
                `For the tests: SPILLWAY_OPENSEARCH_URL=${node.url} SPILLWAY_OPENSEARCH_REPO_PATH=${node.repoPath}`
              ].join("\n")
            )
            return yield* Effect.never
          })
        )

NodeRuntime.runMain(program.pipe(Effect.provide(NodeServices.layer)))
