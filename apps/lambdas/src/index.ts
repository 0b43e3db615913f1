/**
 * @spillway/lambdas: the Lambda handlers (collector, redriver, processor). They are a few lines
 * each over the core stages and need the AWS layers, so they arrive with the AWS backends issue.
 */
export {}
