import type { ServerDuplexStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { NOTE_BYTES_MAX } from "../registry/limits.js";
import { HEALTH_VALUES, type Health } from "../registry/types.js";
import { validateInstanceSpec, validateServiceConfig, validateServiceName } from "../registry/validate.js";
import type { ApiContext } from "./context.js";
import { configFromMsg, countHealth, instanceToMsg, serviceToMsg, specFromMsg } from "./convert.js";
import { InvalidArgumentError, NoLeaderError, NotFoundError, toStatus } from "./errors.js";
import { unary } from "./handler.js";
import { readBarrier } from "./kv-service.js";
import { onLeader } from "./leader-route.js";
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
import { proposeCommand, sessionFromMsg } from "./registry-write.js";
import { serveWatch, type WatchCall } from "./watch-stream.js";

/** HEARTBEAT_WAIT_MS bounds how long a heartbeat waits for the leader's answer. */
export const HEARTBEAT_WAIT_MS = 3_000;

/** validateHeartbeat checks a heartbeat's fields and returns its status, if any. */
function validateHeartbeat(h: HeartbeatRequestMsg): void {
  validateServiceName(h.service, "service");
  if (!h.id) throw new InvalidArgumentError("id", "must not be empty");
  if (h.status && !HEALTH_VALUES.includes(h.status as Health)) {
    throw new InvalidArgumentError("status", `must be empty or one of ${HEALTH_VALUES.join(", ")}, got "${h.status}"`);
  }
  if (Buffer.byteLength(h.note ?? "") > NOTE_BYTES_MAX) throw new InvalidArgumentError("note", `is longer than ${NOTE_BYTES_MAX} bytes`);
}

/**
 * heartbeat renews one lease: on the leader directly, on a follower through the batcher (one RPC
 * to the leader per batch). It is acknowledged only once the leader accepted it and a quorum
 * confirmed, after it arrived, that the leader still leads (LeaseDriver.renew).
 */
async function heartbeat(ctx: ApiContext, h: HeartbeatRequestMsg): Promise<HeartbeatResponseMsg> {
  validateHeartbeat(h);
  let result: RenewResultMsg | undefined;
  if (ctx.node.isLeader() && ctx.leases.isLeading) {
    result = (await ctx.leases.renew([h]))[0];
  } else {
    if (!ctx.node.leader()) throw new NoLeaderError("no leader is known; the heartbeat was not recorded");
    result = await ctx.batcher.renew(h);
  }
  if (!result || result.code === "not-found") throw new NotFoundError(`instance ${h.id} of service ${h.service} is not registered`);
  if (result.code !== "ok" || !result.response) throw new NoLeaderError(`the heartbeat was not recorded (${result.code}); send it again`);
  return result.response;
}

/** registryService serves raftmesh.v1.Registry. */
export function registryService(ctx: ApiContext): UntypedServiceImplementation {
  const reg = ctx.registry;
  return {
    Register: unary<RegisterRequestMsg, { index: number; duplicate: boolean }>(async (call) => {
      if (!call.request.instance) throw new InvalidArgumentError("instance", "is required");
      const spec = specFromMsg(call.request.instance as InstanceMsg);
      validateInstanceSpec(spec);
      const session = sessionFromMsg(call.request.session);
      return onLeader(ctx, call, "Registry", "Register", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await proposeCommand(ctx, { op: "instance.register", instance: spec }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    Deregister: unary<{ service: string; id: string; session?: WriteSessionMsg }, { index: number; duplicate: boolean }>(async (call) => {
      const { service, id } = call.request;
      validateServiceName(service, "service");
      if (!id) throw new InvalidArgumentError("id", "must not be empty");
      const session = sessionFromMsg(call.request.session);
      return onLeader(ctx, call, "Registry", "Deregister", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await proposeCommand(ctx, { op: "instance.deregister", service, id }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    Heartbeat: unary<HeartbeatRequestMsg, HeartbeatResponseMsg>(async (call) => heartbeat(ctx, call.request)),
    KeepAlive: (call: ServerDuplexStream<HeartbeatRequestMsg, HeartbeatResponseMsg>) => {
      // Answers go out in request order: each waits for the one before it. The first failure ends
      // the stream with its status, after the answers before it.
      let chain = Promise.resolve();
      let failed = false;
      call.on("data", (h: HeartbeatRequestMsg) => {
        const answer = heartbeat(ctx, h);
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
      validateServiceConfig(config);
      const session = sessionFromMsg(call.request.session);
      return onLeader(ctx, call, "Registry", "PutService", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await proposeCommand(ctx, { op: "service.put", name, config }, session, deadline);
        return { index: res.index, duplicate: res.duplicate === true };
      });
    }),
    DeleteService: unary<{ name: string; session?: WriteSessionMsg }, { index: number; deleted: number; duplicate: boolean }>(async (call) => {
      const { name } = call.request;
      validateServiceName(name, "name");
      const session = sessionFromMsg(call.request.session);
      return onLeader(ctx, call, "Registry", "DeleteService", WRITE_WAIT_MS_MAX, async (deadline) => {
        const res = await proposeCommand(ctx, { op: "service.delete", name }, session, deadline);
        return { index: res.index, deleted: res.deleted ?? 0, duplicate: res.duplicate === true };
      });
    }),
    GetService: unary<{ name: string; consistency: "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE"; passingOnly: boolean }, object>(async (call) => {
      const { name, consistency, passingOnly } = call.request;
      validateServiceName(name, "name");
      await readBarrier(ctx, call, consistency);
      const got = reg.getService(name);
      if (!got) throw new NotFoundError(`service ${name} is not registered`);
      const instances = passingOnly ? got.instances.filter((i) => i.health === "passing") : got.instances;
      return { service: serviceToMsg(got.service, countHealth(got.instances)), instances: instances.map((i) => instanceToMsg(i)), index: reg.applied };
    }),
    ListServices: unary<{ consistency: "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE" }, object>(async (call) => {
      await readBarrier(ctx, call, call.request.consistency);
      const services = reg.listServices().map((s) => serviceToMsg(s.service, s.counts));
      return { services, index: reg.applied };
    }),
    Watch: (call: WatchCall) => serveWatch({ hub: ctx.hub, applied: () => reg.applied }, call),
  };
}

/** internalService serves raftmesh.v1.Internal: followers' heartbeat batches, on the leader only. */
export function internalService(ctx: ApiContext): UntypedServiceImplementation {
  return {
    RenewLeases: unary<{ items: HeartbeatRequestMsg[] }, { results: RenewResultMsg[] }>(async (call) => {
      if (!ctx.node.isLeader() || !ctx.leases.isLeading) {
        throw new NoLeaderError("this node is not the leader; heartbeats were not recorded", ctx.node.leader());
      }
      return { results: await ctx.leases.renew(call.request.items) };
    }),
  };
}

/** deadlineOfHeartbeat is the deadline of a follower's batch to the leader. */
export function heartbeatDeadline(): Date {
  return new Date(Date.now() + HEARTBEAT_WAIT_MS);
}
