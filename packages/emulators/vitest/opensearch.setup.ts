/**
 * Vitest global setup of the `opensearch` test project (files named `*.opensearch.test.ts`): one
 * real OpenSearch node for the whole run, started before the first such file and stopped after
 * the last. Vitest runs it only when the run includes one of those files, so unit runs never wait
 * for a JVM. With `SPILLWAY_OPENSEARCH_URL` (and `SPILLWAY_OPENSEARCH_REPO_PATH`, the node's
 * `path.repo`) the tests use that node instead and start none.
 *
 * Test files share the node: each works in indices, templates and snapshot repositories named
 * after itself (`testNamespace`), so files running in parallel never see each other's data.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Scope } from "effect"
import type { TestProject } from "vitest/node"
import * as OpenSearchNode from "../src/OpenSearchNode.js"
import type { ProvidedNode } from "./opensearch.js"

/**
 * Limits low enough for tests to reach with a few requests, as a small domain's are: bodies over
 * 2 MiB are refused with 413, and more than 4 MiB of bulk requests in flight at once with 429
 * (`rejected_execution_exception`, indexing pressure). One request under 2 MiB never reaches the
 * 4 MiB pressure limit alone, so only concurrent writes see 429s.
 */
export const testSettings = {
  "http.max_content_length": "2mb",
  "indexing_pressure.memory.limit": "4mb"
} as const

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env.SPILLWAY_OPENSEARCH_URL
  if (existing !== undefined && existing !== "") {
    project.provide("opensearch", {
      url: existing.replace(/\/+$/, ""),
      repoPath: process.env.SPILLWAY_OPENSEARCH_REPO_PATH ?? "",
      version: "external",
      startMillis: 0
    } satisfies ProvidedNode)
    return async () => {}
  }
  const scope = Scope.makeUnsafe()
  const exit = await Effect.runPromiseExit(
    OpenSearchNode.start({ settings: testSettings }).pipe(
      Scope.provide(scope),
      Effect.provide(NodeServices.layer)
    )
  )
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    const error = Exit.findErrorOption(exit)
    throw new Error(
      `The OpenSearch tests need a real node, which could not start. ${
        error._tag === "Some" ? error.value.message : String(exit.cause)
      }\n(Java 17 and Maven are needed; or point SPILLWAY_OPENSEARCH_URL at a running node.)`
    )
  }
  const node = exit.value
  // Printed once per run: the note on the OpenSearch issue quotes this start time.
  console.log(
    `[opensearch] ${node.version} at ${node.url}, ready in ${(node.startMillis / 1000).toFixed(1)} s`
  )
  project.provide("opensearch", {
    url: node.url,
    repoPath: node.repoPath,
    version: node.version,
    startMillis: node.startMillis
  } satisfies ProvidedNode)
  return () => Effect.runPromise(Scope.close(scope, Exit.void))
}
