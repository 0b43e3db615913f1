/**
 * @spillway/aws: layers for the core services on the AWS SDK v3 and the OpenSearch client.
 * Empty until the AWS backends issue lands; nothing here is exported yet, so nothing can be
 * mistaken for a working backend.
 */
export {}
