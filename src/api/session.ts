import type { WriteSessionMsg } from "../common/messages.js";
import { CLIENT_ID_BYTES_MAX } from "../registry/limits.js";
import type { Session } from "../registry/types.js";
import { InvalidArgumentError } from "./errors.js";

/** sessionFromMsg reads an optional write session; an empty client id means none. */
export function sessionFromMsg(m: WriteSessionMsg | null | undefined): Session | undefined {
  if (!m?.clientId) return undefined;
  if (Buffer.byteLength(m.clientId) > CLIENT_ID_BYTES_MAX) {
    throw new InvalidArgumentError("session.client_id", `is longer than ${CLIENT_ID_BYTES_MAX} bytes`);
  }
  if (!Number.isSafeInteger(m.seq) || m.seq < 1) throw new InvalidArgumentError("session.seq", "must be 1 or more");
  return { client: m.clientId, seq: m.seq };
}
