#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `npx spillway` and `npm start` work without a build.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
