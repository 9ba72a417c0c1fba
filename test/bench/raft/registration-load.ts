/**
 * The registration the raft benchmarks send in place of a put of the same size: the instance whose
 * id is the load key, in one of REGISTER_SERVICES services, with REGISTER_METADATA_CHARS of metadata
 * and the longest lease. bench.ts compares registrations/s with puts/s; profile.ts profiles either.
 */
import type { InstanceInput } from "../../../src/client/index.js";
import { TTL_MS_RANGE } from "../../../src/registry/limits.js";

/** VALUE_BYTES is the value size the issue asks for. */
export const VALUE_BYTES = 256;
/**
 * REGISTER_SERVICES: registrations are spread over this many services ("bench-0" …), so a whole
 * run (tens of thousands of registrations) stays under the registry's 10,000 instances per service.
 */
export const REGISTER_SERVICES = 100;
/**
 * REGISTER_METADATA_CHARS: the registration carries this many characters of metadata, so with its
 * id, address and port it holds about as many bytes as a put's key and 256-byte value.
 */
export const REGISTER_METADATA_CHARS = VALUE_BYTES;
/**
 * REGISTER_TTL_MS: the longest lease (TTL_MS_RANGE), so the benchmark's instances, which never
 * heartbeat, do not expire during the runs after theirs: with the default 5 s TTL the leader marked
 * tens of thousands of them critical while later put runs were measured (raftmesh at 0.26 of etcd's
 * puts per CPU-second at 64 in such a run, 0.43 with registrations left out).
 */
export const REGISTER_TTL_MS = TTL_MS_RANGE[1];

const METADATA = { blob: "m".repeat(REGISTER_METADATA_CHARS) };

/** registrationFor is the registration for a load key ("prefix-<n>"), and n, which picks its service. */
export function registrationFor(key: string): { n: number; request: InstanceInput } {
  const id = key.replace(/[^A-Za-z0-9._-]/g, "-");
  const n = Number(id.slice(id.lastIndexOf("-") + 1));
  return { n, request: { service: `bench-${n % REGISTER_SERVICES}`, id, address: "10.0.0.1", port: 8080, metadata: METADATA, ttlMs: REGISTER_TTL_MS } };
}
