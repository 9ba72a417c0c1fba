import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { mergeOutcomes, parseDefinitions, readDefinitionsDir } from "../../../src/local/definitions.js";
import { DefinitionError } from "../../../src/local/errors.js";
import { CHECKS_PER_INSTANCE_MAX, DEFINITION_FILE_BYTES_MAX, FALL_DEFAULT, RISE_DEFAULT } from "../../../src/local/limits.js";

const ctx = { file: "/etc/raftmesh/web.json", logDir: "/var/log/raftmesh" };

function refused(text: string): DefinitionError {
  try {
    parseDefinitions(text, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(DefinitionError);
    return err as DefinitionError;
  }
  throw new Error("accepted");
}

describe("local: definitions", () => {
  it("local: one definition per file, with defaults from the registry and HAProxy", () => {
    const [d] = parseDefinitions(JSON.stringify({ service: "web", id: "w1", port: 8080, checks: [{ http: "http://127.0.0.1:8080/health" }] }), ctx);
    expect(d?.instance).toEqual({ service: "web", id: "w1", address: "127.0.0.1", port: 8080, tags: [], metadata: {}, weight: 1, priority: 0, zone: "", ttlMs: 5_000 });
    expect(d?.checks[0]).toMatchObject({ name: "http-0", probe: { kind: "http", method: "GET", body: "" }, timing: { intervalMs: 2_000, timeoutMs: 1_000, rise: RISE_DEFAULT, fall: FALL_DEFAULT, jitterMs: 200 } });
    expect(d?.file).toBe(ctx.file);
  });

  it("local: several definitions in one file, each kind of check, and a process with its log directory", () => {
    const defs = parseDefinitions(
      JSON.stringify({
        services: [
          { service: "a", id: "1", port: 1, checks: [{ tcp: "127.0.0.1:1" }, { grpc: "[::1]:2", grpcService: "s" }, { args: ["/bin/true"], name: "sh" }] },
          { service: "a", id: "2", port: 2, process: { command: "node", args: ["server.js"] } },
        ],
      }),
      ctx,
    );
    expect(defs.map((d) => d.checks.map((c) => c.probe))).toEqual([
      [
        { kind: "tcp", host: "127.0.0.1", port: 1 },
        { kind: "grpc", host: "::1", port: 2, service: "s" },
        { kind: "script", args: ["/bin/true"] },
      ],
      [],
    ]);
    expect(defs[1]?.process).toMatchObject({ command: "node", args: ["server.js"], logDir: "/var/log/raftmesh/a-2" });
    expect(defs[1]?.process?.gracePeriodMs).toBeUndefined();
  });

  it("local: a bad field is refused naming the file and the field's path", () => {
    const e = refused(JSON.stringify({ services: [{ service: "a", id: "1", port: 1 }, { service: "a", id: "2", port: 1, checks: [{ tcp: "x:1", intervalMs: 5 }] }] }));
    expect(e.file).toBe(ctx.file);
    expect(e.field).toBe("services[1].checks[0].intervalMs");
    expect(e.message).toContain("/etc/raftmesh/web.json: services[1].checks[0].intervalMs must be within [100, 3600000], got 5");
    expect(refused('{"service":"a","id":"1"}').field).toBe("port");
    expect(refused('{"service":"a b","id":"1","port":1}').field).toBe("service");
    expect(refused('{"service":"a","id":"1","port":1,"wieght":2}').field).toBe("wieght");
    expect(refused('{"service":"a","id":"1","port":70000}').field).toBe("port");
    expect(refused('{"service":"a","id":"1","port":1,"checks":[{"tcp":"x:1","http":"http://x/"}]}').field).toBe("checks[0]");
    expect(refused('{"service":"a","id":"1","port":1,"checks":[{"http":"ftp://x/"}]}').field).toBe("checks[0].http");
    expect(refused('{"service":"a","id":"1","port":1,"checks":[{"tcp":"nope"}]}').field).toBe("checks[0].tcp");
    expect(refused('{"service":"a","id":"1","port":1,"checks":[{"args":[]}]}').field).toBe("checks[0].args");
    expect(refused('{"service":"a","id":"1","port":1,"checks":[{"tcp":"x:1","method":"GET"}]}').field).toBe("checks[0].method");
    expect(refused('{"service":"a","id":"1","port":1,"process":{"args":[]}}').field).toBe("process.command");
    expect(refused('{"services":[{"service":"a","id":"1","port":1},{"service":"a","id":"1","port":2}]}').field).toBe("services[1]");
    expect(refused("{not json").message).toContain("is not JSON");
    expect(refused("[]").field).toBe("");
  });

  it("local: CHECKS_PER_INSTANCE_MAX checks are accepted, one more is refused", () => {
    const checks = (n: number) => Array.from({ length: n }, (_, i) => ({ tcp: "127.0.0.1:1", name: `c${i}` }));
    expect(parseDefinitions(JSON.stringify({ service: "a", id: "1", port: 1, checks: checks(CHECKS_PER_INSTANCE_MAX) }), ctx)[0]?.checks).toHaveLength(CHECKS_PER_INSTANCE_MAX);
    expect(refused(JSON.stringify({ service: "a", id: "1", port: 1, checks: checks(CHECKS_PER_INSTANCE_MAX + 1) })).field).toBe("checks");
  });
});

describe("local: the services directory", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("local: a bad file is reported by name; its last good version stays in force, other files apply", async () => {
    dir = await mkdtemp(join(tmpdir(), "raftmesh-defs-"));
    await writeFile(join(dir, "a.json"), JSON.stringify({ service: "a", id: "1", port: 1 }));
    await writeFile(join(dir, "b.json"), JSON.stringify({ service: "b", id: "1", port: 2 }));
    await writeFile(join(dir, "notes.txt"), "not a definition");
    const first = mergeOutcomes(await readDefinitionsDir(dir, "/logs"), new Map());
    expect([...first.definitions.keys()]).toEqual(["a/1", "b/1"]);
    expect(first.errors).toEqual([]);

    await writeFile(join(dir, "a.json"), JSON.stringify({ service: "a", id: "1", port: "one" }));
    await writeFile(join(dir, "b.json"), JSON.stringify({ service: "b", id: "1", port: 3 }));
    await writeFile(join(dir, "c.json"), "{");
    const second = mergeOutcomes(await readDefinitionsDir(dir, "/logs"), first.good);
    expect([...second.definitions.keys()]).toEqual(["a/1", "b/1"]);
    expect(second.definitions.get("a/1")?.instance.port).toBe(1);
    expect(second.definitions.get("b/1")?.instance.port).toBe(3);
    expect(second.errors.map((e) => [e.file, e.field])).toEqual([
      [join(dir, "a.json"), "port"],
      [join(dir, "c.json"), ""],
    ]);
  });

  it("local: the same instance in two files is kept from the first and reported in the second", async () => {
    dir = await mkdtemp(join(tmpdir(), "raftmesh-defs-"));
    await writeFile(join(dir, "a.json"), JSON.stringify({ service: "a", id: "1", port: 1 }));
    await writeFile(join(dir, "b.json"), JSON.stringify({ service: "a", id: "1", port: 2 }));
    const m = mergeOutcomes(await readDefinitionsDir(dir, "/logs"), new Map());
    expect(m.definitions.get("a/1")?.instance.port).toBe(1);
    expect(m.errors.map((e) => e.file)).toEqual([join(dir, "b.json")]);
  });

  it("local: a file of DEFINITION_FILE_BYTES_MAX bytes is read, one byte more is refused", async () => {
    dir = await mkdtemp(join(tmpdir(), "raftmesh-defs-"));
    const body = JSON.stringify({ service: "a", id: "1", port: 1 });
    await writeFile(join(dir, "a.json"), body + " ".repeat(DEFINITION_FILE_BYTES_MAX - body.length));
    await writeFile(join(dir, "b.json"), body.replace('"a"', '"b"') + " ".repeat(DEFINITION_FILE_BYTES_MAX - body.length + 1));
    const outcomes = await readDefinitionsDir(dir, "/logs");
    expect("definitions" in (outcomes[0] as object)).toBe(true);
    expect((outcomes[1] as { error: DefinitionError }).error.message).toContain("DEFINITION_FILE_BYTES_MAX");
  });

  it("local: a missing directory reads as empty", async () => {
    expect(await readDefinitionsDir(join(tmpdir(), "raftmesh-no-such-dir-xyz"), "/logs")).toEqual([]);
  });
});
