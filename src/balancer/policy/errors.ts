/**
 * Expected failures of the balancer's policy half. Tests assert the class and its fields, not
 * message strings.
 */

/** BalancerError is the base of every expected failure of the balancer's policy half. */
export class BalancerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BalancerError";
  }
}

/**
 * BalancerConfigError is thrown by balancerConfig() and createServiceBalancer() for a setting or
 * endpoint out of range; `field` names it (e.g. "config.outlierMaxEjectionPercent", "endpoints[2].weight").
 */
export class BalancerConfigError extends BalancerError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`);
    this.name = "BalancerConfigError";
  }
}
