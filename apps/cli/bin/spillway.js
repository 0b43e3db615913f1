#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `npx spillway` and `npm start` work without a build.
// Spillway runs on Node 24 (Lambda's nodejs24.x), which the project installs as a devDependency:
// npm scripts and npx put it first on the PATH. Started by an older Node, say so and stop.
const major = Number(process.versions.node.split(".")[0])
if (major < 24) {
  console.error(
    `spillway: needs Node 24 or newer, this is Node ${process.version}. ` +
      "Run it through npm or npx (npm start, npx spillway), which use the Node 24 that npm ci installed."
  )
  process.exit(2)
}
const { register } = await import("tsx/esm/api")
register()
await import("../src/main.ts")
