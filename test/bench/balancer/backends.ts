/**
 * Bench backends: node:http servers on the given ports answering a small fixed body (one process).
 * BENCH_BACKEND_TLS_CERT and BENCH_BACKEND_TLS_KEY (PEM paths) make them node:https servers with
 * that certificate: the instances of the "raftmesh http→tls" row, which the endpoint dials over TLS.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";

const BODY = Buffer.from("hello from the bench backend\n");
const certPath = process.env.BENCH_BACKEND_TLS_CERT;
const keyPath = process.env.BENCH_BACKEND_TLS_KEY;
const tls = certPath && keyPath ? { cert: readFileSync(certPath), key: readFileSync(keyPath) } : undefined;
const answer = (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", "content-length": BODY.length });
  res.end(BODY);
};
for (const p of process.argv.slice(2).map(Number)) {
  (tls ? createHttpsServer(tls, answer) : createServer(answer)).listen(p, "127.0.0.1", () => process.stdout.write(`ready ${p}\n`));
}
