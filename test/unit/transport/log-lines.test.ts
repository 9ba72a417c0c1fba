import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { GrpcTransport } from "../../../src/transport/index.js";
import { nodeId } from "../../../src/raft/index.js";

/** keysOfLine lists a JSON object line's top-level keys in order, duplicates kept (JSON.parse drops them). */
function keysOfLine(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  const re = /"((?:[^"\\]|\\.)*)"\s*:|[{}[\]]|"(?:[^"\\]|\\.)*"/g;
  for (const m of line.matchAll(re)) {
    const t = m[0];
    if (t === "{" || t === "[") depth++;
    else if (t === "}" || t === "]") depth--;
    else if (m[1] !== undefined && depth === 1) keys.push(m[1]);
  }
  return keys;
}

describe("transport: log lines", () => {
  it("a pino logger bound as the agent binds it writes every key once", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split("\n").filter(Boolean));
        done();
      },
    });
    // The agent's root logger has base {node}, and the transport gets child({component}).
    const root = pino({ level: "debug", base: { node: "n1" } }, sink);
    const transport = new GrpcTransport({ clusterId: "c", selfId: nodeId("n1"), peers: new Map(), logger: root.child({ component: "transport" }) });
    await transport.listen("127.0.0.1:0");
    await transport.close();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const keys = keysOfLine(line);
      expect(new Set(keys).size, line).toBe(keys.length);
      expect(JSON.parse(line)).toMatchObject({ component: "transport", node: "n1" });
    }
  });
});
