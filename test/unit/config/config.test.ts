import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config/index.js";
import { API_CONNECTIONS_MAX } from "../../../src/api/limits.js";
import { ALERT_MS_RANGE, ALERT_WEBHOOKS_MAX, API_CONNECTIONS_RANGE, HEAP_GROWTH_PERCENT_RANGE, PENDING_READS_DEFAULT, PENDING_READS_RANGE } from "../../../src/config/schema.js";
import { PENDING_READS_MAX } from "../../../src/raft/index.js";

const MEMBERS = "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103";

function fails(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("config: one schema for file, environment and flags", () => {
  it("config: flags win over environment, which wins over the file; defaults fill the rest", () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ nodeId: "n3", members: MEMBERS, tickMs: 20, clusterId: "from-file" }));
    const cfg = loadConfig({ file, env: { RAFTMESH_NODE_ID: "n2", RAFTMESH_TICK_MS: "15" }, flags: { "node-id": "n1" } });
    expect(cfg.nodeId).toBe("n1");
    expect(cfg.tickMs).toBe(15);
    expect(cfg.clusterId).toBe("from-file");
    expect(cfg.electionTicks).toBe(30);
    expect(cfg.members[1]).toEqual({ id: "n2", peer: "127.0.0.1:7102", api: "127.0.0.1:7202" });
  });

  it("config: pendingReadsMax defaults to the core's limit and takes its range's ends", () => {
    const base = { "node-id": "n1", members: MEMBERS };
    expect(PENDING_READS_DEFAULT).toBe(PENDING_READS_MAX);
    expect(loadConfig({ env: {}, flags: base }).pendingReadsMax).toBe(PENDING_READS_MAX);
    for (const n of PENDING_READS_RANGE) expect(loadConfig({ env: {}, flags: { ...base, "pending-reads-max": String(n) } }).pendingReadsMax).toBe(n);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "pending-reads-max": String(PENDING_READS_RANGE[1] + 1) } })).field).toBe("pendingReadsMax");
  });

  it("config: apiConnectionsMax defaults to API_CONNECTIONS_MAX and takes its range's ends, not past them", () => {
    const base = { "node-id": "n1", members: MEMBERS };
    expect(loadConfig({ env: {}, flags: base }).apiConnectionsMax).toBe(API_CONNECTIONS_MAX);
    for (const n of API_CONNECTIONS_RANGE) expect(loadConfig({ env: { RAFTMESH_API_CONNECTIONS_MAX: String(n) }, flags: base }).apiConnectionsMax).toBe(n);
    for (const bad of ["0", String(API_CONNECTIONS_RANGE[1] + 1), "many"]) {
      expect(fails(() => loadConfig({ env: {}, flags: { ...base, "api-connections-max": bad } })).field).toBe("apiConnectionsMax");
    }
  });

  it("config: heapGrowthPercent is 100 by default, 0 (V8's own) or 10 to 300, and refuses 1-9, past 300 and words naming the field", () => {
    const base = { "node-id": "n1", members: MEMBERS };
    expect(loadConfig({ env: {}, flags: base }).heapGrowthPercent).toBe(100);
    for (const n of [0, 10, HEAP_GROWTH_PERCENT_RANGE[1]]) expect(loadConfig({ env: { RAFTMESH_HEAP_GROWTH_PERCENT: String(n) }, flags: base }).heapGrowthPercent).toBe(n);
    for (const bad of ["-1", "5", String(HEAP_GROWTH_PERCENT_RANGE[1] + 1), "half"]) {
      const err = fails(() => loadConfig({ env: {}, flags: { ...base, "heap-growth-percent": bad } }));
      expect(err.field).toBe("heapGrowthPercent");
      expect(err.message).toContain(bad);
    }
  });

  it("config: idleHeapShrink is on by default, turned off by false, and a word that is not a boolean names the field", () => {
    const base = { "node-id": "n1", members: MEMBERS };
    expect(loadConfig({ env: {}, flags: base }).idleHeapShrink).toBe(true);
    expect(loadConfig({ env: { RAFTMESH_IDLE_HEAP_SHRINK: "false" }, flags: base }).idleHeapShrink).toBe(false);
    const err = fails(() => loadConfig({ env: {}, flags: { ...base, "idle-heap-shrink": "sometimes" } }));
    expect(err.field).toBe("idleHeapShrink");
  });

  it("config: explicit API addresses are kept", () => {
    const cfg = loadConfig({ env: {}, flags: { "node-id": "n1", members: "n1=a:1/b:2" } });
    expect(cfg.members[0]).toEqual({ id: "n1", peer: "a:1", api: "b:2" });
  });

  it("config: every bad input names its field and source", () => {
    const base = { "node-id": "n1", members: MEMBERS };
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, bogus: "1" } })).field).toBe("bogus");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "tick-ms": "0" } })).field).toBe("tickMs");
    expect(fails(() => loadConfig({ env: { RAFTMESH_TICK_MS: "abc" }, flags: base })).source).toBe("RAFTMESH_TICK_MS");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, members: "n1=nohost" } })).field).toBe("members.n1");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, members: "n1=h:70000" } })).reason).toMatch(/65535/);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, members: "n1=h:1,n1=h:2" } })).reason).toMatch(/twice/);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "node-id": "N 1" } })).field).toBe("nodeId");
    expect(fails(() => loadConfig({ env: {}, flags: { members: MEMBERS } })).reason).toMatch(/required/);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "node-id": "n9" } })).field).toBe("members");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "election-ticks": "5", "heartbeat-ticks": "5" } })).field).toBe("electionTicks");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, bootstrap: "maybe" } })).field).toBe("bootstrap");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "log-level": "loud" } })).field).toBe("logLevel");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "pending-reads-max": "0" } })).field).toBe("pendingReadsMax");
  });

  it("config: a missing or malformed file and unknown file fields are refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-cfg-"));
    expect(fails(() => loadConfig({ file: join(dir, "none.json"), env: {}, flags: {} })).reason).toMatch(/cannot read/);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{not json");
    expect(fails(() => loadConfig({ file: bad, env: {}, flags: {} })).reason).toMatch(/not a JSON object/);
    const unknown = join(dir, "unknown.json");
    writeFileSync(unknown, JSON.stringify({ nodeId: "n1", members: MEMBERS, colour: "red" }));
    expect(fails(() => loadConfig({ file: unknown, env: {}, flags: {} })).field).toBe("colour");
  });
});

describe("config: alerts", () => {
  const base = { "node-id": "n1", members: MEMBERS };
  it("config: webhook URLs are http(s), at most ALERT_WEBHOOKS_MAX; thresholds take their ranges' ends and refuse past them, naming the field", () => {
    const cfg = loadConfig({ env: { RAFTMESH_ALERT_WEBHOOKS: "http://127.0.0.1:9000/hook, https://alerts.example/x" }, flags: base });
    expect(cfg.alertWebhooks).toEqual(["http://127.0.0.1:9000/hook", "https://alerts.example/x"]);
    expect(loadConfig({ env: {}, flags: base }).alertWebhooks).toEqual([]);
    const max = Array.from({ length: ALERT_WEBHOOKS_MAX }, (_, i) => `http://h/${i}`);
    expect(loadConfig({ env: {}, flags: { ...base, "alert-webhooks": max.join(",") } }).alertWebhooks).toHaveLength(ALERT_WEBHOOKS_MAX);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "alert-webhooks": [...max, "http://h/x"].join(",") } })).field).toBe("alertWebhooks");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "alert-webhooks": "ftp://h/x" } })).reason).toMatch(/not an http\(s\) URL/);
    expect(fails(() => loadConfig({ env: { RAFTMESH_ALERT_WEBHOOKS: "nonsense" }, flags: base })).source).toBe("RAFTMESH_ALERT_WEBHOOKS");
    expect(loadConfig({ env: {}, flags: { ...base, "alert-no-leader-ms": String(ALERT_MS_RANGE[1]) } }).alertNoLeaderMs).toBe(ALERT_MS_RANGE[1]);
    expect(loadConfig({ env: {}, flags: { ...base, "alert-no-leader-ms": "0" } }).alertNoLeaderMs).toBe(0);
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "alert-no-leader-ms": String(ALERT_MS_RANGE[1] + 1) } })).field).toBe("alertNoLeaderMs");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "alert-critical-percent": "101" } })).field).toBe("alertCriticalPercent");
    expect(fails(() => loadConfig({ env: {}, flags: { ...base, "alert-crash-loop-restarts": "0" } })).field).toBe("alertCrashLoopRestarts");
  });
});
