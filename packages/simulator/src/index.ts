/**
 * @spillway/simulator: the whole pipeline on virtual time.
 */
export {}
