/**
 * The raftmesh command against a cluster of real processes: status (table and JSON), usage
 * errors, kv round trips, members list, and clear failures when nothing answers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts, ProcessCluster, runCli } from "../harness/process-cluster.js";

interface StatusJson {
  leader: string;
  members: { id: string; api: string; learner: boolean; status?: { id: string; role: string; leader: string; term: number; commit: number }; error?: string }[];
}

/** rowsOf splits a table the CLI printed into its header and rows of cells. */
function rowsOf(text: string): { header: string[]; rows: string[][] } {
  const lines = text.trim().split("\n");
  const [head = "", ...rest] = lines;
  return { header: head.split(/\s+/), rows: rest.map((l) => l.split(/\s+/)) };
}

describe("raftmesh CLI", () => {
  let c: ProcessCluster;
  let endpoints: string;
  let leader: string;
  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    leader = await c.waitForLeader();
    endpoints = ["n1", "n2", "n3"].map((id) => c.api(id)).join(",");
  });
  afterAll(async () => {
    await c?.cleanup();
  });

  it("cli: status prints every node with its role and the leader, and exits 0", async () => {
    const res = await runCli(["status", "--endpoints", endpoints]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split("\n");
    expect(lines.at(-1)).toBe(`leader: ${leader}`);
    const { header, rows } = rowsOf(lines.slice(0, -1).join("\n"));
    expect(header).toEqual(["ID", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "API", "STATE"]);
    expect(rows.map((r) => [r[0], r[1], r[2], r[6], r[7]])).toEqual(
      ["n1", "n2", "n3"].map((id) => [id, id === leader ? "leader" : "follower", leader, c.api(id), "ok"]),
    );
    for (const r of rows) expect(Number(r[3])).toBeGreaterThanOrEqual(1);
  });

  it("cli: status --json parses and agrees with the nodes", async () => {
    const res = await runCli(["status", "--json", "--endpoints", c.api("n2")]);
    expect(res.code, res.stderr).toBe(0);
    const view = JSON.parse(res.stdout) as StatusJson;
    expect(view.leader).toBe(leader);
    expect(view.members.map((m) => [m.id, m.api, m.learner, m.status?.role, m.status?.leader])).toEqual(
      ["n1", "n2", "n3"].map((id) => [id, c.api(id), false, id === leader ? "leader" : "follower", leader]),
    );
    const terms = new Set(view.members.map((m) => m.status?.term));
    expect(terms.size).toBe(1);
  });

  it("cli: no arguments prints usage and exits 2; an unknown command exits 2 naming it", async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout + none.stderr).toContain("usage: raftmesh <command>");
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect(unknown.stdout).toBe("");
    const badFlag = await runCli(["status", "--bogus", "--endpoints", endpoints]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("--bogus");
  });

  it("cli: kv put and get round trip through a follower; a missing key exits 1", async () => {
    const follower = ["n1", "n2", "n3"].find((id) => id !== leader) as string;
    const put = await runCli(["kv", "put", "greeting", "hello world", "--endpoints", c.api(follower)]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toMatch(/^OK \(index \d+\)\n$/);
    const get = await runCli(["kv", "get", "greeting", "--endpoints", c.api(follower)]);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe("hello world\n");
    const json = await runCli(["kv", "get", "greeting", "--json", "--endpoints", c.api(leader)]);
    expect(JSON.parse(json.stdout)).toMatchObject({ key: "greeting", found: true, value: "hello world" });
    // The value is really in the cluster, not only in the CLI's view.
    expect((await c.client(leader).get("greeting")).value.toString()).toBe("hello world");
    const missing = await runCli(["kv", "get", "no-such-key", "--endpoints", c.api(follower)]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    const del = await runCli(["kv", "del", "greeting", "--endpoints", c.api(follower)]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/^deleted \(index \d+\)\n$/);
    expect((await c.client(leader).get("greeting")).found).toBe(false);
  });

  it("cli: register with --health starts the instance there; a bad --health exits 1 with the server's reason, a --note alone exits 2", async () => {
    const reg = await runCli(["register", "clisvc", "c-1", "--address", "127.0.0.1", "--port", "8080", "--health", "critical", "--note", "warming up", "--endpoints", endpoints]);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stdout).toMatch(/^registered clisvc\/c-1 \(index \d+\)\n$/);
    expect((await c.client(leader).getService("clisvc")).instances.map((i) => [i.id, i.health, i.note])).toEqual([["c-1", "critical", "warming up"]]);
    const bad = await runCli(["register", "clisvc", "c-2", "--address", "127.0.0.1", "--port", "8080", "--health", "healthy", "--endpoints", endpoints]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("health: must be one of passing, warning, critical");
    const noteAlone = await runCli(["register", "clisvc", "c-2", "--address", "127.0.0.1", "--port", "8080", "--note", "x", "--endpoints", endpoints]);
    expect(noteAlone.code).toBe(2);
    expect(noteAlone.stderr).toContain("--note goes with --health");
    expect((await c.client(leader).getService("clisvc")).instances.map((i) => i.id)).toEqual(["c-1"]);
  });

  it("cli: members lists every voter with its addresses", async () => {
    const res = await runCli(["members", "--endpoints", c.api("n3")]);
    expect(res.code, res.stderr).toBe(0);
    const { header, rows } = rowsOf(res.stdout);
    expect(header).toEqual(["ID", "KIND", "PEER", "API", "MATCH"]);
    expect(rows.map((r) => r.slice(0, 4))).toEqual(["n1", "n2", "n3"].map((id) => [id, "voter", c.peer(id), c.api(id)]));
    const json = await runCli(["members", "list", "--json", "--endpoints", c.api("n1")]);
    expect((JSON.parse(json.stdout) as { id: string }[]).map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
  });

  it("cli: status against an unreachable endpoint exits 1 with a message naming it", async () => {
    const [port] = await freePorts(1);
    const dead = `127.0.0.1:${port}`;
    const res = await runCli(["status", "--endpoints", dead]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/^raftmesh: UNAVAILABLE from 127\.0\.0\.1:\d+: /);
    expect(res.stderr).toContain(dead);
    expect(res.stderr).toContain("ECONNREFUSED");
    const badEndpoint = await runCli(["status", "--endpoints", "nonsense"]);
    expect(badEndpoint.code).toBe(2);
    expect(badEndpoint.stderr).toContain('--endpoints: "nonsense" is not host:port');
  });

  it("cli: status with one node down shows it unreachable and exits 1", async () => {
    const down = ["n1", "n2", "n3"].find((id) => id !== leader) as string;
    expect(await c.stop(down)).toBe(0);
    const up = ["n1", "n2", "n3"].find((id) => id !== down) as string;
    const res = await runCli(["status", "--endpoints", c.api(up)]);
    expect(res.code).toBe(1);
    const row = res.stdout.split("\n").find((l) => l.startsWith(`${down} `));
    expect(row).toMatch(/unreachable: /);
    expect(res.stdout).toContain(`leader: ${leader}`);
  });
});
