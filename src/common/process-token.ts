/**
 * Process tokens bind a supervised process to the "master" answers it was given. A supervisor
 * (`raftmesh run`) makes a fresh random token for every process it starts and passes it in the
 * environment; the SDK's master session sends it with every heartbeat (`process_token`). When the
 * process exits, the supervisor kills its process group and reports `critical` with
 * `exited_process` naming the token: the leader then knows that whoever received those answers
 * can no longer act on them, and need not wait for their lease before telling the next master
 * (src/registry/lease-driver.ts, `masterAnswer`).
 */
import { randomBytes } from "node:crypto";

/** PROCESS_TOKEN_ENV is the environment variable that carries a supervised process's token. */
export const PROCESS_TOKEN_ENV = "RAFTMESH_PROCESS_TOKEN";

/** PROCESS_TOKEN_BYTES_MAX bounds a token: 64 bytes hold a 256-bit random value in hex, far more than a collision needs. */
export const PROCESS_TOKEN_BYTES_MAX = 64;

/** PROCESS_TOKEN_PATTERN: letters, digits, '_' and '-' only, so a token prints and logs as it is. */
export const PROCESS_TOKEN_PATTERN = /^[A-Za-z0-9_-]*$/;

/** newProcessToken is a fresh random token (128 bits in hex: two processes never share one). */
export function newProcessToken(): string {
  return randomBytes(16).toString("hex");
}

/** processTokenProblem says what is wrong with a token, or null when it is valid ("" is valid: none). */
export function processTokenProblem(token: string): string | null {
  if (Buffer.byteLength(token) > PROCESS_TOKEN_BYTES_MAX) return `is longer than ${PROCESS_TOKEN_BYTES_MAX} bytes`;
  if (!PROCESS_TOKEN_PATTERN.test(token)) return `"${token}" may hold only letters, digits, '_' and '-'`;
  return null;
}
