/**
 * What `OpenSearchNode.start` says before any JVM starts: a JDK that cannot run the version is
 * refused with what to install or set, and the cache folder follows the documented rules. (The
 * node itself runs in OpenSearchNode.opensearch.test.ts.)
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as OpenSearchNode from "../src/OpenSearchNode.js"

/** A folder that looks like a JDK of the given major version (its `release` file). */
const fakeJdk = (major: number) => {
  const home = mkdtempSync(join(tmpdir(), `fake-jdk-${major}-`))
  writeFileSync(join(home, "release"), `JAVA_VERSION="${major}.0.2"\n`)
  return home
}

const startFailure = (options: OpenSearchNode.Options) =>
  Effect.flip(Effect.scoped(OpenSearchNode.start(options))).pipe(Effect.provide(NodeServices.layer))

describe("OpenSearchNode before start", () => {
  it.effect("refuses a folder that is not a JDK, naming it", () =>
    Effect.gen(function* () {
      const error = yield* startFailure({ javaHome: "/nonexistent/jdk" })
      expect(error._tag).toBe("EmulatorError")
      expect(error.message).toContain("/nonexistent/jdk is not a JDK")
    })
  )

  it.effect("refuses Java 24+ for 2.x (its SecurityManager is gone) and Java 17 for 3.x", () =>
    Effect.gen(function* () {
      const java25 = yield* startFailure({ version: "2.19.6", javaHome: fakeJdk(25) })
      expect(java25.message).toMatch(/is Java 25; OpenSearch 2\.19\.6 needs Java 11–23/)
      const java17 = yield* startFailure({ version: "3.9.0", javaHome: fakeJdk(17) })
      expect(java17.message).toMatch(/is Java 17; OpenSearch 3\.9\.0 needs Java 21 or newer/)
    })
  )

  it("caches outside the repository: SPILLWAY_CACHE_DIR, else a per-user or system cache", () => {
    expect(OpenSearchNode.cacheDir({ cacheDir: "/somewhere" })).toBe("/somewhere")
    const before = process.env.SPILLWAY_CACHE_DIR
    process.env.SPILLWAY_CACHE_DIR = "/from-env"
    try {
      expect(OpenSearchNode.cacheDir()).toBe("/from-env")
    } finally {
      if (before === undefined) delete process.env.SPILLWAY_CACHE_DIR
      else process.env.SPILLWAY_CACHE_DIR = before
    }
    const fallback = OpenSearchNode.cacheDir()
    expect(fallback === "/var/cache/spillway" || fallback.endsWith("/spillway")).toBe(true)
    expect(fallback.startsWith(process.cwd())).toBe(false)
  })
})
