/**
 * Alerts on a real 3-node cluster to a real webhook receiver on loopback: the leader is killed;
 * the new leader cannot reach it and, after the rule's for-duration, sends MemberUnreachable
 * (firing) in the Alertmanager webhook shape; the old leader comes back and the same alert
 * (same fingerprint) is sent resolved. Then a master-slave service fails over (its master's
 * heartbeats stop): FailoverHappened fires and resolves after its hold, and every node's event
 * stream (raftmesh.v1.Events/Watch) reports the failover with the same indexes. Only the leader
 * sends cluster alerts, so each arrives once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.js";
import { WebhookReceiver } from "../harness/webhook-receiver.js";

const NODES = ["n1", "n2", "n3"] as const;
/** UNREACHABLE_MS is the rule's for-duration here: longer than an election, so the alert is the new leader's, not a blink. */
const UNREACHABLE_MS = 1_000;
/** FAILOVER_HOLD_MS: FailoverHappened resolves this long after the failover. */
const FAILOVER_HOLD_MS = 2_000;
const TTL_MS = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("alert webhooks on a 3-node cluster", () => {
  let c: ProcessCluster;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    hook = await WebhookReceiver.start();
    c = await ProcessCluster.create({
      size: 3,
      env: {
        RAFTMESH_ALERT_WEBHOOKS: hook.url,
        RAFTMESH_ALERT_MEMBER_UNREACHABLE_MS: String(UNREACHABLE_MS),
        RAFTMESH_ALERT_FAILOVER_HOLD_MS: String(FAILOVER_HOLD_MS),
        RAFTMESH_ALERT_NO_MASTER_MS: "60000",
      },
    });
    c.startAll();
    await c.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    await c?.cleanup();
    await hook?.close();
  });

  it("the leader is killed: the new leader sends MemberUnreachable firing, then resolved when it is back", async () => {
    const old = await c.waitForLeader();
    await c.kill(old);
    const rest = NODES.filter((n) => n !== old);
    const leader = await c.waitForLeader(20_000, rest);
    const adminOf = (id: string) => `127.0.0.1:${c.specs.get(id)?.adminPort}`;
    const firing = await waitFor("MemberUnreachable firing at the receiver", () => hook.alerts().find((a) => a.name === "MemberUnreachable" && a.status === "firing" && a.labels.member === old), 15_000);
    const body = hook.received.find((r) => r.body.alerts.some((a) => a.fingerprint === firing.fingerprint))?.body;
    console.log(`webhook received (firing): ${JSON.stringify(body)}`);
    expect(body?.version).toBe("4");
    expect(body?.status).toBe("firing");
    expect(body?.groupLabels).toEqual({ alertname: "MemberUnreachable" });
    expect(body?.alerts[0]?.endsAt).toBe("0001-01-01T00:00:00Z");
    expect(firing.labels).toMatchObject({ alertname: "MemberUnreachable", member: old, cluster: "it-cluster", severity: "critical" });
    expect(firing.labels.node).toBeUndefined(); // a cluster alert: the same fingerprint from any node
    expect(firing.externalURL).toBe(`http://${adminOf(leader)}/`); // sent by the new leader

    c.start(old);
    const resolved = await waitFor("MemberUnreachable resolved at the receiver", () => hook.alerts().find((a) => a.fingerprint === firing.fingerprint && a.status === "resolved"), 20_000);
    console.log(`webhook received (resolved): ${JSON.stringify(hook.received.find((r) => r.body.status === "resolved")?.body)}`);
    expect(resolved.labels).toEqual(firing.labels);
    expect(Date.parse(hook.received.find((r) => r.body.status === "resolved")?.body.alerts[0]?.endsAt ?? "")).toBeGreaterThan(0);
    // Sent once each: only the leader sends cluster alerts (had leadership moved meanwhile, the new leader would send again under the same fingerprint).
    if ((await c.waitForLeader()) === leader) {
      expect(hook.alerts().filter((a) => a.fingerprint === firing.fingerprint).map((a) => a.status)).toEqual(["firing", "resolved"]);
    }
  }, 45_000);

  it("a master-slave service fails over: FailoverHappened fires, then resolves after its hold", async () => {
    const leader = await c.waitForLeader();
    const cl = c.client(leader);
    await cl.putService("db", { mode: "master-slave" });
    for (const id of ["a", "b"]) await cl.register({ id, service: "db", address: "127.0.0.1", port: 5432, ttlMs: TTL_MS });
    let beatA = true;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        await Promise.all([beatA ? cl.heartbeat("db", "a", "", "").catch(() => undefined) : undefined, cl.heartbeat("db", "b", "", "").catch(() => undefined)]);
        await sleep(TTL_MS / 4);
      }
    })();
    try {
      await waitFor("a is master", async () => (await cl.getService("db")).service.master?.instanceId === "a");
      beatA = false;
      const firing = await waitFor("FailoverHappened firing", () => hook.alerts().find((a) => a.name === "FailoverHappened" && a.status === "firing" && a.labels.service === "db"), 15_000);
      expect((await cl.getService("db")).service.master?.instanceId).toBe("b");
      const resolved = await waitFor("FailoverHappened resolved", () => hook.alerts().find((a) => a.fingerprint === firing.fingerprint && a.status === "resolved"), FAILOVER_HOLD_MS + 10_000);
      expect(resolved.at - firing.at).toBeGreaterThanOrEqual(FAILOVER_HOLD_MS - 500);
      // The failover's events come from applied state: every node reports them with the same index (Events/Watch, no follow).
      const views = await Promise.all(
        NODES.map(
          (id) =>
            new Promise<string[]>((resolve, reject) => {
              const got: string[] = [];
              c.client(id).events({ kinds: ["master-promoted", "master-demoted", "instance-expired"] }, { onEvent: (e) => got.push(`${e.kind} ${e.index} ${e.service}/${e.instance} local=${e.local}`), onEnd: (err) => (err ? reject(err) : resolve(got)) });
            }),
        ),
      );
      console.log(`events of db on n1: ${JSON.stringify(views[0])}`);
      expect(views[0]?.some((l) => l.startsWith("master-promoted") && l.includes("db/b"))).toBe(true);
      expect(views[1]).toEqual(views[0]);
      expect(views[2]).toEqual(views[0]);
    } finally {
      stop = true;
      await loop;
    }
  }, 30_000);
});
