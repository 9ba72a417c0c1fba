import { request } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RETRY_BODY_BYTES_MAX } from "../../../src/balancer/limits.js";
import { type Backend, call, endpointOf, noise, startBackend, startEndpoint, type TestEndpoint, table } from "./harness.js";

/** exchange writes bytes on a fresh connection and reads until the server closes it, `until` matches, or timeoutMs. */
function exchange(port: number, data: string | Buffer, until?: (s: string) => boolean, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    const done = () => {
      s.destroy();
      resolve(out);
    };
    s.on("data", (c) => {
      out += c.toString("latin1");
      if (until?.(out)) done();
    });
    s.on("error", () => {});
    s.on("close", () => resolve(out));
    s.setTimeout(timeoutMs, done);
    s.write(data);
  });
}

/** putInPieces sends body as a PUT in 16 KiB writes a turn of the event loop apart (several reads at the endpoint) and returns the answer's body. */
function putInPieces(port: number, path: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "PUT", headers: { "content-length": body.length } }, (res) => {
      const out: Buffer[] = [];
      res.on("data", (c: Buffer) => out.push(c));
      res.on("end", () => resolve(Buffer.concat(out)));
    });
    req.on("error", reject);
    let at = 0;
    const step = () => {
      if (at >= body.length) return void req.end();
      req.write(body.subarray(at, (at += 16 * 1024)));
      setImmediate(step);
    };
    step();
  });
}

/** startRaw starts a TCP backend that answers every connection with `reply` (a whole response written by hand) and closes. */
async function startRaw(reply: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s: Socket) => {
    s.on("error", () => {});
    s.once("data", () => s.end(reply));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0 };
}

describe("balancer: HTTP/1.1 framing through the endpoint", () => {
  let echo: Backend;
  let ep: TestEndpoint;
  let raw: Awaited<ReturnType<typeof startRaw>>;
  let hangs = 0;

  beforeAll(async () => {
    echo = await startBackend("echo", (req, res) => {
      if (req.url === "/hang") {
        // Answers only the second try of a request: the first hangs past the per-try timeout.
        hangs++;
        if (hangs % 2 === 1) return;
      }
      if (req.url === "/nobody") {
        res.statusCode = 204;
        return void res.end();
      }
      if (req.url === "/big") {
        // 4 MiB in 64 KiB writes, chunked (no length): the proxy must frame and pace it.
        const block = Buffer.alloc(64 * 1024, 97);
        let left = 64;
        const more = () => {
          while (left > 0) {
            left--;
            if (!res.write(block)) return void res.once("drain", more);
          }
          res.end();
        };
        return more();
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.once("end", () => {
        const body = Buffer.concat(chunks);
        res.setHeader("x-got-host", String(req.headers.host));
        res.setHeader("x-got-te", String(req.headers["transfer-encoding"]));
        if (req.method === "HEAD") res.setHeader("content-length", "42");
        // Answered in two writes without a length: chunked on the wire.
        res.write(`${req.method} ${req.url} ${body.length}:`);
        res.end(body);
      });
    });
    raw = await startRaw("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nread to the close");
    ep = await startEndpoint([
      table("echo", [endpointOf(echo)]),
      table("raw", [endpointOf({ id: "raw", port: raw.port })]),
      table("slow", [endpointOf(echo)], { perTryTimeoutMs: 300, retries: 1, outlierConsecutiveFailures: 0 }),
    ]);
  });
  afterAll(async () => {
    await ep.stop();
    await echo.close();
    raw.server.close();
  });

  it("balancer: h1: smuggling attempts get 400 and never reach an instance; the connection closes", async () => {
    const before = echo.hits;
    const attempts = [
      "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /svc/echo/smuggled HTTP/1.1\r\nhost: x\r\n\r\n",
      "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ncontent-length: 40\r\n\r\nabcd",
      "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n x: folded\r\n\r\n0\r\n\r\n",
      "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ntransfer-encoding : chunked\r\n\r\n0\r\n\r\n",
      "GET /svc/echo/ HTTP/1.1\nhost: x\n\n",
    ];
    for (const a of attempts) {
      const out = await exchange(ep.port, a);
      expect(out, JSON.stringify(a)).toMatch(/^HTTP\/1\.1 400 /);
      expect(out).toContain("connection: close");
      expect(out).not.toContain("smuggled");
    }
    expect(echo.hits).toBe(before);
    // A chunk size that is not hex ends the connection without a response for a second request.
    const bad = await exchange(ep.port, "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n\r\nGET /svc/echo/smuggled HTTP/1.1\r\nhost: x\r\n\r\n");
    expect(bad).not.toContain("smuggled");
    expect(await exchange(ep.port, "POST /svc/echo/ HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n")).toMatch(/^HTTP\/1\.1 501 /);
  });

  it("balancer: h1: pipelined requests are answered in order on one connection", async () => {
    const out = await exchange(
      ep.port,
      "GET /svc/echo/1 HTTP/1.1\r\nhost: x\r\n\r\nPOST /svc/echo/2 HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabcGET /svc/echo/3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    // The answers are chunked: their parts appear in order, each after its own status line.
    const at = ["GET /1 0:", "POST /2 3:", "abc", "GET /3 0:"].map((p) => out.indexOf(p));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(out.match(/HTTP\/1\.1 200/g)?.length).toBe(3);
  });

  it("balancer: h1: a chunked upload is streamed with its chunking; a chunked answer passes through whole", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: ep.port, path: "/svc/echo/up", method: "POST" }, (res) => {
        let s = "";
        res.on("data", (c) => (s += c));
        res.once("end", () => resolve(`${res.headers["x-got-te"]} ${res.headers["transfer-encoding"]} ${s}`));
      });
      req.once("error", reject);
      req.write("part one,");
      setTimeout(() => req.end("part two"), 50);
    });
    expect(body).toBe("chunked chunked POST /up 17:part one,part two");
  });

  it("balancer: h1: large bodies stream both ways (1 MiB up, 4 MiB down)", async () => {
    const up = Buffer.alloc(1 << 20, 98);
    const r = await call(ep.port, "/svc/echo/echo", { method: "PUT", body: up.toString() });
    expect(r.status).toBe(200);
    expect(r.body).toBe(`PUT /echo ${up.length}:${up.toString()}`);
    const down = await call(ep.port, "/svc/echo/big");
    expect(down.body.length).toBe(4 << 20);
    expect(down.body.replaceAll("a", "")).toBe("");
  });

  it("balancer: h1: bodies read in pieces into the shared read buffer arrive whole while other connections read: one kept for retries (RETRY_BODY_BYTES_MAX), one streamed (1 MiB)", async () => {
    const kept = noise(RETRY_BODY_BYTES_MAX, 1);
    const streamed = noise(1 << 20, 2);
    const others = Promise.all(Array.from({ length: 40 }, (_, i) => putInPieces(ep.port, `/svc/echo/o${i}`, noise(3000, 10 + i))));
    const [a, b, rest] = await Promise.all([putInPieces(ep.port, "/svc/echo/kept", kept), putInPieces(ep.port, "/svc/echo/streamed", streamed), others]);
    expect(a.equals(Buffer.concat([Buffer.from(`PUT /kept ${kept.length}:`), kept]))).toBe(true);
    expect(b.equals(Buffer.concat([Buffer.from(`PUT /streamed ${streamed.length}:`), streamed]))).toBe(true);
    for (const [i, r] of rest.entries()) expect(r.equals(Buffer.concat([Buffer.from(`PUT /o${i} 3000:`), noise(3000, 10 + i)]))).toBe(true);
  });

  it("balancer: h1: HEAD and 204 answers have no body, and the connection carries the next request", async () => {
    const out = await exchange(ep.port, "HEAD /svc/echo/h HTTP/1.1\r\nhost: x\r\n\r\nGET /svc/echo/nobody HTTP/1.1\r\nhost: x\r\n\r\nGET /svc/echo/after HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    const heads = out.split("HTTP/1.1 ").slice(1);
    expect(heads.length).toBe(3);
    expect(heads[0]).toMatch(/^200 /);
    expect(heads[0]).toContain("content-length: 42");
    expect(heads[0]!.endsWith("\r\n\r\n")).toBe(true);
    expect(heads[1]).toMatch(/^204 /);
    expect(heads[1]!.endsWith("\r\n\r\n")).toBe(true);
    expect(heads[2]).toContain("GET /after 0:");
  });

  it("balancer: h1: an answer without length is read to the close: chunked to an HTTP/1.1 client, closed after for HTTP/1.0", async () => {
    const r11 = await call(ep.port, "/svc/raw/");
    expect(r11.body).toBe("read to the close");
    expect(r11.headers["transfer-encoding"]).toBe("chunked");
    const r10 = await exchange(ep.port, "GET /svc/raw/ HTTP/1.0\r\n\r\n");
    expect(r10).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r10).toContain("connection: close");
    expect(r10.endsWith("\r\n\r\nread to the close")).toBe(true);
  });

  it("balancer: h1: an HTTP/1.0 client without Host is routed by path and the instance gets a Host; a chunked answer is decoded for it", async () => {
    const out = await exchange(ep.port, "GET /svc/echo/ten HTTP/1.0\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 200 /);
    expect(out).toContain(`x-got-host: 127.0.0.1:${echo.port}`);
    expect(out).not.toMatch(/transfer-encoding/i);
    expect(out.endsWith("\r\n\r\nGET /ten 0:")).toBe(true);
  });

  it("balancer: h1: a client ending its side after the request still gets the response", async () => {
    const out = await new Promise<string>((resolve) => {
      const s = connect(ep.port, "127.0.0.1");
      let buf = "";
      s.on("data", (c) => (buf += c));
      s.on("close", () => resolve(buf));
      s.end("GET /svc/echo/halfclose HTTP/1.1\r\nhost: x\r\n\r\n");
    });
    expect(out).toMatch(/^HTTP\/1\.1 200 /);
    expect(out).toContain("GET /halfclose 0:");
  });

  it("balancer: h1: a try without an answer within perTryTimeoutMs is cut: a GET is tried again, a POST gets 504", async () => {
    hangs = 0;
    const t0 = Date.now();
    const get = await call(ep.port, "/svc/slow/hang");
    expect(get.status).toBe(200);
    expect(get.body).toBe("GET /hang 0:");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    hangs = 0;
    const post = await call(ep.port, "/svc/slow/hang", { method: "POST", body: "x" });
    expect(post.status).toBe(504);
    expect(JSON.parse(post.body)).toMatchObject({ error: "upstream-timeout", service: "slow" });
    expect(hangs).toBe(1);
  });

  it("balancer: h1: a pooled connection last used under the 30 s default still cuts a 300 ms per-try timeout on time", async () => {
    // "echo" and "slow" share the instance, so they share its pooled connections: a connection
    // whose deadline timer was set for the 30 s default must be set anew for the shorter deadline.
    for (let i = 0; i < 4; i++) expect((await call(ep.port, "/svc/echo/warm")).status).toBe(200);
    hangs = 0;
    const t0 = Date.now();
    const post = await call(ep.port, "/svc/slow/hang", { method: "POST", body: "x" });
    expect(post.status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
