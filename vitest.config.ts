import { defineConfig } from "vitest/config"

const testFiles = [
  "packages/*/test/**/*.test.ts",
  "apps/*/test/**/*.test.ts",
  "examples/*/test/**/*.test.ts",
  "infra/test/**/*.test.ts"
]
const opensearchFiles = testFiles.map((pattern) => pattern.replace(/\.test\.ts$/, ".opensearch.test.ts"))

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: testFiles, exclude: opensearchFiles } },
      {
        // Files that need a real OpenSearch node: Vitest starts one for the run, only when one of
        // them is in it (packages/emulators/vitest/opensearch.setup.ts).
        extends: true,
        test: {
          name: "opensearch",
          include: opensearchFiles,
          globalSetup: ["packages/emulators/vitest/opensearch.setup.ts"],
          hookTimeout: 180_000
        }
      }
    ]
  }
})
