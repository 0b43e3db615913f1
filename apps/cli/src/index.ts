/**
 * @spillway/cli: the `spillway` command (local pipeline, simulator).
 */
export {}
