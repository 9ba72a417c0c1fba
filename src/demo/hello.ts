/**
 * hello: the demo service `npm start` runs three of. Each instance is a small HTTP server that
 * answers with its id, registers itself with the cluster and heartbeats its lease, so that
 * `curl 127.0.0.1:7301/svc/hello/` goes through the balancing endpoint to one of them. Kill one
 * (its pid is printed) and its lease expires: traffic moves to the others.
 *
 * Run alone: tsx src/demo/hello.ts <id> <port> <api address,...>
 */
import { createServer } from "node:http";
import { RaftmeshClient, tlsFromEnv } from "../client/index.js";

/** HELLO_TTL_MS is the demo's lease: short, so a killed instance leaves the rotation within seconds. */
const HELLO_TTL_MS = 3_000;
/** RETRY_MS is the pause between registration attempts while the cluster elects its first leader. */
const RETRY_MS = 500;

const [id = "hello-1", portText = "7701", apis = "127.0.0.1:7201"] = process.argv.slice(2);
const port = Number(portText);
// RAFTMESH_TOKEN: a write token for service hello, when the cluster runs with access control.
const client = new RaftmeshClient(apis.split(","), { deadlineMs: 2_000, tls: tlsFromEnv(process.env), token: process.env.RAFTMESH_TOKEN || undefined });
let served = 0;

const server = createServer((req, res) => {
  served++;
  req.resume();
  res.setHeader("content-type", "text/plain");
  res.end(`hello from ${id} (request ${served}, path ${req.url})\n`);
});

async function register(): Promise<void> {
  for (;;) {
    try {
      await client.register({ service: "hello", id, address: "127.0.0.1", port, ttlMs: HELLO_TTL_MS });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}

server.listen(port, "127.0.0.1", () => {
  void register().then(() => {
    process.stdout.write(`${id} listening on 127.0.0.1:${port}, registered as hello/${id} (pid ${process.pid})\n`);
    setInterval(() => {
      client.heartbeat("hello", id).catch(() => {});
    }, HELLO_TTL_MS / 3);
  });
});

const stop = () => {
  server.close();
  client.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
