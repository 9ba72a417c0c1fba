/**
 * The workers' signals (the node's outlier-ejected, circuit-open and retry-budget-exhausted
 * events) through a real worker pool and real backends: each is posted with its service (and
 * instance or limit), at most once per subject per SIGNAL_MIN_GAP_MS however many requests hit it.
 */
import { Agent } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { WorkerSignal } from "../../../src/balancer/messages.js";
import { type Backend, call, endpointOf, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";
import { waitFor } from "../harness/process-cluster.js";

describe("balancer: signals to the node's event stream", () => {
  let backends: Backend[] = [];
  let ep: TestEndpoint | undefined;
  const signals: WorkerSignal[] = [];

  afterEach(async () => {
    await ep?.stop();
    ep = undefined;
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
    signals.length = 0;
  });

  it("an instance failing in a row: outlier-ejected names it, once", async () => {
    const flaky = await startBackend("flaky", (req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end("flaky");
    });
    backends = [flaky, await startBackend("good")];
    ep = await startEndpoint([table("svc", backends.map((b) => endpointOf(b)), { retries: 2, outlierConsecutiveFailures: 3, outlierBaseEjectionMs: 10_000, outlierMaxEjectionPercent: 50 })], [], { onSignal: (s) => signals.push(s) });
    const agent = new Agent({ keepAlive: true });
    for (let i = 0; i < 10; i++) await call(ep.port, "/svc/svc/", { agent });
    agent.destroy();
    await waitFor("the ejection signal", () => signals.length > 0);
    expect(signals).toEqual([{ kind: "outlier-ejected", service: "svc", instance: "flaky" }]);
  });

  it("requests past maxRequests: circuit-open with its limit, one signal for several refusals", async () => {
    backends = [await startBackend("slow", (req, res) => {
      req.resume();
      setTimeout(() => res.end("slow"), 300);
    })];
    ep = await startEndpoint([table("svc", [endpointOf(backends[0]!)], { maxRequests: 1 })], [], { onSignal: (s) => signals.push(s) });
    const many = new Agent({ keepAlive: true, maxSockets: 10 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    expect(replies.filter((r) => r.status === 503).length).toBeGreaterThanOrEqual(2);
    await waitFor("the circuit signal", () => signals.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(signals).toEqual([{ kind: "circuit-open", service: "svc", limit: "requests" }]);
  });

  it("a full outage: retry-budget-exhausted for the service", async () => {
    backends = await Promise.all(
      ["a", "b"].map((id) =>
        startBackend(id, (req, res) => {
          req.resume();
          setTimeout(() => {
            res.statusCode = 503;
            res.end("down");
          }, 50);
        }),
      ),
    );
    ep = await startEndpoint([table("svc", backends.map((b) => endpointOf(b)), { retries: 3, retryBudgetPercent: 20, outlierConsecutiveFailures: 0 })], [], { onSignal: (s) => signals.push(s) });
    const many = new Agent({ keepAlive: true, maxSockets: 50 });
    await Promise.all(Array.from({ length: 50 }, () => call(ep!.port, "/svc/svc/", { agent: many })));
    many.destroy();
    await waitFor("the budget signal", () => signals.some((s) => s.kind === "retry-budget-exhausted"));
    expect(signals.filter((s) => s.kind === "retry-budget-exhausted")).toEqual([{ kind: "retry-budget-exhausted", service: "svc" }]);
  });
});
