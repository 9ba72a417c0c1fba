/** ConfigError names the configuration field that is wrong, where it came from, and why. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly source: string,
    readonly reason: string,
  ) {
    super(`invalid configuration: ${field} (from ${source}): ${reason}`);
    this.name = "ConfigError";
  }
}
