/**
 * A deployment's configuration for running the real bundles where nothing is reachable: every
 * variable the functions document (`AwsPipeline`, `ApiKeyStore`), set as a deployment sets it,
 * with every endpoint on a closed loopback port (`AWS_ENDPOINT_URL` for every SDK client). A
 * function configured this way starts and refuses or answers events; any AWS call it makes fails
 * at once, and nothing leaves the machine.
 */
export const unreachable: Readonly<Record<string, string>> = {
  AWS_ENDPOINT_URL: "http://127.0.0.1:1",
  STREAM_ARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/spillway",
  FALLBACK_QUEUE_URL: "http://127.0.0.1:1/123456789012/spillway-fallback",
  FAILURE_QUEUE_URL: "http://127.0.0.1:1/123456789012/spillway-failures",
  OPENSEARCH_ENDPOINT: "http://127.0.0.1:1",
  // examples/custom-sink's processor: its bucket.
  CUSTOM_SINK_BUCKET: "spillway-documents",
  OPENSEARCH_INDEX: "spillway",
  ARCHIVE_BUCKET: "spillway-archive",
  FIREHOSE_STREAM_NAME: "spillway-backup",
  API_KEYS_SOURCE: "secretsmanager",
  API_KEYS_SECRET_ID: "spillway/api-keys",
  // The clickstream functions (`AwsClickstream`): the metrics' line format, the forwarder's spool and key.
  METRIC_FORMAT: "datadog",
  SPOOL_BUCKET: "spillway-metric-spool",
  DD_API_KEY_SECRET_ID: "spillway/datadog-api-key"
}
