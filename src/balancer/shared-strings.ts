/**
 * A worker receives its tables through a structured clone, which makes a fresh string for every
 * endpoint's health and zone although a registry holds three healths and a few zones: ~50 bytes
 * per endpoint, ~5 MB of a worker's heap at 100,000 endpoints (a heap snapshot of a loaded node's
 * worker). SharedStrings swaps them, in the received objects, for one copy each.
 */
import type { Health } from "../registry/types.js";
import type { Endpoint } from "./types.js";

/** ZONES_SHARED_MAX bounds the zones kept: past it a zone is left as it came (no growth without end). */
export const ZONES_SHARED_MAX = 1_024;

const HEALTHS: Readonly<Record<Health, Health>> = { passing: "passing", warning: "warning", critical: "critical" };

export class SharedStrings {
  private readonly zones = new Map<string, string>();

  /** share replaces, in place, each endpoint's health and zone by the shared copy (same values). */
  share(endpoints: readonly Endpoint[]): void {
    for (const e of endpoints as Mutable<Endpoint>[]) {
      e.health = HEALTHS[e.health] ?? e.health;
      const zone = this.zones.get(e.zone);
      if (zone !== undefined) e.zone = zone;
      else if (this.zones.size < ZONES_SHARED_MAX) this.zones.set(e.zone, e.zone);
    }
  }

  /** zoneCount is the number of zones kept. */
  get zoneCount(): number {
    return this.zones.size;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
