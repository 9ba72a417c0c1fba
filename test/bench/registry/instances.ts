/**
 * The instances the benchmark registers: realistic ones (tags, metadata, zone), the same shape in
 * every phase so that throughput, memory and snapshot figures describe the same records.
 */
import { encodeCommand } from "../../../src/registry/codec.js";
import type { CommandEnvelope, InstanceSpec } from "../../../src/registry/types.js";

/** TTL_MS_LONG is the lease of instances nobody heartbeats: one hour (TTL_MS_RANGE's maximum), so none expires during a run. */
export const TTL_MS_LONG = 3_600_000;

/** instanceSpec is instance number i of a service: about 250 bytes as a log entry. */
export function instanceSpec(i: number, service: string, id: string, ttlMs: number): InstanceSpec {
  return {
    id,
    service,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8080,
    tags: ["http", "v2", `shard-${i % 16}`],
    metadata: { version: "1.4.2", team: "payments", build: `b${i}` },
    weight: 100,
    priority: i % 3,
    zone: `eu-west-1${"abc"[i % 3]}`,
    ttlMs,
    deregisterCriticalAfterMs: 0,
  };
}

/** registerEntryBytes is the log entry size of a sessioned registration of spec (what every node stores and replicates). */
export function registerEntryBytes(spec: InstanceSpec): number {
  return encodeCommand(envelope({ op: "instance.register", instance: spec })).length;
}

/**
 * kvValueBytesMatching is the value size whose kv.put log entry is as large as a registration's
 * entry of entryBytes: KV values travel base64-encoded in the entry, 4 bytes per 3.
 */
export function kvValueBytesMatching(entryBytes: number): number {
  // client.put is not sessioned (a put is idempotent), so its entry carries no session.
  const overhead = encodeCommand({ ...envelope({ op: "kv.put", key: "kv-r0-c16-/123456", value: "" }), session: undefined }).length;
  return Math.max(0, Math.floor(((entryBytes - overhead) * 3) / 4));
}

function envelope(cmd: CommandEnvelope["cmd"]): CommandEnvelope {
  return { v: 1, at: 1_700_000_000_000, session: { client: "0123456789abcdef01234567", seq: 123_456 }, cmd };
}
