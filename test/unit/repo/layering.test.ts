/**
 * The layering of src/ as a test: each folder may import only the folders its row in MAY_IMPORT
 * allows (docs/architecture.md states the same rules in words, and the test checks that its table
 * says the same), and the folders' import graph has no circle. Arrows that exist today but break the rules are listed
 * in KNOWN_DEBTS, each with the reason it is wrong; the list only shrinks.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "..", "..", "..", "src");
const ARCHITECTURE_DOC = join(import.meta.dirname, "..", "..", "..", "docs", "architecture.md");

/** MAY_IMPORT: for each folder of src/, the folders it may import from. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  raft: [], // pure: no I/O, no clock, no randomness (test/unit/raft/purity.test.ts)
  common: [], // what client and server share; imports nothing of either
  config: ["common"],
  storage: ["raft", "common"], // common: the one Logger type
  transport: ["raft", "common"],
  node: ["raft", "storage", "transport", "common"],
  registry: ["raft", "common"], // the state machine sees raft types only
  api: ["node", "registry", "raft", "common", "config"],
  events: ["node", "registry", "raft", "common"], // follows node and registry events; the agent wires it (no config: it takes its settings as values)
  agent: ["api", "node", "registry", "raft", "storage", "transport", "config", "common", "balancer", "events", "metrics", "local", "client"], // the composition root; client: the local agent's loopback client
  metrics: ["node", "registry", "raft", "storage", "balancer", "common"], // follows each part through its events or one wrapper the agent puts in place; nothing imports it but the agent
  client: ["common"], // publishable alone: never a server module
  cli: ["client", "agent", "config", "common", "local"],
  balancer: ["common", "registry"], // registry for its types only (the feed); balancer/policy and balancer/types.ts import nothing outside src/balancer (test/unit/balancer/purity.test.ts)
  local: ["client", "common"], // the node's local agent talks to its node through the SDK, like any application
  demo: ["client", "common"], // demo services (hello, the master-session backend) are applications of the SDK: they see nothing of the server
};

/** KNOWN_DEBTS: arrows that break the rules today, "from -> to: why it is wrong". */
const KNOWN_DEBTS: Readonly<Record<string, string>> = {
  "registry -> node": "the registry implements node's StateMachine contract by importing it",
};

/** ends splits an arrow "from -> to" into its two folders. */
function ends(key: string): [string, string] {
  const [from = "", to = ""] = key.split(" -> ");
  return [from, to];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.{1,2}\/[^"']+)["']/g;

/** folderArrows lists each import between two folders of src/ as "from -> to" with the file that makes it. */
function folderArrows(files: ReadonlyMap<string, string>): Map<string, string[]> {
  const arrows = new Map<string, string[]>();
  for (const [file, text] of files) {
    const from = file.split("/")[0] ?? "";
    for (const m of text.matchAll(IMPORT)) {
      const target = join(file, "..", m[1] ?? "").split(sep).join("/");
      const to = target.split("/")[0] ?? "";
      if (to === from || to === "..") continue;
      const key = `${from} -> ${to}`;
      arrows.set(key, [...(arrows.get(key) ?? []), file]);
    }
  }
  return arrows;
}

/** forbidden lists the arrows no rule allows and no known debt excuses. */
function forbidden(arrows: ReadonlyMap<string, string[]>): string[] {
  return [...arrows]
    .filter(([key]) => {
      const [from, to] = ends(key);
      return !(MAY_IMPORT[from] ?? []).includes(to) && KNOWN_DEBTS[key] === undefined;
    })
    .map(([key, fs]) => `${key} (${fs.join(", ")})`);
}

/** circles lists each set of folders that import each other, directly or through others. */
function circles(arrows: ReadonlyMap<string, string[]>): string[][] {
  const next = new Map<string, string[]>();
  for (const key of arrows.keys()) {
    const [from, to] = ends(key);
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  const reach = (start: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [...(next.get(start) ?? [])];
    while (stack.length > 0) {
      const n = stack.pop() as string;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...(next.get(n) ?? []));
    }
    return seen;
  };
  const groups = new Map<string, string[]>();
  for (const n of next.keys()) {
    if (!reach(n).has(n)) continue;
    const members = [...next.keys()].filter((m) => reach(n).has(m) && reach(m).has(n)).sort();
    groups.set(members.join(","), members);
  }
  return [...groups.values()];
}

/** documentedRules reads the "may import" column of docs/architecture.md's table, per folder. */
function documentedRules(): Record<string, string[]> {
  const rows: Record<string, string[]> = {};
  for (const line of readFileSync(ARCHITECTURE_DOC, "utf8").split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const folder = /^`(\w+)`$/.exec(cells[1] ?? "")?.[1];
    if (!folder || cells.length < 5) continue;
    rows[folder] = [...(cells[3] ?? "").matchAll(/`(\w+)`/g)].map((m) => m[1] ?? "").sort();
  }
  return rows;
}

function readSrc(): Map<string, string> {
  return new Map(sourceFiles(SRC).map((f) => [relative(SRC, f).split(sep).join("/"), readFileSync(f, "utf8")]));
}

describe("repo: layering", () => {
  const arrows = folderArrows(readSrc());

  it("repo: every folder imports only what its rule allows", () => {
    expect(arrows.size).toBeGreaterThan(10);
    expect(forbidden(arrows)).toEqual([]);
  });

  it("repo: docs/architecture.md states the same rules, for every folder of src/", () => {
    const table = Object.fromEntries(Object.entries(MAY_IMPORT).map(([k, v]) => [k, [...v].sort()]));
    expect(documentedRules()).toEqual(table);
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    expect(folders.sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it("repo: the known debts still exist (a paid debt leaves the list)", () => {
    expect(Object.keys(KNOWN_DEBTS).filter((k) => !arrows.has(k))).toEqual([]);
  });

  it("repo: no circle between folders, except through a known debt", () => {
    const clean = new Map([...arrows].filter(([k]) => KNOWN_DEBTS[k] === undefined));
    expect(circles(clean)).toEqual([]);
  });

  it("repo: the checks catch a forbidden arrow and a circle", () => {
    const planted = new Map(readSrc());
    planted.set("raft/bad.ts", 'import { LogStore } from "../storage/log-store.js";\n');
    planted.set("client/bad.ts", 'export { RaftNode } from "../node/raft-node.js";\n');
    planted.set("storage/bad.ts", 'import type { Agent } from "../agent/agent.js";\n');
    const bad = folderArrows(planted);
    const found = forbidden(bad).map((f) => f.split(" (")[0]);
    expect(found).toEqual(expect.arrayContaining(["raft -> storage", "client -> node", "storage -> agent"]));
    expect(circles(bad).length).toBeGreaterThan(0);
  });
});
