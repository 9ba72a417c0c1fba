/** The node's local agent: service definitions beside the node, their checks, and their supervised processes. */
export { type FileOutcome, mergeOutcomes, parseDefinitions, readDefinitionsDir } from "./definitions.js";
export { DefinitionError, ProcessUnavailableError } from "./errors.js";
export { boundNote, type InstanceClient } from "./instance.js";
export { DEFINITION_FILE_NAME_PATTERN, LocalAgent, type LocalAgentOptions, type ReloadReport } from "./local-agent.js";
export type { ProcessEvent, Supervise, SupervisedProcess } from "./process.js";
export type { CheckResult, CheckSpec, CheckStatus, Definition } from "./types.js";
