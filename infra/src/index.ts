/**
 * @spillway/infra: the CDK app that deploys the pipeline, one construct per part and one stack
 * per stage (`bin/app.ts` is the app; `npm run synth` synthesizes every stage).
 */
export * as Backup from "./Backup.js"
export * as Clickstream from "./Clickstream.js"
export * as ClickstreamObservability from "./ClickstreamObservability.js"
export * as Ingestion from "./Ingestion.js"
export * as MetricsForwarder from "./MetricsForwarder.js"
export * as Observability from "./Observability.js"
export * as Processing from "./Processing.js"
export * as SearchDomain from "./SearchDomain.js"
export * as SpillwayApp from "./SpillwayApp.js"
export * as SpillwayFunction from "./SpillwayFunction.js"
export * as SpillwayStack from "./SpillwayStack.js"
export * as Stages from "./Stages.js"
