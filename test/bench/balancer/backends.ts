/** Bench backends: node:http servers on the given ports answering a small fixed body (one process). */
import { createServer } from "node:http";

const BODY = Buffer.from("hello from the bench backend\n");
for (const p of process.argv.slice(2).map(Number)) {
  createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", "content-length": BODY.length });
    res.end(BODY);
  })
    .listen(p, "127.0.0.1", () => process.stdout.write(`ready ${p}\n`));
}
