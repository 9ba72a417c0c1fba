/**
 * Access control on a real 3-node cluster (issue 16): started with acl on and a bootstrap token
 * from the environment, every node refuses calls without a token (UNAUTHENTICATED) and calls the
 * token's rules do not allow (PERMISSION_DENIED naming the method and scope), also when the call
 * enters through a follower; the forwarded marker grants nothing; a deleted token is refused on
 * every node within a moment; the CLI takes --token (a bad --rule: test/unit/cli/acl-rule.test.ts); the admin port wants a bearer too (not its
 * probes); metrics count the refusals; and no secret ever appears in the nodes' logs.
 */
import { randomBytes } from "node:crypto";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RaftmeshClient, type RaftmeshError } from "../../../src/client/index.js";
import { clientApi } from "../../../src/common/proto.js";
import { ProcessCluster, runCli, waitFor } from "../harness/process-cluster.js";

const NODES = ["n1", "n2", "n3"] as const;
const ADMIN_SECRET = randomBytes(32).toString("hex");
/** secrets collects every secret the test saw, to look for in the logs at the end. */
const secrets: string[] = [ADMIN_SECRET];

let c: ProcessCluster;
let leader: string;
let followers: string[];
const clients: RaftmeshClient[] = [];

/** as is a client of node id that sends `token` (none: no authorization at all). */
function as(id: string, token?: string): RaftmeshClient {
  const client = new RaftmeshClient([c.api(id)], { deadlineMs: 3_000, token });
  clients.push(client);
  return client;
}

/** codeOf is the gRPC code a call failed with (OK when it did not fail). */
async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: status.OK, message: "" };
  } catch (err) {
    return { code: (err as RaftmeshError).code, message: (err as Error).message };
  }
}

const instance = (service: string, id: string) => ({ id, service, address: "10.0.0.1", port: 8080, ttlMs: 60_000 });

beforeAll(async () => {
  c = await ProcessCluster.create({ size: 3, token: ADMIN_SECRET, env: { RAFTMESH_ACL: "true", RAFTMESH_ACL_BOOTSTRAP_TOKEN: ADMIN_SECRET } });
  c.startAll();
  // The leader bootstraps the configured token once it leads: until then even the admin token is unknown.
  leader = await c.waitForLeader(60_000);
  followers = NODES.filter((n) => n !== leader);
}, 90_000);

afterAll(async () => {
  for (const cl of clients) cl.close();
  await c?.cleanup();
});

describe("access control on a process cluster", () => {
  it("acl: no token, or an unknown one, is UNAUTHENTICATED on every node; the configured bootstrap made Bootstrap a one-time thing", async () => {
    for (const id of NODES) {
      expect((await codeOf(as(id).status())).code).toBe(status.UNAUTHENTICATED);
      expect((await codeOf(as(id).put("k", "v"))).code).toBe(status.UNAUTHENTICATED);
      expect((await codeOf(as(id, randomBytes(32).toString("hex")).listServices())).code).toBe(status.UNAUTHENTICATED);
    }
    const again = await codeOf(as(followers[0] as string).aclBootstrap());
    expect(again.code).toBe(status.FAILED_PRECONDITION);
    // The forwarded marker grants nothing: the leader still wants a token.
    const kv = new (clientApi().KV)(c.api(leader), credentials.createInsecure());
    const md = new Metadata();
    md.set("x-raftmesh-forwarded", "1");
    const forged = await new Promise<ServiceError | null>((resolve) =>
      (kv as unknown as { Put: (r: object, m: Metadata, o: object, cb: (e: ServiceError | null) => void) => void }).Put({ key: "k", value: Buffer.from("v") }, md, { deadline: new Date(Date.now() + 3_000) }, resolve),
    );
    kv.close();
    expect(forged?.code).toBe(status.UNAUTHENTICATED);
  });

  it("acl: read cannot write; a scoped write token registers orders but not billing, through a follower too; lists and watches are filtered", async () => {
    const admin = as(leader, ADMIN_SECRET);
    const read = await admin.aclCreateToken("reader", [{ role: "read", services: "", keys: "" }]);
    const orders = await admin.aclCreateToken("orders deployer", [
      { role: "write", services: "orders", keys: "" },
      { role: "read", services: "orders*", keys: "" },
    ]);
    secrets.push(read.secret, orders.secret);
    expect(read.secret).toMatch(/^[0-9a-f]{64}$/);
    // Listing never shows a secret.
    const listed = JSON.stringify(await admin.aclListTokens());
    expect(listed).toContain(orders.token.accessor);
    expect(listed).not.toContain(orders.secret);

    const f = followers[0] as string;
    // Each node checks with its own copy: wait for the follower to have applied the new tokens.
    await waitFor("the follower to know the new tokens", async () => (await codeOf(as(f, orders.secret).status())).code === status.OK);
    // The follower would forward the write to the leader; it refuses it itself first, and the
    // leader would too: forwarding carries the caller's own token, nothing more.
    const denied = await codeOf(as(f, read.secret).register(instance("orders", "o1")));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toContain("/raftmesh.v1.Registry/Register needs write on service \"orders\"");
    expect(denied.message).not.toContain(read.secret);
    expect((await codeOf(as(leader, read.secret).put("config/a", "1"))).code).toBe(status.PERMISSION_DENIED);
    // The scoped token writes its own service through a follower: the leader accepted the forwarded call, so it got the caller's token.
    expect((await codeOf(as(f, orders.secret).register(instance("orders", "o1")))).code).toBe(status.OK);
    expect((await codeOf(as(leader, ADMIN_SECRET).register(instance("billing", "b1")))).code).toBe(status.OK);
    const billing = await codeOf(as(f, orders.secret).register(instance("billing", "b2")));
    expect(billing.code).toBe(status.PERMISSION_DENIED);
    expect(billing.message).toContain('write on service "billing"');
    expect((await codeOf(as(leader, orders.secret).put("config/a", "1"))).code).toBe(status.PERMISSION_DENIED);
    // Lists and watches show only what the token may read.
    expect((await as(leader, orders.secret).listServices()).services.map((s) => s.name)).toEqual(["orders"]);
    expect((await as(leader, read.secret).listServices()).services.map((s) => s.name)).toEqual(["billing", "orders"]);
    const seen = await new Promise<string[]>((resolve) => {
      const names: string[] = [];
      const w = as(leader, orders.secret).watch(
        { fromIndex: 0 },
        {
          onMessage: (m) => {
            for (const e of m.events) names.push(e.service?.name || e.instance?.service || e.name);
            if (m.events.length === 0 && m.index > 0) {
              w.cancel();
              resolve(names);
            }
          },
          onEnd: () => resolve(names),
        },
      );
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((n) => n === "orders")).toBe(true);

    // A stream is checked message by message: KeepAlive for orders goes through, then billing ends it.
    const stub = new (clientApi().Registry)(c.api(f), credentials.createInsecure());
    const md = new Metadata();
    md.set("authorization", `Bearer ${orders.secret}`);
    const ended = await new Promise<{ answers: number; code: number; details: string }>((resolve) => {
      const call = (stub as unknown as { KeepAlive: (m: Metadata) => import("@grpc/grpc-js").ClientDuplexStream<object, object> }).KeepAlive(md);
      let answers = 0;
      call.on("data", () => {
        answers++;
        if (answers === 1) call.write({ service: "billing", id: "b1" });
      });
      call.on("error", (e: ServiceError) => resolve({ answers, code: e.code, details: e.details }));
      call.on("end", () => resolve({ answers, code: status.OK, details: "" }));
      call.write({ service: "orders", id: "o1" });
    });
    stub.close();
    expect(ended).toEqual({ answers: 1, code: status.PERMISSION_DENIED, details: expect.stringContaining('KeepAlive needs write on service "billing"') });

    // A deleted token is refused on every node within a moment.
    await admin.aclDeleteToken(orders.token.accessor);
    await waitFor(
      "every node to refuse the deleted token",
      async () => (await Promise.all(NODES.map(async (id) => (await codeOf(as(id, orders.secret).status())).code))).every((code) => code === status.UNAUTHENTICATED),
      5_000,
    );
  });

  it("acl: the CLI takes --token or RAFTMESH_TOKEN; without one it fails non-zero", async () => {
    const endpoints = NODES.map((id) => c.api(id)).join(",");
    // Three commands at once: each starts a Node process, the slow part.
    const [created, fromEnv, without] = await Promise.all([
      runCli(["acl", "token", "create", "--name", "cli", "--rule", "read:service=orders", "--rule", "write:key=config/", "--endpoints", endpoints, "--token", ADMIN_SECRET]),
      runCli(["kv", "put", "config/cli", "1", "--endpoints", endpoints], { RAFTMESH_TOKEN: ADMIN_SECRET }),
      runCli(["services", "--endpoints", endpoints], { RAFTMESH_TOKEN: "" }),
    ]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const secret = /secret:\s+([0-9a-f]{64})/.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();
    secrets.push(secret as string);
    expect(created.stdout).toContain("rules:    read:service=orders write:key=config/");
    expect(fromEnv.code).toBe(0);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain("UNAUTHENTICATED");
  });

  it("acl: the admin port wants a bearer (not its probes); metrics count the refusals; no secret is in any log", async () => {
    const admin = `http://127.0.0.1:${c.specs.get(leader)?.adminPort}`;
    const noHeader = await fetch(`${admin}/status`);
    expect(noHeader.status).toBe(401);
    expect(noHeader.headers.get("www-authenticate")).toContain("Bearer");
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
    const scoped = await as(leader, ADMIN_SECRET).aclCreateToken("scoped", [{ role: "read", services: "orders", keys: "" }]);
    secrets.push(scoped.secret);
    expect((await fetch(`${admin}/status`, { headers: { authorization: `Bearer ${scoped.secret}` } })).status).toBe(403);
    expect((await fetch(`${admin}/status`, { headers: { authorization: `Bearer ${ADMIN_SECRET}` } })).status).toBe(200);
    const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${ADMIN_SECRET}` } })).text();
    const count = (code: string) =>
      [...metrics.matchAll(new RegExp(`^raftmesh_api_auth_failures_total\\{code="${code}",[^}]*\\} (\\d+)`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);
    expect(count("UNAUTHENTICATED")).toBeGreaterThanOrEqual(3);
    expect(count("PERMISSION_DENIED")).toBeGreaterThanOrEqual(2);
    expect(metrics).toContain('raftmesh_api_auth_failures_total{code="PERMISSION_DENIED",method="admin GET /status"} 1');
    for (const id of NODES) {
      const log = await c.logOf(id);
      expect(log.length).toBeGreaterThan(0);
      for (const s of secrets) expect(log.includes(s), `a secret appears in ${id}'s log`).toBe(false);
    }
  });
});
