/**
 * @spillway/testing: the conformance kits every backend of a Spillway service runs, and helpers for tests.
 */
export {}
