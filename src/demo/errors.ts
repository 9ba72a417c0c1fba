/** The demo backend's expected failures. */

/** BadEpochHeader is a malformed x-raftmesh-epoch; the backend answers 400 naming the header. */
export class BadEpochHeader extends Error {
  override readonly name = "BadEpochHeader";
}

/** DemoUsageError is bad usage of the demo's command line: the message names the flag; the process exits 2. */
export class DemoUsageError extends Error {
  override readonly name = "DemoUsageError";
}
