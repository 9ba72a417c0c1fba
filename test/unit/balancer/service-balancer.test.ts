import { describe, expect, it } from "vitest";
import { BalancerConfigError, createServiceBalancer, ENDPOINTS_MAX, WEIGHT_MAX } from "../../../src/balancer/policy/index.js";
import { balancer, ep, eps, mulberry32, table } from "./harness.js";

describe("balancer: service balancer", () => {
  it("service: an empty service has no endpoint", () => {
    expect(balancer(table([])).pick({}, 0)).toBeUndefined();
  });

  it("service: the policy can change with an update, and removed endpoints stop being picked at once", () => {
    const b = balancer(table(eps(3)));
    b.update(table(eps(2), { policy: "weighted" }));
    for (let i = 0; i < 20; i++) expect(b.pick({}, 0)?.id).not.toBe("e2");
  });

  it("service: onStart/onEnd of unknown or removed ids are ignored (their requests drain)", () => {
    const b = balancer(table(eps(2), { policy: "least-connections" }));
    b.onStart("e1");
    b.update(table([ep("e0")], { policy: "least-connections" }));
    b.onEnd("e1", "failure", 0);
    b.onStart("nope");
    b.onEnd("nope", "success", 0);
    expect(b.pick({}, 0)?.id).toBe("e0");
  });

  it("service: a bad table is refused with the field named", () => {
    const bad = (f: () => unknown, field: string) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(BalancerConfigError);
        expect((e as BalancerConfigError).field).toBe(field);
      }
    };
    const deps = { random: mulberry32(1), localZone: "" };
    bad(() => createServiceBalancer(table([ep("a"), ep("a")]), deps), "endpoints[1].id");
    bad(() => createServiceBalancer(table([ep("a", { weight: WEIGHT_MAX + 1 })]), deps), "endpoints[0].weight");
    bad(() => createServiceBalancer(table([ep("a", { weight: 1.5 })]), deps), "endpoints[0].weight");
    bad(() => createServiceBalancer(table(eps(ENDPOINTS_MAX + 1)), deps), "endpoints");
    // At the limits: accepted.
    createServiceBalancer(table(eps(ENDPOINTS_MAX, () => ({ weight: WEIGHT_MAX }))), deps);
    bad(() => createServiceBalancer({ ...table([]), config: { ...table([]).config, panicThresholdPercent: 101 } }, deps), "config.panicThresholdPercent");
  });
});
