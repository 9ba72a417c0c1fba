import { describe, expect, it } from "vitest";
import {
  BalancerConfigError,
  balancerConfig,
  DEFAULT_BALANCER_CONFIG,
  OUTLIER_BASE_EJECTION_MS_DEFAULT,
  OUTLIER_CONSECUTIVE_FAILURES_DEFAULT,
  OUTLIER_MAX_EJECTION_PERCENT_DEFAULT,
  PANIC_THRESHOLD_PERCENT_DEFAULT,
} from "../../../src/balancer/policy/index.js";

function fieldOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BalancerConfigError);
    return (e as BalancerConfigError).field;
  }
  throw new Error("no error");
}

describe("balancer: config", () => {
  it("config: the defaults are Envoy's where Envoy has one", () => {
    const c = balancerConfig();
    expect(c).toEqual(DEFAULT_BALANCER_CONFIG);
    expect([c.outlierConsecutiveFailures, c.outlierBaseEjectionMs, c.outlierMaxEjectionPercent, c.panicThresholdPercent]).toEqual([5, 30_000, 10, 50]);
    expect([OUTLIER_CONSECUTIVE_FAILURES_DEFAULT, OUTLIER_BASE_EJECTION_MS_DEFAULT, OUTLIER_MAX_EJECTION_PERCENT_DEFAULT, PANIC_THRESHOLD_PERCENT_DEFAULT]).toEqual([5, 30_000, 10, 50]);
  });

  it("config: the registry's fields pass through; unknown ones are ignored", () => {
    const registryConfig = { policy: "hash", mode: "master-slave", retries: 1, retryBudgetPercent: 30, perTryTimeoutMs: 500, fallback: "other", hashOn: "header:x-user", hashMethod: "maglev" };
    const c = balancerConfig(registryConfig as never);
    expect(c.policy).toBe("hash");
    expect(c.hashOn).toBe("header:x-user");
    expect(c.hashMethod).toBe("maglev");
    expect(c.retryBudgetPercent).toBe(30);
    expect("mode" in c).toBe(false);
  });

  it("config: a bad field is named", () => {
    expect(fieldOf(() => balancerConfig({ policy: "fastest" }))).toBe("config.policy");
    expect(fieldOf(() => balancerConfig({ hashOn: "header:" }))).toBe("config.hashOn");
    expect(fieldOf(() => balancerConfig({ hashOn: "query:x" }))).toBe("config.hashOn");
    expect(fieldOf(() => balancerConfig({ policy: "hash", hashOn: "" }))).toBe("config.hashOn");
    expect(balancerConfig({ policy: "p2c", hashOn: "" }).policy).toBe("p2c"); // the registry's hashOn for other policies
    expect(fieldOf(() => balancerConfig({ hashMethod: "rendezvous" }))).toBe("config.hashMethod");
    expect(fieldOf(() => balancerConfig({ outlierMaxEjectionPercent: 101 }))).toBe("config.outlierMaxEjectionPercent");
    expect(fieldOf(() => balancerConfig({ zoneMinHealthyPercent: -1 }))).toBe("config.zoneMinHealthyPercent");
    expect(fieldOf(() => balancerConfig({ fallbackStatus: 99 }))).toBe("config.fallbackStatus");
    expect(fieldOf(() => balancerConfig({ maxRequests: 1.5 }))).toBe("config.maxRequests");
    expect(fieldOf(() => balancerConfig({ retryOn5xx: "yes" }))).toBe("config.retryOn5xx");
    expect(balancerConfig({ hashOn: "cookie:session", panicThresholdPercent: 100, fallbackStatus: 503 }).fallbackStatus).toBe(503);
  });
});
