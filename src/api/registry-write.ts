import { encodeAppCommand } from "../node/cluster-state-machine.js";
import { encodeCommand } from "../registry/codec.js";
import { NoResultError, resultError } from "../registry/errors.js";
import { CLIENT_ID_BYTES_MAX } from "../registry/limits.js";
import type { CommandResult, RegistryCommand, Session } from "../registry/types.js";
import type { ApiContext } from "./context.js";
import { InvalidArgumentError } from "./errors.js";
import { waitUntil } from "./leader-route.js";
import type { WriteSessionMsg } from "../common/messages.js";

/** OkResult is a command result that applied. */
export type OkResult = Extract<CommandResult, { ok: true }>;

/**
 * proposeCommand stamps a registry command with the cluster time (ctx.clusterTime), replicates it and
 * returns its result once applied here; a command the state machine refused becomes the matching
 * typed error (it took no effect), except a stale session: that seq fell out of the session
 * window, so whether an earlier attempt of it applied is no longer known.
 */
export async function proposeCommand(ctx: ApiContext, cmd: RegistryCommand, session: Session | undefined, deadline: Date): Promise<OkResult> {
  const data = encodeAppCommand(encodeCommand({ v: 1, at: ctx.clusterTime.now(), session, cmd }));
  if (ctx.unsafe.earlyAck) {
    // Negative control only: claim success as soon as the leader has the entry in its log.
    const { index } = ctx.node.proposeNoWait(data);
    return { ok: true, index, succeeded: true };
  }
  const res = (await waitUntil(ctx.node.propose(data), deadline, cmd.op)) as CommandResult | undefined;
  if (!res) throw new NoResultError(cmd.op);
  if (res.ok) return res;
  throw resultError(res);
}

/** sessionFromMsg reads an optional write session; an empty client id means none. */
export function sessionFromMsg(m: WriteSessionMsg | null | undefined): Session | undefined {
  if (!m?.clientId) return undefined;
  if (Buffer.byteLength(m.clientId) > CLIENT_ID_BYTES_MAX) {
    throw new InvalidArgumentError("session.client_id", `is longer than ${CLIENT_ID_BYTES_MAX} bytes`);
  }
  if (!Number.isSafeInteger(m.seq) || m.seq < 1) throw new InvalidArgumentError("session.seq", "must be 1 or more");
  return { client: m.clientId, seq: m.seq };
}
