import { request } from "node:http";
import { HTTP_BODY_BYTES_MAX } from "../limits.js";
import type { CheckResult, HttpProbe } from "../types.js";

/**
 * httpCheck sends one request: 2xx is passing, 429 (the server sheds load, it is not broken)
 * warning, anything else critical; with `body` set, a 2xx whose first HTTP_BODY_BYTES_MAX bytes do
 * not contain it is critical. The signal aborts it at the check's timeout.
 */
export function httpCheck(p: HttpProbe, signal: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    const req = request(p.url, { method: p.method, headers: { "user-agent": "raftmesh-check", ...p.headers }, signal, agent: false }, (res) => {
      const code = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        if (bytes < HTTP_BODY_BYTES_MAX) chunks.push(c);
        bytes += c.length;
        if (bytes >= HTTP_BODY_BYTES_MAX) res.destroy();
      });
      const done = () => {
        const line = `HTTP ${p.method} ${p.url}: ${code}`;
        if (code === 429) return resolve({ status: "warning", note: line });
        if (code < 200 || code > 299) return resolve({ status: "critical", note: line });
        if (p.body !== "" && !Buffer.concat(chunks).subarray(0, HTTP_BODY_BYTES_MAX).toString("utf8").includes(p.body)) {
          return resolve({ status: "critical", note: `${line}, body lacks "${p.body}"` });
        }
        resolve({ status: "passing", note: line });
      };
      res.on("end", done);
      res.on("close", done); // destroyed at the body limit: judge what was read
      res.on("error", () => undefined);
    });
    req.on("error", (err) => resolve({ status: "critical", note: `HTTP ${p.method} ${p.url}: ${signal.aborted ? "timed out" : err.message}` }));
    req.end();
  });
}
