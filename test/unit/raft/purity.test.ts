import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const RAFT_DIR = join(import.meta.dirname, "..", "..", "..", "src", "raft");

// The core must stay pure: no I/O, no clock, no randomness of its own.
const FORBIDDEN: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: import"],
  [/from\s+["'](fs|net|http|os|path|child_process|timers|crypto)["']/, "a Node built-in import"],
  [/from\s+["'](level|classic-level|pino)["']/, "an I/O library import"],
  [/from\s+["']@grpc\//, "a gRPC import"],
  [/\brequire\(/, "require()"],
  [/\bDate\b/, "Date"],
  [/Math\.random/, "Math.random"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask|performance|process)\b/, "timers or process"],
];

describe("raft: purity", () => {
  it("raft: src/raft imports nothing with I/O and calls no clock or random source", () => {
    const files = readdirSync(RAFT_DIR).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(5);
    const found: string[] = [];
    for (const f of files) {
      const lines = readFileSync(join(RAFT_DIR, f), "utf8").split("\n");
      lines.forEach((line, i) => {
        if (line.trim().startsWith("//") || line.trim().startsWith("*")) return;
        for (const [re, what] of FORBIDDEN) if (re.test(line)) found.push(`${f}:${i + 1}: ${what}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it("raft: the purity scan catches a forbidden line", () => {
    const bad = ['import { readFileSync } from "node:fs";', "const t = Date.now();", "const r = Math.random();"];
    for (const line of bad) expect(FORBIDDEN.some(([re]) => re.test(line))).toBe(true);
  });
});
