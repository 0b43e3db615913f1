/**
 * The README's "Extending: a new sink" shows a complete user's sink and its conformance run; that
 * code is `readme-sink.test.ts`, which runs it. This checks that the README still shows exactly
 * that file, short, with public imports only — so the front door's example cannot rot.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"

const between = (text: string, start: string, end: string): string => {
  const from = text.indexOf(start)
  const to = text.indexOf(end, from + start.length)
  if (from < 0 || to < 0) throw new Error(`no ${JSON.stringify(start)} … ${JSON.stringify(end)} in the text`)
  return text.slice(from + start.length, to)
}

describe("README: Extending: a new sink", () => {
  it("shows readme-sink.test.ts verbatim: under 40 lines, importing only public packages", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    const section = between(readme, "## Extending: a new sink\n", "\n## ")
    const shown = between(section, "```ts\n", "```\n")
    expect(shown).toBe(readFileSync(new URL("./readme-sink.test.ts", import.meta.url), "utf8"))
    expect(shown.trimEnd().split("\n").length).toBeLessThanOrEqual(40)
    const imported = [...shown.matchAll(/from "([^"]+)"/g)].map((match) => match[1])
    expect(new Set(imported)).toEqual(new Set(["@spillway/core", "@spillway/testing", "effect"]))
  })
})
