/**
 * The Registry's Failover RPC: a switchover an operator asks for. It runs on the leader, where the
 * lease driver holds the replication positions the instances last reported; they ride on the
 * failover entry, so the rules in src/registry/failover.ts judge the standbys by them in the same
 * entry that moves the master role. An ineligible target is refused by apply with the reason
 * (FAILED_PRECONDITION), and nothing changes.
 */
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { FailoverRequestMsg, FailoverResponseMsg } from "../common/messages.js";
import type { LeaseDriver } from "../registry/lease-driver.js";
import { validateName, validateServiceName } from "../registry/validate.js";
import type { RegistryWriter } from "../registry/writer.js";
import { unary } from "./handler.js";
import type { LeaderRoute } from "./leader-route.js";
import { WRITE_WAIT_MS_MAX } from "./limits.js";
import { sessionFromMsg } from "./session.js";

/** FailoverServiceDeps is what the Failover handler uses. */
export interface FailoverServiceDeps {
  readonly route: LeaderRoute;
  readonly writer: RegistryWriter;
  readonly leases: Pick<LeaseDriver, "positionsFor">;
}

/** failoverService holds the Failover handler of raftmesh.v1.Registry (the agent adds it to the service's other handlers). */
export function failoverService(deps: FailoverServiceDeps): UntypedServiceImplementation {
  const { route, writer, leases } = deps;
  return {
    Failover: unary<FailoverRequestMsg, FailoverResponseMsg>(async (call) => {
      const { service, to } = call.request;
      validateServiceName(service, "service");
      if (to) validateName(to, "to");
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "Failover", WRITE_WAIT_MS_MAX, async (deadline) => {
        const positions = leases.positionsFor([service]);
        const cmd = { op: "failover", service, to: to ?? "", reason: "switchover", ...(positions.length > 0 ? { positions } : {}) } as const;
        const res = await writer.write(cmd, session, deadline);
        return { master: res.master ?? "", epoch: res.epoch ?? 0, index: res.index, duplicate: res.duplicate === true };
      });
    }),
  };
}
