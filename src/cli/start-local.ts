/**
 * npm start: a local 3-node cluster on 127.0.0.1, one `raftmesh agent` process per node, data
 * in ./data/<id>/. Prints each node's addresses and the leader; Ctrl-C stops all three cleanly;
 * the next `npm start` restarts them on the same data. `npm start -- --tls` runs them with mutual
 * TLS on every port, with a development CA and node certificates made in ./data/tls/ (kept across
 * starts; `raftmesh tls init` is the same code).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RaftmeshClient } from "../client/index.js";
import { tlsInit } from "./tls-command.js";
import { table } from "./table.js";

/** LOCAL_NODES is the size of the local cluster. */
const LOCAL_NODES = 3;
/** Ports of node k are the DESIGN.md defaults plus k: peer 7101, API 7201, admin 7401 for n1. */
const PEER_BASE = 7100;
const API_BASE = 7200;
const ADMIN_BASE = 7400;
const BALANCER_BASE = 7300;
/** HELLO_PORTS are the demo service's three instances (src/demo/hello.ts), behind every node's endpoint. */
const HELLO_PORTS = [7701, 7702, 7703];
/** LEADER_WAIT_MS bounds how long we wait for every node to be ready before saying something is wrong. */
const LEADER_WAIT_MS = 15_000;
/** READY_ASK_MS bounds one /readyz request. */
const READY_ASK_MS = 1_000;
/** STOP_WAIT_MS: a node that has not exited this long after SIGTERM gets SIGKILL. */
const STOP_WAIT_MS = 12_000;

const ids = Array.from({ length: LOCAL_NODES }, (_, i) => `n${i + 1}`);
const port = (base: number, id: string) => base + Number(id.slice(1));
const members = ids.map((id) => `${id}=127.0.0.1:${port(PEER_BASE, id)}/127.0.0.1:${port(API_BASE, id)}`).join(",");
const dataDir = process.env.RAFTMESH_DATA_DIR || "./data";
const startArgs = process.argv.slice(2);
for (const a of startArgs) {
  if (a !== "--tls") {
    process.stderr.write(`npm start: unknown option "${a}" (the only one is --tls)\n`);
    process.exit(2);
  }
}
/** tlsDir holds the local cluster's CA and node certificates when --tls is given. */
const tlsDir = startArgs.includes("--tls") ? join(dataDir, "tls") : undefined;

/** prepareTls makes the development CA and node certificates once; later starts reuse them. */
function prepareTls(dir: string): void {
  if (ids.every((id) => existsSync(join(dir, `${id}.pem`))) && existsSync(join(dir, "ca.pem"))) return;
  const result = tlsInit({ dir, nodes: ids });
  process.stdout.write(`TLS: ${result.caKept ? "kept the CA" : "made a development CA"} and node certificates in ${dir}/\n`);
}

/** tlsEnv is node id's TLS settings (none without --tls). */
function tlsEnv(id: string): Record<string, string> {
  if (!tlsDir) return {};
  return { RAFTMESH_TLS_CA: join(tlsDir, "ca.pem"), RAFTMESH_TLS_CERT: join(tlsDir, `${id}.pem`), RAFTMESH_TLS_KEY: join(tlsDir, `${id}-key.pem`) };
}

/** clientEnv is what a client of the local cluster needs: the CA to trust (none without --tls). */
function clientEnv(): Record<string, string> {
  return tlsDir ? { RAFTMESH_CA: join(tlsDir, "ca.pem") } : {};
}

/** Children run the same CLI: through tsx from the sources, or plain node from dist/. */
function agentCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const main = self.replace(/start-local\.(ts|js)$/, "main.$1");
  return self.endsWith(".ts") ? ["--import", "tsx", main, "agent"] : [main, "agent"];
}

const children = new Map<string, ChildProcess>();
let stopping = false;

function startNode(id: string): void {
  const child = spawn(process.execPath, agentCommand(), {
    env: {
      ...process.env,
      RAFTMESH_NODE_ID: id,
      RAFTMESH_DATA_DIR: dataDir,
      RAFTMESH_PEER_LISTEN: `127.0.0.1:${port(PEER_BASE, id)}`,
      RAFTMESH_API_LISTEN: `127.0.0.1:${port(API_BASE, id)}`,
      RAFTMESH_ADMIN_LISTEN: `127.0.0.1:${port(ADMIN_BASE, id)}`,
      RAFTMESH_BALANCER_LISTEN: `127.0.0.1:${port(BALANCER_BASE, id)}`,
      RAFTMESH_MEMBERS: members,
      RAFTMESH_BOOTSTRAP: "true",
      RAFTMESH_LOG_FORMAT: "json",
      ...tlsEnv(id),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.set(id, child);
  const relay = (stream: NodeJS.ReadableStream) =>
    createInterface({ input: stream }).on("line", (line) => process.stdout.write(`${id} | ${compact(line)}\n`));
  if (child.stdout) relay(child.stdout);
  if (child.stderr) relay(child.stderr);
  child.on("exit", (code, signal) => {
    children.delete(id);
    if (!stopping) process.stdout.write(`${id} | exited (${signal ?? `status ${code}`}); the other nodes keep running\n`);
    if (stopping && children.size === 0) process.exit(0);
  });
}

/** compact turns a pino JSON line into "LEVEL message key=value ..." for reading in a terminal. */
function compact(line: string): string {
  try {
    const { level, msg, time, pid, hostname, node, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const names: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    return `${(names[level as number] ?? String(level)).padEnd(5)} ${String(msg)} ${fields}`;
  } catch {
    return line;
  }
}

/** startHello runs one instance of the demo service as its own process, so it can be killed alone. */
function startHello(n: number, hport: number): void {
  const self = fileURLToPath(import.meta.url);
  const file = self.replace(/cli[/\\]start-local\.(ts|js)$/, "demo/hello.$1");
  const apis = ids.map((id) => `127.0.0.1:${port(API_BASE, id)}`).join(",");
  const args = file.endsWith(".ts") ? ["--import", "tsx", file] : [file];
  const child = spawn(process.execPath, [...args, `hello-${n}`, String(hport), apis], { env: { ...process.env, ...clientEnv() }, stdio: ["ignore", "pipe", "pipe"] });
  demos.add(child);
  const relay = (stream: NodeJS.ReadableStream) => createInterface({ input: stream }).on("line", (line) => process.stdout.write(`hello-${n} | ${line}\n`));
  if (child.stdout) relay(child.stdout);
  if (child.stderr) relay(child.stderr);
  child.on("exit", (code, signal) => {
    demos.delete(child);
    if (!stopping) process.stdout.write(`hello-${n} | exited (${signal ?? `status ${code}`}); its lease expires and traffic moves to the others\n`);
  });
}

const demos = new Set<ChildProcess>();

function stopAll(): void {
  if (stopping) return;
  stopping = true;
  for (const d of demos) d.kill("SIGTERM");
  process.stdout.write("stopping the local cluster...\n");
  for (const child of children.values()) child.kill("SIGTERM");
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
    process.exit(1);
  }, STOP_WAIT_MS).unref();
  if (children.size === 0) process.exit(0);
}

async function reportWhenLed(): Promise<void> {
  const client = new RaftmeshClient(ids.map((id) => `127.0.0.1:${port(API_BASE, id)}`), { deadlineMs: 1_000, tls: tlsDir ? { ca: join(tlsDir, "ca.pem") } : undefined });
  const admin = tlsDir ? "https" : "http";
  const start = Date.now();
  try {
    let warned = false;
    while (!stopping) {
      if (!warned && Date.now() - start > LEADER_WAIT_MS) {
        warned = true;
        process.stdout.write(`the nodes are not all ready (a leader, caught up, balancing endpoint listening) after ${LEADER_WAIT_MS} ms: see the node logs above (still waiting)\n`);
      }
      const st = await client.status().catch(() => undefined);
      // Printed once every node is ready (/readyz: a leader known, caught up, its balancing endpoint
      // listening), so the addresses below take traffic when the user reads them.
      if (st?.leader && (await Promise.all(ids.map(ready))).every(Boolean)) {
        const rows = ids.map((id) => [
          id,
          `127.0.0.1:${port(PEER_BASE, id)}`,
          `127.0.0.1:${port(API_BASE, id)}`,
          `http://127.0.0.1:${port(BALANCER_BASE, id)}`,
          `${admin}://127.0.0.1:${port(ADMIN_BASE, id)}`,
        ]);
        process.stdout.write(`\n${table(["NODE", "PEER", "API (gRPC)", "BALANCER (HTTP)", "ADMIN (HTTP)"], rows)}\n`);
        const ca = tlsDir ? ` --ca ${join(tlsDir, "ca.pem")}` : "";
        process.stdout.write(`leader: ${st.leader} (term ${st.term}); data in ${dataDir}/; try: npx raftmesh status${ca}; Ctrl-C stops\n`);
        if (tlsDir) process.stdout.write(`TLS: mutual TLS between the nodes; API and admin over TLS (CA ${join(tlsDir, "ca.pem")}; client certificate ${join(tlsDir, "client.pem")})\n`);
        process.stdout.write(`demo: three instances of hello; try: curl 127.0.0.1:${port(BALANCER_BASE, "n1")}/svc/hello/\n\n`);
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    client.close();
  }
}

/** localCa is the local cluster's CA under --tls, read at the first readiness check. */
let localCa: Buffer | undefined;

/** ready asks node id's admin endpoint GET /readyz (over HTTPS with the local CA under --tls): true on 200. */
function ready(id: string): Promise<boolean> {
  const url = `${tlsDir ? "https" : "http"}://127.0.0.1:${port(ADMIN_BASE, id)}/readyz`;
  if (!tlsDir) return fetch(url, { signal: AbortSignal.timeout(READY_ASK_MS) }).then((r) => r.ok, () => false);
  // Read once: the CA exists before the nodes start (prepareTls) and is asked every 200 ms per node.
  localCa ??= readFileSync(join(tlsDir, "ca.pem"));
  const ca = localCa;
  return new Promise((resolve) => {
    const req = httpsRequest(url, { ca, timeout: READY_ASK_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

if (tlsDir) prepareTls(tlsDir);
process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);
for (const id of ids) startNode(id);
// The demo instances register themselves (retrying until the cluster has a leader) and heartbeat.
for (const [i, p] of HELLO_PORTS.entries()) startHello(i + 1, p);
void reportWhenLed();
