import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CHUNK_LINE_BYTES_MAX, CHUNK_SIZE_DIGITS_MAX, ChunkedReader, TRAILER_BYTES_MAX } from "../../../src/balancer/h1/chunked.js";

/** walk feeds a chunked body in the given pieces; returns where it ended (in the whole), the payload, and whether it failed. */
function walk(whole: Buffer, cuts: number[]): { end: number; payload: Buffer; failed: boolean } {
  const r = new ChunkedReader();
  const payload: Buffer[] = [];
  const points = [...new Set(cuts.map((c) => Math.min(c, whole.length)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, whole.length]) {
    if (to <= from && to !== whole.length) continue;
    const piece = whole.subarray(from, to);
    const end = r.scan(piece, 0, piece.length, (a, b) => payload.push(piece.subarray(a, b)));
    if (r.failed) return { end: -1, payload: Buffer.concat(payload), failed: true };
    if (r.done) return { end: from + end, payload: Buffer.concat(payload), failed: false };
    from = to;
  }
  return { end: -1, payload: Buffer.concat(payload), failed: false };
}

function encode(parts: readonly Buffer[], opts: { ext?: string; trailers?: string[]; upper?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p.length === 0) continue;
    const size = opts.upper ? p.length.toString(16).toUpperCase() : p.length.toString(16);
    out.push(Buffer.from(`${size}${opts.ext ?? ""}\r\n`), p, Buffer.from("\r\n"));
  }
  out.push(Buffer.from(`0${opts.ext ?? ""}\r\n${(opts.trailers ?? []).map((t) => `${t}\r\n`).join("")}\r\n`));
  return Buffer.concat(out);
}

describe("balancer: chunked transfer coding", () => {
  it("balancer: chunked: property: any chunking of any body, fed in any pieces, ends exactly at its end and yields the body", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.nat(4000), { maxLength: 10 }),
        fc.constantFrom("", ";a=b", ' ; name="q"'),
        fc.array(fc.constantFrom("x-t: 1", "grpc-status: 0"), { maxLength: 2 }),
        fc.boolean(),
        (parts, cuts, ext, trailers, upper) => {
          const body = encode(
            parts.map((p) => Buffer.from(p)),
            { ext, trailers, upper },
          );
          const whole = Buffer.concat([body, Buffer.from("GET /next HTTP/1.1\r\n")]);
          const r = walk(whole, cuts);
          expect(r.failed).toBe(false);
          expect(r.end).toBe(body.length);
          expect(r.payload.equals(Buffer.concat(parts.map((p) => Buffer.from(p))))).toBe(true);
        },
      ),
    );
  });

  it("balancer: chunked: malformed framing fails rather than guesses", () => {
    const bad = [
      "x\r\nabc\r\n0\r\n\r\n",
      "3\nabc\r\n0\r\n\r\n",
      "3\r\nabcX\r\n0\r\n\r\n",
      "3\r\nabc\n0\r\n\r\n",
      "\r\n",
      "-3\r\nabc\r\n0\r\n\r\n",
      "0\r\nx-t: 1\n\r\n",
      "0\r\n\n",
      `${"1".repeat(CHUNK_SIZE_DIGITS_MAX + 1)}\r\n`,
      `3;${"e".repeat(CHUNK_LINE_BYTES_MAX)}\r\nabc\r\n0\r\n\r\n`,
      `0\r\nx-t: ${"v".repeat(TRAILER_BYTES_MAX)}\r\n\r\n`,
      "3;a\x00\r\nabc\r\n0\r\n\r\n",
    ];
    for (const b of bad) expect(walk(Buffer.from(b), []).failed, JSON.stringify(b.slice(0, 40))).toBe(true);
    // At the limits themselves: accepted.
    expect(walk(Buffer.from(`${"0".repeat(CHUNK_SIZE_DIGITS_MAX - 1)}3\r\nabc\r\n0\r\n\r\n`), []).failed).toBe(false);
    expect(walk(Buffer.from(`3;${"e".repeat(CHUNK_LINE_BYTES_MAX - 3)}\r\nabc\r\n0\r\n\r\n`), []).failed).toBe(false);
  });

  it("balancer: chunked: fuzz: mutated bodies never throw and never end past their input", () => {
    const seed = encode([Buffer.from("hello"), Buffer.from("world!")], { ext: ";x=1", trailers: ["t: v"] });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(seed.length), { maxLength: 4 }), (edits, cuts) => {
        const b = Buffer.from(seed);
        for (const [at, v] of edits) b[at] = v;
        const r = walk(b, cuts);
        if (!r.failed && r.end !== -1) expect(r.end).toBeLessThanOrEqual(b.length);
      }),
      { numRuns: 2000 },
    );
  });

  it("balancer: chunked: reset readies the reader for the next body", () => {
    const r = new ChunkedReader();
    const b = Buffer.from("1\r\na\r\n0\r\n\r\n");
    expect(r.scan(b, 0, b.length)).toBe(b.length);
    expect(r.done).toBe(true);
    r.reset();
    expect(r.done).toBe(false);
    expect(r.scan(b, 0, b.length)).toBe(b.length);
  });
});
