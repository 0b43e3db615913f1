import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "infra/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
