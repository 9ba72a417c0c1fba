import type { Metadata, ServerDuplexStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { echo } from "../common/echo.js";
import { processTokenProblem } from "../common/process-token.js";
import { NOTE_BYTES_MAX, REPLICATION_POSITION_MAX } from "../registry/limits.js";
import { HEALTH_VALUES, type Health, type InstanceSpec, type RegistryCommand } from "../registry/types.js";
import { validateInitialHealth, validateInstanceSpec, validateMaintenanceReason, validateName, validateServiceConfig, validateServiceName } from "../registry/validate.js";
import { renewError } from "../registry/errors.js";
import type { HeartbeatBatcher, SendFn } from "../registry/heartbeat-batcher.js";
import type { LeaseDriver } from "../registry/lease-driver.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";
import type { WatchHub } from "../registry/watch-hub.js";
import type { RegistryWriter } from "../registry/writer.js";
import { configFromMsg, countHealth, instanceToMsg, serviceToMsg, specFromMsg } from "./convert.js";
import { InvalidArgumentError, NoLeaderError, NotFoundError, toStatus } from "./errors.js";
import type { Forwarder } from "./forwarder.js";
import { eventVisible, serviceVisible } from "./acl-policy.js";
import { grantOf } from "./auth.js";
import { unary, unaryNow } from "./handler.js";
import type { AddressBook, LeaderRoute, LeaderView } from "./leader-route.js";
import { WRITE_WAIT_MS_MAX } from "./limits.js";
import type {
  HeartbeatRequestMsg,
  HeartbeatResponseMsg,
  InstanceMsg,
  RegisterRequestMsg,
  RenewResultMsg,
  ServiceConfigMsg,
  WriteSessionMsg,
} from "../common/messages.js";
import { type ReadIndexer, readBarrier } from "./read-barrier.js";
import { sessionFromMsg } from "./session.js";
import { serveWatch, type WatchCall } from "./watch-stream.js";

/** HEARTBEAT_WAIT_MS bounds how long a heartbeat waits for the leader's answer. */
export const HEARTBEAT_WAIT_MS = 3_000;

/** validateHeartbeat checks a heartbeat's fields and returns its status, if any. */
function validateHeartbeat(h: HeartbeatRequestMsg): void {
  validateServiceName(h.service, "service");
  validateName(h.id, "id");
  if (h.status && !HEALTH_VALUES.includes(h.status as Health)) {
    throw new InvalidArgumentError("status", `must be empty or one of ${HEALTH_VALUES.join(", ")}, got "${echo(h.status)}"`);
  }
  if (Buffer.byteLength(h.note ?? "") > NOTE_BYTES_MAX) throw new InvalidArgumentError("note", `is longer than ${NOTE_BYTES_MAX} bytes`);
  const pos = h.replicationPosition ?? 0;
  if (!Number.isSafeInteger(pos) || pos < 0 || pos > REPLICATION_POSITION_MAX) {
    throw new InvalidArgumentError("replication_position", `must be below 2^53 (${REPLICATION_POSITION_MAX + 1}), got ${pos}`);
  }
  const epoch = h.masterEpoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidArgumentError("master_epoch", `must be an integer from 0 to 2^53 - 1, got ${epoch}`);
  const tokenProblem = processTokenProblem(h.processToken ?? "");
  if (tokenProblem !== null) throw new InvalidArgumentError("process_token", tokenProblem);
  const exited = h.exitedProcess ?? "";
  const exitedProblem = processTokenProblem(exited);
  if (exitedProblem !== null) throw new InvalidArgumentError("exited_process", exitedProblem);
  // An exit report lifts a handover fence only together with the critical that demotes the master.
  if (exited !== "" && h.status !== "critical") throw new InvalidArgumentError("exited_process", `needs status critical, got "${echo(h.status)}"`);
}

/**
 * heartbeat renews one lease: on the leader directly, on a follower through the batcher (one RPC
 * to the leader per batch). It is acknowledged only once the leader accepted it and a quorum
 * confirmed, after it arrived, that the leader still leads (LeaseDriver.renew).
 */
async function heartbeat({ node, leases, batcher }: HeartbeatDeps, h: HeartbeatRequestMsg): Promise<HeartbeatResponseMsg> {
  validateHeartbeat(h);
  let result: RenewResultMsg | undefined;
  if (node.isLeader() && leases.isLeading) {
    result = (await leases.renew([h]))[0];
  } else {
    if (!node.leader()) throw new NoLeaderError("no leader is known; the heartbeat was not recorded");
    result = await batcher.renew(h);
  }
  if (result?.code !== "ok" || !result.response) throw renewError(result?.code, h.service, h.id);
  return result.response;
}

/** LeaseRenewer renews leases on the leader (LeaseDriver). */
export type LeaseRenewer = Pick<LeaseDriver, "isLeading" | "renew">;

/** HeartbeatDeps is what a heartbeat uses: renew here when this node leads, else batch it to the leader. */
export interface HeartbeatDeps {
  readonly node: LeaderView;
  readonly leases: LeaseRenewer;
  readonly batcher: Pick<HeartbeatBatcher<HeartbeatRequestMsg, RenewResultMsg>, "renew">;
}

/** RegistryServiceDeps is what the Registry service uses. */
export interface RegistryServiceDeps extends HeartbeatDeps {
  readonly registry: Pick<RegistryStateMachine, "getService" | "listServices" | "applied" | "roleOf">;
  readonly writer: RegistryWriter;
  readonly route: LeaderRoute;
  readonly reads: ReadIndexer;
  readonly hub: WatchHub;
}

/**
 * registerCommand makes the register entry: with the health the instance starts with when it is not
 * the default (passing, no note), so a plain registration's entry keeps the bytes it always had.
 */
function registerCommand(instance: InstanceSpec, health: string, note: string): RegistryCommand {
  const h = health === "" ? "passing" : health;
  validateInitialHealth(h, note);
  if (h === "passing" && note === "") return { op: "instance.register", instance };
  return { op: "instance.register", instance, health: h as Health, note };
}

/** registryService serves raftmesh.v1.Registry. */
export function registryService(deps: RegistryServiceDeps): UntypedServiceImplementation {
  const { registry: reg, writer, route, reads, hub } = deps;
  return {
    Register: unary<RegisterRequestMsg, { index: number; duplicate: boolean }>(async (call) => {
      if (!call.request.instance) throw new InvalidArgumentError("instance", "is required");
      const spec = specFromMsg(call.request.instance as InstanceMsg);
      validateInstanceSpec(spec);
      const cmd = registerCommand(spec, call.request.health ?? "", call.request.note ?? "");
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "Register", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write(cmd, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    Deregister: unary<{ service: string; id: string; session?: WriteSessionMsg }, { index: number; duplicate: boolean }>(async (call) => {
      const { service, id } = call.request;
      validateServiceName(service, "service");
      validateName(id, "id");
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "Deregister", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "instance.deregister", service, id }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    SetMaintenance: unary<{ service: string; id: string; on: boolean; reason: string; session?: WriteSessionMsg }, { index: number; duplicate: boolean }>(async (call) => {
      const { service, id, on, reason } = call.request;
      validateServiceName(service, "service");
      validateName(id, "id");
      validateMaintenanceReason(reason, "reason");
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "SetMaintenance", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "instance.maintenance", service, id, on, reason }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    Heartbeat: unary<HeartbeatRequestMsg, HeartbeatResponseMsg>(async (call) => heartbeat(deps, call.request)),
    KeepAlive: (call: ServerDuplexStream<HeartbeatRequestMsg, HeartbeatResponseMsg>) => {
      // Answers go out in request order: each waits for the one before it. The first failure ends
      // the stream with its status, after the answers before it.
      let chain = Promise.resolve();
      let failed = false;
      call.on("data", (h: HeartbeatRequestMsg) => {
        const answer = heartbeat(deps, h);
        // The chain handles a rejection only when it gets there, which may be after an earlier
        // heartbeat's commit: without this, Node sees an unhandled rejection and ends the process.
        answer.catch(() => undefined);
        chain = chain.then(async () => {
          if (failed) return;
          try {
            call.write(await answer);
          } catch (err) {
            failed = true;
            const st = toStatus(err);
            // emit("error") is how a grpc-js server stream ends with a status after what it wrote; destroy() drops both and the client hangs.
            call.emit("error", Object.assign(new Error(st.details), st));
          }
        });
      });
      call.on("end", () =>
        void chain.then(() => {
          if (!failed) call.end();
        }),
      );
      call.on("error", () => undefined);
    },
    PutService: unary<{ name: string; config?: ServiceConfigMsg; session?: WriteSessionMsg }, { index: number; duplicate: boolean }>(async (call) => {
      const { name } = call.request;
      validateServiceName(name, "name");
      const config = configFromMsg(call.request.config);
      // With the name, as apply() checks it: a service that is its own fallback is refused before it is proposed.
      validateServiceConfig(config, name);
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "PutService", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "service.put", name, config }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    DeleteService: unary<{ name: string; session?: WriteSessionMsg }, { index: number; deleted: number; duplicate: boolean }>(async (call) => {
      const { name } = call.request;
      validateServiceName(name, "name");
      const session = sessionFromMsg(call.request.session);
      return route.onLeader(call, "Registry", "DeleteService", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await writer.write({ op: "service.delete", name }, session, deadline);
        return { index: res.index, deleted: res.deleted ?? 0, duplicate: res.duplicate === true };
      });
    }),
    GetService: unary<{ name: string; consistency: "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE"; passingOnly: boolean }, object>(async (call) => {
      const { name, consistency, passingOnly } = call.request;
      validateServiceName(name, "name");
      await readBarrier(reads, call, consistency);
      const got = reg.getService(name);
      if (!got) throw new NotFoundError(`service ${name} is not registered`);
      const instances = passingOnly ? got.instances.filter((i) => i.health === "passing") : got.instances;
      return {
        service: serviceToMsg(got.service, countHealth(got.instances), got.master),
        instances: instances.map((i) => instanceToMsg(i, reg.roleOf(name, i.id))),
        index: reg.applied,
      };
    }),
    ListServices: unary<{ consistency: "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE" }, object>(async (call) => {
      await readBarrier(reads, call, call.request.consistency);
      // With access control on, only the services the token may read (acl-policy.ts).
      const grant = grantOf(call.metadata);
      const listed = grant ? reg.listServices().filter((s) => serviceVisible(grant.rules, s.service.name)) : reg.listServices();
      const services = listed.map((s) => serviceToMsg(s.service, s.counts, s.master));
      return { services, index: reg.applied };
    }),
    Watch: (call: WatchCall) => {
      const grant = grantOf(call.metadata);
      serveWatch({ hub, applied: () => reg.applied }, call, grant ? (e) => eventVisible(grant.rules, e) : undefined);
    },
  };
}

/** internalService serves raftmesh.v1.Internal: followers' heartbeat batches, on the leader only, on the peer port only (agent.ts). */
export function internalService({ node, leases }: { node: LeaderView; leases: LeaseRenewer }): UntypedServiceImplementation {
  return {
    // Not behind the client turn budget: a member's renewals must not wait behind a client burst.
    RenewLeases: unaryNow<{ items: HeartbeatRequestMsg[] }, { results: RenewResultMsg[] }>(async (call) => {
      if (!node.isLeader() || !leases.isLeading) {
        throw new NoLeaderError("this node is not the leader; heartbeats were not recorded", node.leader());
      }
      return { results: await leases.renew(call.request.items) };
    }),
  };
}

/**
 * forwardHeartbeats is a follower's batcher send: one RenewLeases call per batch to the leader's
 * peer port (Internal is served there only, to members: never on the client port, where anyone
 * could renew any instance's lease), carrying this node's peer identity (peerIdentity(leader)),
 * waiting up to HEARTBEAT_WAIT_MS.
 */
export function forwardHeartbeats(
  node: LeaderView,
  addressOf: AddressBook,
  forwarder: Pick<Forwarder, "forward">,
  peerIdentity: (leader: string) => Metadata,
): SendFn<HeartbeatRequestMsg, RenewResultMsg> {
  return async (items) => {
    const leader = node.leader();
    const leaderPeer = leader ? addressOf(leader)?.peer : undefined;
    if (!leader || !leaderPeer) throw new NoLeaderError("no leader is known; heartbeats were not recorded");
    const deadline = new Date(Date.now() + HEARTBEAT_WAIT_MS);
    const res = await forwarder.forward<{ items: readonly HeartbeatRequestMsg[] }, { results: RenewResultMsg[] }>(
      leaderPeer,
      "Internal",
      "RenewLeases",
      { items },
      deadline,
      peerIdentity(leader),
    );
    return res.results;
  };
}
