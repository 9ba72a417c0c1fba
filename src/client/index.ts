/** The typed client of the raftmesh client API, used by the CLI, the tests and applications. */
export { CALL_DEADLINE_MS_DEFAULT, type CallOptions, RaftmeshClient } from "./client.js";
export { RaftmeshError } from "./errors.js";
