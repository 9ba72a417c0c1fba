import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const BALANCER_DIR = join(import.meta.dirname, "..", "..", "..", "src", "balancer");

// The decision half stays pure: no I/O, no clock, no randomness of its own (random() and nowMs
// are injected), so every test above replays exactly.
const FORBIDDEN: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: import"],
  [/from\s+["'](fs|net|http|http2|os|path|child_process|timers|crypto|worker_threads)["']/, "a Node built-in import"],
  [/from\s+["'](level|classic-level|pino)["']/, "an I/O library import"],
  [/from\s+["']@grpc\//, "a gRPC import"],
  [/\brequire\(/, "require()"],
  [/\bDate\b/, "Date"],
  [/Math\.random/, "Math.random"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask|performance|process)\b/, "timers or process"],
];

function pureFiles(): string[] {
  const policy = readdirSync(join(BALANCER_DIR, "policy"))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join("policy", f));
  // The HTTP/1.1 head parser and chunked reader work on buffers alone, like the decision half.
  return ["types.ts", "h1/head-parser.ts", "h1/chunked.ts", ...policy];
}

describe("balancer: purity", () => {
  it("balancer: src/balancer/policy, types.ts and the h1 parsers import nothing with I/O and call no clock or random source", () => {
    const files = pureFiles();
    expect(files.length).toBeGreaterThan(10);
    const found: string[] = [];
    for (const f of files) {
      const lines = readFileSync(join(BALANCER_DIR, f), "utf8").split("\n");
      lines.forEach((line, i) => {
        if (line.trim().startsWith("//") || line.trim().startsWith("*")) return;
        for (const [re, what] of FORBIDDEN) if (re.test(line)) found.push(`${f}:${i + 1}: ${what}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it("balancer: the decision half imports nothing outside src/balancer (not even registry types)", () => {
    const outside: string[] = [];
    for (const f of pureFiles()) {
      const text = readFileSync(join(BALANCER_DIR, f), "utf8");
      for (const m of text.matchAll(/from\s+["']([^"']+)["']/g)) {
        const target = join(BALANCER_DIR, f, "..", m[1] ?? "");
        if (!target.startsWith(BALANCER_DIR)) outside.push(`${f}: ${m[1]}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it("balancer: the purity scan catches a forbidden line", () => {
    const bad = ['import { Worker } from "node:worker_threads";', "const t = Date.now();", "const r = Math.random();", "setTimeout(f, 1);"];
    for (const line of bad) expect(FORBIDDEN.some(([re]) => re.test(line))).toBe(true);
  });
});
