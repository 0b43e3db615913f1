/**
 * @spillway/emulators: local stand-ins for AWS, for the AWS tests and `spillway dev --backend
 * emulators` — kinesalite (Kinesis) and fauxqs (SQS, S3) as scoped servers (`Emulators`), a real
 * OpenSearch node fetched through Maven (`OpenSearchNode`), moto's server for Secrets Manager and
 * SSM (`Moto`), and the fault-injecting proxy in front of them (`FaultProxy`). Never a dependency
 * of a Lambda bundle.
 */
export * as Emulators from "./Emulators.js"
export * as FaultProxy from "./FaultProxy.js"
export * as Moto from "./Moto.js"
export * as OpenSearchNode from "./OpenSearchNode.js"
