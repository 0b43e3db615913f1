/**
 * @spillway/example-custom-sink: a sink of one's own — documents as JSON lines in S3
 * (`JsonLinesS3Sink`), fanned out next to OpenSearch in a processor layer (`Pipeline`) that the
 * Lambda entry `processor.ts` gives to the project's processor function.
 */
export * as JsonLinesS3Sink from "./JsonLinesS3Sink.js"
export * as Pipeline from "./Pipeline.js"
