import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  findHeadEnd,
  type HeadError,
  headerValue,
  isHeadError,
  LineKind,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from "../../../src/balancer/h1/head-parser.js";
import { HEADER_BYTES_MAX } from "../../../src/balancer/limits.js";

/** parse runs findHeadEnd then parseRequestHead on a whole head, as the proxy does. */
function parse(s: string): RequestHead | HeadError {
  const buf = Buffer.from(s, "latin1");
  const end = findHeadEnd(buf, 0, buf.length, HEADER_BYTES_MAX);
  if (typeof end !== "number") return end;
  if (end === -1) throw new Error("incomplete head");
  return parseRequestHead(buf, 0, end);
}

function ok(s: string): RequestHead {
  const h = parse(s);
  if (isHeadError(h)) throw new Error(`refused: ${h.message}`);
  return h;
}

function status(s: string): number {
  const h = parse(s);
  return isHeadError(h) ? h.status : 0;
}

/** forwarded is the header lines a parsed head forwards (kind Forward), as text. */
function forwarded(s: string, h: RequestHead): string[] {
  const buf = Buffer.from(s, "latin1");
  const out: string[] = [];
  for (let i = 0; i < h.lines.length; i += 3) if (h.lines[i + 2] === LineKind.Forward) out.push(buf.toString("latin1", h.lines[i]!, h.lines[i + 1]!));
  return out;
}

describe("balancer: HTTP/1.1 head parser", () => {
  it("balancer: h1: a request head gives method, target, version and the headers routing and framing need", () => {
    const h = ok("GET /svc/a/x?y=1 HTTP/1.1\r\nHost: a.service:7300\r\nContent-Length: 5\r\nX-Request-Id: r1\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\r\n");
    expect(h).toMatchObject({ method: "GET", target: "/svc/a/x?y=1", minor: 1, host: "a.service:7300", contentLength: 5, chunked: false, keepAlive: true, hasRequestId: true, forwardedFor: "10.0.0.1, 10.0.0.2" });
    expect(h.upgrade).toBe(false);
  });

  it("balancer: h1: hop-by-hop headers and those Connection names are dropped; framing and Host never are", () => {
    const s = "GET / HTTP/1.1\r\nhost: a\r\nconnection: keep-alive, x-custom, content-length, host\r\nkeep-alive: timeout=5\r\nx-custom: 1\r\nte: trailers\r\ntrailer: x\r\nproxy-connection: x\r\nupgrade: y\r\nx-keep: 2\r\ncontent-length: 0\r\n\r\n";
    const h = ok(s);
    expect(forwarded(s, h)).toEqual(["host: a", "x-keep: 2", "content-length: 0"]);
  });

  it("balancer: h1: keep-alive follows the version and Connection (RFC 9112 §9.3)", () => {
    expect(ok("GET / HTTP/1.1\r\nhost: a\r\n\r\n").keepAlive).toBe(true);
    expect(ok("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").keepAlive).toBe(false);
    expect(ok("GET / HTTP/1.0\r\n\r\n").keepAlive).toBe(false);
    expect(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive).toBe(true);
    expect(ok("GET / HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n").upgrade).toBe(true);
    expect(ok("GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\n\r\n").upgrade).toBe(false);
    expect(ok("\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n").method).toBe("GET");
  });

  it("balancer: h1: framing that two parsers could read differently is refused with 400 (request smuggling, RFC 9112 §6.3, §11.2)", () => {
    const base = "POST / HTTP/1.1\r\nhost: a\r\n";
    expect(status(`${base}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n`)).toBe(400);
    expect(status(`${base}transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 5\r\ncontent-length: 6\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 5, 6\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 5\r\ncontent-length: 5\r\n\r\n`)).toBe(0);
    expect(status(`${base}content-length: 5, 5\r\n\r\n`)).toBe(0);
    expect(status(`${base}content-length: -1\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 0x10\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 1 2\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: \r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length: 1234567890123456\r\n\r\n`)).toBe(400);
    expect(status(`${base}transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n`)).toBe(400);
    expect(status(`${base}transfer-encoding: gzip, chunked\r\n\r\n`)).toBe(501);
    expect(status(`${base}transfer-encoding: chunked, identity\r\n\r\n`)).toBe(501);
    expect(status("POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n")).toBe(400);
    // obs-fold, bare CR or LF, a space before the colon, a bad name or value byte.
    expect(status(`${base}x-a: 1\r\n folded\r\n\r\n`)).toBe(400);
    expect(status(`${base}x-a: 1\nx-b: 2\r\n\r\n`)).toBe(400);
    expect(status(`${base}x-a: 1\rx-b: 2\r\n\r\n`)).toBe(400);
    expect(status(`${base}content-length : 5\r\n\r\n`)).toBe(400);
    expect(status(`${base}x(a): 1\r\n\r\n`)).toBe(400);
    expect(status(`${base}: 1\r\n\r\n`)).toBe(400);
    expect(status(`${base}x-a: 1\x00\r\n\r\n`)).toBe(400);
    expect(status(`${base}no-colon\r\n\r\n`)).toBe(400);
    expect(status("GET / HTTP/1.1\nhost: a\r\n\r\n")).toBe(400);
    expect(status("GET /\x01 HTTP/1.1\r\nhost: a\r\n\r\n")).toBe(400);
    expect(status("GET  / HTTP/1.1\r\nhost: a\r\n\r\n")).toBe(400);
    expect(status("GET / HTTP/2.0\r\nhost: a\r\n\r\n")).toBe(400);
    expect(status("GET / HTTP/1.1\r\n\r\n")).toBe(400);
    expect(status("GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n")).toBe(400);
    expect(status("GET / HTTP/1.1\r\nhost: a\r\nexpect: 200-ok\r\n\r\n")).toBe(417);
    expect(ok("PUT / HTTP/1.1\r\nhost: a\r\nexpect: 100-Continue\r\ncontent-length: 1\r\n\r\n").expectContinue).toBe(true);
  });

  it("balancer: h1: findHeadEnd (a loop over the first bytes, then indexOf) answers as a plain indexOf search does, for any bytes, offsets and limit", () => {
    // The reference: the blank line by indexOf alone, then the same limit and bare-LF rules.
    const reference = (buf: Buffer, from: number, to: number, max: number): number | HeadError => {
      const at = buf.indexOf("\r\n\r\n", from);
      if (at !== -1 && at + 4 <= to) return at + 4 - from > max ? { status: 431 } as HeadError : at + 4;
      if (to - from > max) return { status: 431 } as HeadError;
      const lf = buf.indexOf("\n\n", from);
      return lf !== -1 && lf < to ? ({ status: 400 } as HeadError) : -1;
    };
    const status = (r: number | HeadError) => (typeof r === "number" ? r : r.status);
    // Bytes mostly CR, LF and one letter, so blank lines (and bare LFs) come at every place; long runs cross the loop's 1024 bytes.
    const bytes = fc.array(fc.constantFrom(13, 10, 120, 120, 120), { minLength: 0, maxLength: 3000, size: "max" });
    const limit = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3000 }));
    fc.assert(
      fc.property(bytes, fc.nat(3000), limit, (arr, fromSeed, max) => {
        const buf = Buffer.from(arr);
        const from = buf.length === 0 ? 0 : fromSeed % (buf.length + 1);
        expect(status(findHeadEnd(buf, from, buf.length, max))).toBe(status(reference(buf, from, buf.length, max)));
      }),
      { numRuns: 3000 },
    );
  });

  it("balancer: h1: a head of HEADER_BYTES_MAX bytes is accepted, one byte more is 431; bare LF heads are refused before they end", () => {
    const prefix = "GET / HTTP/1.1\r\nhost: a\r\nx-fill: ";
    const at = (n: number) => Buffer.from(`${prefix}${"x".repeat(n - prefix.length - 4)}\r\n\r\n`);
    const exact = at(HEADER_BYTES_MAX);
    expect(exact.length).toBe(HEADER_BYTES_MAX);
    expect(findHeadEnd(exact, 0, exact.length, HEADER_BYTES_MAX)).toBe(HEADER_BYTES_MAX);
    const over = at(HEADER_BYTES_MAX + 1);
    expect(findHeadEnd(over, 0, over.length, HEADER_BYTES_MAX)).toMatchObject({ status: 431 });
    // An unfinished head past the limit is refused without waiting for its end.
    const unfinished = Buffer.from(`${prefix}${"x".repeat(HEADER_BYTES_MAX)}`);
    expect(findHeadEnd(unfinished, 0, unfinished.length, HEADER_BYTES_MAX)).toMatchObject({ status: 431 });
    const lf = Buffer.from("GET / HTTP/1.1\nhost: a\n\n");
    expect(findHeadEnd(lf, 0, lf.length, HEADER_BYTES_MAX)).toMatchObject({ status: 400 });
  });

  it("balancer: h1: headerValue finds a header by name, case-insensitive, trimmed", () => {
    const s = "GET / HTTP/1.1\r\nhost: a\r\nX-User:  bob \r\ncookie: a=1; sid=xyz\r\n\r\n";
    const h = ok(s);
    const buf = Buffer.from(s);
    expect(headerValue(buf, h.lines, "x-user")).toBe("bob");
    expect(headerValue(buf, h.lines, "cookie")).toBe("a=1; sid=xyz");
    expect(headerValue(buf, h.lines, "x-use")).toBeUndefined();
  });

  const tokenChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~");
  const name = fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 }).filter((n) => !/^(host|content-length|transfer-encoding|connection|upgrade|expect|te|trailer|keep-alive|proxy-connection|x-request-id|x-forwarded-for|x-raftmesh-epoch)$/i.test(n));
  const valueChar = fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c));
  const value = fc.string({ unit: valueChar, maxLength: 40 }).map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ""));

  it("balancer: h1: property: any valid head parses, and its forwarded lines are the client's other lines in order", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 30 }), fc.constantFrom("GET", "POST", "PATCH", "X-CUSTOM"), (headers, method) => {
        const lines = headers.map(([n, v]) => `${n}: ${v}`);
        const s = `${method} /p HTTP/1.1\r\nhost: h\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`;
        const h = ok(s);
        expect(h.method).toBe(method);
        expect(forwarded(s, h)).toEqual(["host: h", ...lines]);
        const buf = Buffer.from(s, "latin1");
        for (const [n] of headers) expect(headerValue(buf, h.lines, n.toLowerCase())).toBe(headers.find(([m]) => m.toLowerCase() === n.toLowerCase())![1]);
      }),
    );
  });

  it("balancer: h1: property: every strict prefix of a head is incomplete, the whole head is found at its end", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), (headers) => {
        const s = `GET / HTTP/1.1\r\nhost: h\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
        const buf = Buffer.from(`${s}BODY`, "latin1");
        const len = Buffer.byteLength(s, "latin1");
        for (let cut = 0; cut < len; cut++) expect(findHeadEnd(buf, 0, cut, HEADER_BYTES_MAX)).toBe(-1);
        expect(findHeadEnd(buf, 0, buf.length, HEADER_BYTES_MAX)).toBe(len);
      }),
    );
  });

  it("balancer: h1: fuzz: mutated heads never throw; what parses has one framing and no CTL in what it keeps", () => {
    const seed = "POST /svc/a/b HTTP/1.1\r\nhost: a\r\ncontent-length: 12\r\ntransfer-encoding: chunked\r\nconnection: keep-alive, x-y\r\nx-y: 1\r\nexpect: 100-continue\r\n\r\n";
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "insert", "delete")), { minLength: 1, maxLength: 6 }), (edits) => {
        const b = [...Buffer.from(seed)];
        for (const [at, byte, op] of edits) {
          const i = Math.min(at, b.length - 1);
          if (op === "set") b[i] = byte;
          else if (op === "insert") b.splice(i, 0, byte);
          else b.splice(i, 1);
        }
        const buf = Buffer.from(b);
        const end = findHeadEnd(buf, 0, buf.length, HEADER_BYTES_MAX);
        if (typeof end !== "number" || end === -1) return;
        const h = parseRequestHead(buf, 0, end);
        if (isHeadError(h)) {
          expect([400, 417, 431, 501]).toContain(h.status);
          return;
        }
        expect(h.chunked && h.contentLength !== -1).toBe(false);
        for (let i = 0; i < h.lines.length; i += 3) {
          for (let j = h.lines[i]!; j < h.lines[i + 1]!; j++) {
            const c = buf[j]!;
            expect(c === 9 || (c >= 32 && c !== 127)).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("balancer: h1: a response head gives status and framing; Transfer-Encoding overrides Content-Length, whose line is then dropped", () => {
    const r = (s: string): ResponseHead | HeadError => {
      const buf = Buffer.from(s);
      return parseResponseHead(buf, 0, findHeadEnd(buf, 0, buf.length, 65536) as number);
    };
    expect(r("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")).toMatchObject({ status: 200, contentLength: 3, chunked: false, keepAlive: true });
    expect(r("HTTP/1.1 204\r\n\r\n")).toMatchObject({ status: 204, contentLength: -1 });
    expect(r("HTTP/1.0 200 OK\r\n\r\n")).toMatchObject({ keepAlive: false, contentLength: -1, chunked: false });
    expect(r("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")).toMatchObject({ keepAlive: false });
    const both = r("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n") as ResponseHead;
    expect(both).toMatchObject({ chunked: true, contentLength: -1 });
    expect(both.lines.filter((_, i) => i % 3 === 2)).toEqual([LineKind.Drop, LineKind.Drop, LineKind.Forward]);
    expect(isHeadError(r("HTTP/1.1 2000 OK\r\n\r\n"))).toBe(true);
    expect(isHeadError(r("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n"))).toBe(true);
    expect(isHeadError(r("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"))).toBe(true);
    expect(isHeadError(r("HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n"))).toBe(true);
    expect(isHeadError(r("ICY 200 OK\r\n\r\n"))).toBe(true);
  });
});

