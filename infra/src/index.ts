/**
 * @spillway/infra: the CDK app that deploys the pipeline. Not written yet; nothing is exported.
 */
export {}
