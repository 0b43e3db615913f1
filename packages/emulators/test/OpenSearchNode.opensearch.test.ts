import { describe, expect, it } from "@effect/vitest"
import { node, testNamespace } from "../vitest/opensearch.js"

const ns = testNamespace(import.meta.filename)

describe("OpenSearchNode", () => {
  it("serves a real single-node cluster on loopback, with path.repo set", async () => {
    const { url, repoPath } = node()
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const health = (await (await fetch(`${url}/_cluster/health`)).json()) as Record<string, unknown>
    expect(health.number_of_nodes).toBe(1)
    const settings = (await (await fetch(`${url}/_nodes/settings`)).json()) as {
      nodes: Record<string, { settings: { path: { repo: string | Array<string> } } }>
    }
    const repo = Object.values(settings.nodes)[0]?.settings.path.repo
    expect([repo].flat()).toContain(repoPath)
    const created = await fetch(`${url}/${ns}-probe`, { method: "PUT" })
    expect(created.status).toBe(200)
    expect((await fetch(`${url}/${ns}-probe`, { method: "DELETE" })).status).toBe(200)
  })
})
