/**
 * Bench endpoint: the raftmesh balancing endpoint (real worker threads) with a static table — the
 * data plane alone, as a node runs it, without a Raft cluster around it.
 * Args: <http port> <tcp port> <backend port>...
 * BENCH_METRICS=0 runs it with metrics off (no counters buffer, routes unwrapped); the default,
 * like the node's, is on (src/balancer/stats.ts).
 * BENCH_TLS_CERT and BENCH_TLS_KEY (PEM paths) make the HTTP listener serve HTTPS with them (the
 * "raftmesh https" row); BENCH_UPSTREAM_CA (PEM path) sets upstreamTls on service "hello" and
 * checks its instances' certificates against that CA (the "raftmesh http→tls" row).
 */
import { readFileSync } from "node:fs";
import pino from "pino";
import { balancerConfig } from "../../../src/balancer/policy/index.js";
import { StatsSlots } from "../../../src/balancer/stats.js";
import { WorkerPool } from "../../../src/balancer/workers.js";

const [httpPort, tcpPort, ...backendPorts] = process.argv.slice(2).map(Number);
const endpoints = backendPorts.map((port, i) => ({ id: `b${i}`, address: "127.0.0.1", port, weight: 1, priority: 0, zone: "", health: "passing" as const }));
const tlsCert = process.env.BENCH_TLS_CERT;
const tlsKey = process.env.BENCH_TLS_KEY;
const listenerTls = tlsCert && tlsKey ? { cert: readFileSync(tlsCert, "utf8"), key: readFileSync(tlsKey, "utf8") } : undefined;
const upstreamCa = process.env.BENCH_UPSTREAM_CA ? readFileSync(process.env.BENCH_UPSTREAM_CA, "utf8") : undefined;
const tables = [{ name: "hello", mode: "active-active" as const, config: balancerConfig(upstreamCa ? { upstreamTls: true } : {}), endpoints }];
// BENCH_GRPC_PORTS (comma-separated) adds service "hello-grpc" over those gRPC backends, reached through h2c.
const grpcPorts = (process.env.BENCH_GRPC_PORTS ?? "").split(",").filter((p) => p !== "").map(Number);
if (grpcPorts.length > 0) {
  const grpcEndpoints = grpcPorts.map((port, i) => ({ id: `g${i}`, address: "127.0.0.1", port, weight: 1, priority: 0, zone: "", health: "passing" as const }));
  tables.push({ name: "hello-grpc", mode: "active-active" as const, config: balancerConfig({}), endpoints: grpcEndpoints });
}
const metrics = process.env.BENCH_METRICS !== "0";
const message = { t: "tables" as const, full: true, tables, removed: [] };
const current = metrics ? new StatsSlots().stamp(message) : message;
const pool = await WorkerPool.start({
  workers: Number(process.env.BENCH_WORKERS ?? 1),
  listeners: [
    { kind: "http", name: "http", host: "127.0.0.1", port: httpPort ?? 0, ...(listenerTls ? { tls: true } : {}) },
    { kind: "tcp", name: "tcp", host: "127.0.0.1", port: tcpPort ?? 0, service: "hello" },
  ],
  localZone: "",
  nodeId: "bench",
  logger: pino({ level: "warn" }),
  current: () => current as typeof message,
  stats: metrics,
  ...(listenerTls || upstreamCa ? { tls: { listener: listenerTls, upstream: { ca: upstreamCa } } } : {}),
});
process.stdout.write(`ready ${JSON.stringify(Object.fromEntries(pool.ports))}\n`);
process.on("SIGTERM", () => void pool.stop().then(() => process.exit(0)));
