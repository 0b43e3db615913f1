/**
 * @spillway/aws: the core services on the AWS SDK v3 and the OpenSearch client. Every SDK client
 * is a scoped layer of its own (`KinesisClient`, `SqsClient`, ...); each service layer needs its
 * client and offers `layer(options)` and `layerConfig` (read from `Config`, failing at start with
 * the name of a missing or malformed variable). `ClientConfig` says how SDK retries and the core
 * `Schedules` divide the work.
 */
export * as ApiKeyStore from "./ApiKeyStore.js"
export * as AwsClickstream from "./AwsClickstream.js"
export * as AwsPipeline from "./AwsPipeline.js"
export * as ClientConfig from "./ClientConfig.js"
export * as DatadogApiKey from "./DatadogApiKey.js"
export * as DatadogMetricsSink from "./DatadogMetricsSink.js"
export * as FirehoseArchive from "./FirehoseArchive.js"
export * as FirehoseClient from "./FirehoseClient.js"
export * as FirehoseSink from "./FirehoseSink.js"
export * as IndexLayout from "./IndexLayout.js"
export * as KinesisClient from "./KinesisClient.js"
export * as KinesisRecordStream from "./KinesisRecordStream.js"
export * as KinesisShardSource from "./KinesisShardSource.js"
export * as OpenSearchClient from "./OpenSearchClient.js"
export * as OpenSearchSink from "./OpenSearchSink.js"
export * as OpenSearchSnapshots from "./OpenSearchSnapshots.js"
export * as S3Client from "./S3Client.js"
export * as S3MetricSpool from "./S3MetricSpool.js"
export * as SecretsManagerClient from "./SecretsManagerClient.js"
export * as SqsClient from "./SqsClient.js"
export * as SqsFailureDestination from "./SqsFailureDestination.js"
export * as SqsFallbackQueue from "./SqsFallbackQueue.js"
export * as SsmClient from "./SsmClient.js"
