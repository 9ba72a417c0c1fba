/**
 * EndpointState is what one balancer remembers of an endpoint between picks: its load and its
 * outlier record. It follows the endpoint's id across table updates, so a health flip or a weight
 * change does not forget an ejection or the requests in flight.
 */
import type { Endpoint } from "../types.js";

/** EndpointState is the mutable per-endpoint state of one ServiceBalancer. */
export class EndpointState {
  /** active counts requests in flight to the endpoint (onStart minus onEnd). Invariant: active >= 0. */
  active = 0;
  /** consecutiveFailures counts failures since the last success or ejection. */
  consecutiveFailures = 0;
  /** ejections counts ejections, decayed while the endpoint is back in service; it multiplies the next ejection's length. */
  ejections = 0;
  /** ejectedUntilMs: the endpoint is ejected while nowMs < ejectedUntilMs (0: never ejected). */
  ejectedUntilMs = 0;
  /** swrrCurrent is the smooth weighted round-robin "current weight" (nginx's peer->current_weight). */
  swrrCurrent = 0;

  constructor(public endpoint: Endpoint) {}

  /** isEjected says whether outlier detection keeps the endpoint out at nowMs. */
  isEjected(nowMs: number): boolean {
    return nowMs < this.ejectedUntilMs;
  }
}
