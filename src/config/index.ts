/** The public face of the configuration module: one schema for file, environment and flags. */
export { ConfigError } from "./errors.js";
export { type ConfigSources, loadConfig } from "./load.js";
export { type AgentConfig, FIELDS, type Member, NODE_ID_PATTERN, parseHostPort, parseMembers, SNAPSHOT_ENTRIES_RANGE } from "./schema.js";
