/**
 * self-check exercises the Jepsen harness end to end on a real five-node cluster and prints how
 * long each step took: `npx tsx test/jepsen/harness/self-check.ts [runDir]` (as root). Every wait
 * is bounded; the first failed expectation throws, and cleanup runs on every exit path.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJepsenCluster, type NetnsCluster } from "./cluster.js";
import { bridgeCuts, isolateNode, listRules, majoritiesRingCuts, type Rng } from "./nemesis-net.js";
import { leftovers, verifyNetwork } from "./netns.js";

/** POLL_MS is how often waits look again. */
const POLL_MS = 50;
/** CALL_DEADLINE_MS bounds every client call the self-check makes. */
const CALL_DEADLINE_MS = 3_000;

const clock = () => performance.now();
const started = clock();

function log(step: string, ms: number, detail = ""): void {
  console.log(`[${((clock() - started) / 1000).toFixed(1).padStart(6)} s] ${step.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  ${detail}`);
}

function expect(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`self-check failed: ${what}`);
}

/** waitUntil polls f until it returns a value other than undefined/false, or throws after timeoutMs. */
async function waitUntil<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const t0 = clock();
  let lastErr: unknown;
  while (clock() - t0 < timeoutMs) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return { value: v, ms: clock() - t0 };
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last: ${(lastErr as Error).message})` : ""}`);
}

/** mulberry32 is a small seeded RNG, so the nemesis choices replay. */
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** agreedLeader is the leader every answering node names, if at least `quorum` answer and they all agree. */
async function agreedLeader(c: NetnsCluster, quorum: number): Promise<string | undefined> {
  const answers = await c.statuses();
  const leaders = new Set(answers.map((a) => a.status.leader));
  const [only] = leaders;
  return answers.length >= quorum && leaders.size === 1 && only ? only : undefined;
}

async function checkProcesses(c: NetnsCluster): Promise<void> {
  const pid = c.pid("n1");
  expect(pid !== undefined, "n1 has a pid");
  // `ip netns exec` must exec the agent, so signals reach node itself.
  const exe = readlinkSync(`/proc/${pid}/exe`);
  expect(exe === realpathSync(process.execPath), `pid ${pid} is node (${exe})`);
  const ownNet = readlinkSync("/proc/self/ns/net");
  const agentNet = readlinkSync(`/proc/${pid}/ns/net`);
  expect(ownNet !== agentNet, "agent runs in its own network namespace");
  log("agent pid is node, in its own netns", 0, `pid=${pid} exe=${exe} ${agentNet}`);
}

async function readWriteEverywhere(c: NetnsCluster): Promise<void> {
  const t0 = clock();
  for (const n of c.nodes) await c.client(n).put(`sc/${n}`, `v-${n}`, { deadlineMs: CALL_DEADLINE_MS });
  for (const reader of c.nodes) {
    for (const writer of c.nodes) {
      const r = await c.client(reader).get(`sc/${writer}`, { deadlineMs: CALL_DEADLINE_MS });
      expect(r.found && r.value.toString() === `v-${writer}`, `${reader} reads sc/${writer}`);
    }
  }
  log("put through each node, read all through each", clock() - t0, `${c.nodes.length} puts, ${c.nodes.length ** 2} gets`);
}

async function isolateLeader(c: NetnsCluster, leader: string): Promise<string> {
  const majority = c.nodes.filter((n) => n !== leader);
  let t0 = clock();
  await c.partition(isolateNode(c.nodes, leader));
  log(`partition: isolate leader ${leader}`, clock() - t0, (await listRules(leader)).join("; "));
  // Sent at once, while the old leader may still believe it leads: it can append but not commit.
  const early = c
    .client(leader)
    .put("sc/isolated-early", "must-not-commit", { deadlineMs: 2_000 })
    .then(() => undefined)
    .catch((e: Error) => e);
  const elected = await waitUntil(
    "a new leader in the majority",
    async () => {
      const s = await c.statuses();
      const named = s.filter((a) => majority.includes(a.node) && majority.includes(a.status.leader));
      return named.length >= 3 && named.every((a) => a.status.leader === named[0]?.status.leader) ? named[0]?.status.leader : undefined;
    },
    10_000,
  );
  log("new leader elected in the majority", elected.ms, `${elected.value}`);
  t0 = clock();
  const err = await c
    .client(leader)
    .put("sc/isolated", "must-not-commit", { deadlineMs: 2_000 })
    .then(() => undefined)
    .catch((e: Error) => e);
  expect(err !== undefined, `a write through the isolated ${leader} must not succeed`);
  log("write through isolated old leader fails", clock() - t0, err.message);
  const earlyErr = await early;
  expect(earlyErr !== undefined, `the write sent right after isolating ${leader} must not succeed`);
  log("write sent at partition time fails", 0, earlyErr.message);
  t0 = clock();
  await c.client(elected.value).put("sc/majority", "ok", { deadlineMs: CALL_DEADLINE_MS });
  log("write through the majority succeeds", clock() - t0);
  t0 = clock();
  await c.heal();
  log("heal", clock() - t0);
  const healed = await waitUntil("all 5 nodes to agree on a leader", () => agreedLeader(c, c.nodes.length), 10_000);
  log("all nodes agree after heal", healed.ms, healed.value);
  for (const key of ["sc/isolated", "sc/isolated-early"]) {
    const r = await c.client(leader).get(key, { deadlineMs: CALL_DEADLINE_MS });
    expect(!r.found, `the write of ${key} through the isolated leader never committed`);
  }
  log("isolated writes absent after heal", 0);
  return healed.value;
}

async function killRestart(c: NetnsCluster, leader: string): Promise<void> {
  const victim = c.nodes.find((n) => n !== leader) as string;
  let t0 = clock();
  await c.kill(victim);
  expect(!c.isRunning(victim), `${victim} is not running after kill`);
  log(`SIGKILL follower ${victim}`, clock() - t0);
  await c.client(leader).put("sc/while-down", "x", { deadlineMs: CALL_DEADLINE_MS });
  t0 = clock();
  await c.start(victim);
  const back = await waitUntil(
    `${victim} to serve the write made while it was down`,
    async () => (await c.client(victim).get("sc/while-down", { deadlineMs: 500 })).found,
    30_000,
  );
  log(`restart ${victim}; it catches up`, clock() - t0, `(serving after ${back.ms.toFixed(0)} ms)`);
}

async function pauseResume(c: NetnsCluster, leader: string): Promise<string> {
  let t0 = clock();
  await c.pause(leader);
  const next = await waitUntil("a leader other than the paused one", async () => {
    const l = await agreedLeader(c, c.nodes.length - 1);
    return l !== leader ? l : undefined;
  }, 10_000);
  log(`SIGSTOP leader ${leader}; new leader`, next.ms, next.value);
  t0 = clock();
  await c.resume(leader);
  const agreed = await waitUntil("all 5 nodes to agree after SIGCONT", () => agreedLeader(c, c.nodes.length), 10_000);
  log(`SIGCONT ${leader}; all agree`, clock() - t0, agreed.value);
  return agreed.value;
}

async function oneWay(c: NetnsCluster, leader: string): Promise<void> {
  const follower = c.nodes.find((n) => n !== leader) as string;
  let t0 = clock();
  await c.cutOneWay(leader, follower);
  const rules = await listRules(follower);
  expect(rules.length === 1 && (await listRules(leader)).length === 0, "one rule, on the receiving side only");
  log(`cutOneWay ${leader} -> ${follower}`, clock() - t0, rules.join("; "));
  const terms = new Set<string>();
  const watchUntil = clock() + 3_000;
  while (clock() < watchUntil) {
    for (const a of await c.statuses()) terms.add(`${a.node}:t${a.status.term}/${a.status.leader || "-"}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await c.client(c.nodes.find((n) => n !== follower) as string).put("sc/one-way", "x", { deadlineMs: 5_000 });
  log("  3 s under the one-way cut; write ok", 3_000, `seen ${[...terms].sort().join(" ")}`);
  t0 = clock();
  await c.heal();
  const agreed = await waitUntil("agreement after healing the one-way cut", () => agreedLeader(c, c.nodes.length), 15_000);
  log("heal one-way; all agree", clock() - t0, agreed.value);
}

async function bridgeAndRing(c: NetnsCluster, rng: Rng): Promise<void> {
  const b = bridgeCuts(c.nodes, rng);
  let t0 = clock();
  await c.cuts(b.cuts);
  const counts = await Promise.all(c.nodes.map(async (n) => `${n}:${(await listRules(n)).length}`));
  log(`bridge via ${b.bridge} (${b.sides.map((s) => s.join(",")).join(" | ")})`, clock() - t0, `rules ${counts.join(" ")}`);
  const wb = await waitUntil("a write through the bridge node", () => c.client(b.bridge).put("sc/bridge", "x", { deadlineMs: 1_000 }).then(() => true), 15_000);
  log("  write through the bridge node ok", wb.ms);
  const ring = majoritiesRingCuts(c.nodes, rng);
  t0 = clock();
  await c.cuts(ring.cuts);
  const views = [...ring.views].map(([n, v]) => `${n}:{${[...v].sort().join(",")}}`).join(" ");
  log("majorities ring", clock() - t0, `${ring.cuts.length} cuts; views ${views}`);
  const wr = await waitUntil("a write under the majorities ring", () => c.client(ring.ring[0] as string).put("sc/ring", "x", { deadlineMs: 1_000 }).then(() => true), 20_000)
    .then((r) => `ok after ${r.ms.toFixed(0)} ms`)
    .catch((e: Error) => `no write: ${e.message}`);
  log("  write under the ring (liveness not required)", 0, wr);
  t0 = clock();
  await c.heal();
  const agreed = await waitUntil("agreement after healing the ring", () => agreedLeader(c, c.nodes.length), 20_000);
  log("heal; all agree", clock() - t0, agreed.value);
}

async function main(): Promise<void> {
  const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
  console.log(`seed=${seed} (reproduce with SEED=${seed})`);
  const rng = mulberry32(seed);
  const runDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "raftmesh-jepsen-"));
  let t0 = clock();
  const c = await createJepsenCluster({ runDir });
  log("network + 5 agents spawned", clock() - t0, runDir);
  const pids = c.nodes.map((n) => c.pid(n) as number);
  t0 = clock();
  await verifyNetwork("n1", "n2");
  log("probe: root->n1 by IP, n2->n1 by hostname", clock() - t0);
  await checkProcesses(c);
  const first = await waitUntil("a first leader", () => agreedLeader(c, c.nodes.length), 60_000);
  log("first leader, all 5 agree", first.ms, first.value);
  await readWriteEverywhere(c);
  let leader = await isolateLeader(c, first.value);
  await killRestart(c, leader);
  leader = await pauseResume(c, leader);
  await oneWay(c, leader);
  await bridgeAndRing(c, rng);
  pids.push(...c.nodes.map((n) => c.pid(n) as number));
  t0 = clock();
  await c.cleanup();
  log("cleanup", clock() - t0);
  const left = leftovers();
  const alive = [...new Set(pids)].filter((p) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  });
  const netns = execFileSync("ip", ["netns", "list"]).toString().trim();
  const links = execFileSync("ip", ["-o", "link"]).toString().split("\n").filter((l) => l.includes("rmj"));
  let pgrep = "";
  try {
    pgrep = execFileSync("pgrep", ["-af", "netns exec rmj-"]).toString().trim();
  } catch {
    // pgrep exits 1 when nothing matches.
  }
  console.log(`ip netns list: ${JSON.stringify(netns)}; rmj links: ${links.length}; leftovers: ${JSON.stringify(left)}; live agent pids: ${JSON.stringify(alive)}; pgrep: ${JSON.stringify(pgrep)}`);
  expect(left.length === 0 && alive.length === 0 && links.length === 0 && pgrep === "", "nothing left after cleanup");
  const lines = readFileSync(c.logPath("n1"), "utf8").split("\n").length;
  console.log(`self-check passed in ${((clock() - started) / 1000).toFixed(1)} s; logs kept in ${runDir}/logs (n1.log: ${lines} lines)`);
}

// process.exit, because open gRPC channels would keep a failed run alive; the exit handler
// installed by createJepsenCluster tears everything down synchronously.
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
