/**
 * @spillway/emulators: local stand-ins for AWS, for tests and `spillway dev --backend emulators`.
 */
export {}
