/**
 * Profile harness: the HTTP/1.1 listener in this process (no worker thread), a static table over
 * the given backends, for `node --cpu-prof`. Stops itself after the given seconds.
 * Args: <seconds> <http port> <tcp port> <backend port>...
 */
import { createListener } from "../../../src/balancer/http-listener.js";
import { balancerConfig } from "../../../src/balancer/policy/index.js";
import { RouteTable } from "../../../src/balancer/route-table.js";
import { TcpListener } from "../../../src/balancer/tcp-proxy.js";
import { UpstreamPools } from "../../../src/balancer/upstream-pool.js";

const [seconds, httpPort, tcpPort, ...backendPorts] = process.argv.slice(2).map(Number);
const endpoints = backendPorts.map((port, i) => ({ id: `b${i}`, address: "127.0.0.1", port, weight: 1, priority: 0, zone: "", health: "passing" as const }));
const routes = new RouteTable("");
routes.apply({ full: true, tables: [{ name: "hello", mode: "active-active", config: balancerConfig({}), endpoints }], removed: [] });
const pools = new UpstreamPools();
const server = createListener({ routes, pools, requestIdPrefix: "p-", random: Math.random });
server.listen(httpPort, "127.0.0.1");
const tcp = new TcpListener(routes, "hello");
tcp.server.listen(tcpPort, "127.0.0.1", () => process.stdout.write("ready\n"));
setTimeout(() => process.exit(0), (seconds ?? 10) * 1000);
