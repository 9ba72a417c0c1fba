/**
 * Bench endpoint: the raftmesh balancing endpoint (real worker threads) with a static table — the
 * data plane alone, as a node runs it, without a Raft cluster around it.
 * Args: <http port> <tcp port> <backend port>...
 * BENCH_METRICS=0 runs it with metrics off (no counters buffer, routes unwrapped); the default,
 * like the node's, is on (src/balancer/stats.ts).
 */
import pino from "pino";
import { balancerConfig } from "../../../src/balancer/policy/index.js";
import { StatsSlots } from "../../../src/balancer/stats.js";
import { WorkerPool } from "../../../src/balancer/workers.js";

const [httpPort, tcpPort, ...backendPorts] = process.argv.slice(2).map(Number);
const endpoints = backendPorts.map((port, i) => ({ id: `b${i}`, address: "127.0.0.1", port, weight: 1, priority: 0, zone: "", health: "passing" as const }));
const tables = [{ name: "hello", mode: "active-active" as const, config: balancerConfig({}), endpoints }];
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
    { kind: "http", name: "http", host: "127.0.0.1", port: httpPort ?? 0 },
    { kind: "tcp", name: "tcp", host: "127.0.0.1", port: tcpPort ?? 0, service: "hello" },
  ],
  localZone: "",
  nodeId: "bench",
  logger: pino({ level: "warn" }),
  current: () => current as typeof message,
  stats: metrics,
});
process.stdout.write(`ready ${JSON.stringify(Object.fromEntries(pool.ports))}\n`);
process.on("SIGTERM", () => void pool.stop().then(() => process.exit(0)));
