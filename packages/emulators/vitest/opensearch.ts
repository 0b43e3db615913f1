/**
 * What a `*.opensearch.test.ts` file knows of the shared node (see `opensearch.setup.ts`).
 */
import { inject } from "vitest"

export interface ProvidedNode {
  readonly url: string
  /** The node's `path.repo`: `fs` snapshot repositories must be located inside it. */
  readonly repoPath: string
  readonly version: string
  readonly startMillis: number
}

declare module "vitest" {
  export interface ProvidedContext {
    opensearch: ProvidedNode
  }
}

/** The shared node. */
export const node = (): ProvidedNode => inject("opensearch")

/**
 * A prefix for the indices, templates and repositories one test file creates, unique across the
 * run: lower case, as index names must be.
 */
export const testNamespace = (file: string): string =>
  `t-${file
    .replace(/^.*\//, "")
    .replace(/\.opensearch\.test\.ts$/, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")}-${process.pid}`
