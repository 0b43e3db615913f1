/**
 * @spillway/testing: the conformance kits every backend of a Spillway service runs (a user's sink
 * proves itself with `Conformance.documentSinkSuite`), and helpers for tests: sample records and
 * settling (`Harness`), a fake Lambda context (`LambdaContext`), Lambda events (`EventFixtures`).
 */
export * as ClickstreamFixtures from "./ClickstreamFixtures.js"
export * as Conformance from "./Conformance.js"
export * as EventFixtures from "./EventFixtures.js"
export * as Harness from "./Harness.js"
export * as LambdaContext from "./LambdaContext.js"
