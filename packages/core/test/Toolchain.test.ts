/**
 * The tests run on the Node major the functions are deployed on (Lambda's `nodejs24.x`). The
 * project pins Node 24 as a devDependency, so every npm script and `npx` command finds it first on
 * the PATH whatever Node the machine has; this test fails when a run bypassed that.
 */
import { describe, expect, it } from "vitest"

describe("toolchain", () => {
  it("runs on Node 24, the Lambda runtime's major", () => {
    const major = Number(process.versions.node.split(".")[0])
    expect(
      major,
      `the tests run on Node ${process.version}; run them through npm (npm test, npx vitest) so that ` +
        "the pinned Node 24 in node_modules/.bin is used, or install Node 24"
    ).toBe(24)
  })
})
