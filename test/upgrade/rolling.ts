/**
 * npm run test:upgrade: a rolling upgrade from an older build to this checkout, on real processes,
 * while registrations go on. The older build runs from a git worktree of --from (default: the last
 * build before snapshot format 5, which reads formats up to 4 and does not say what it reads).
 *
 *   npm run test:upgrade -- [--from <git revision>] [--json out.json]
 *
 * 1. three members of the older build take 1,000 registrations (a snapshot every 200 entries);
 * 2. n1 is upgraded (stopped, started on this build over the same data) and made leader;
 * 3. n2 (older build) is stopped while the leader takes writes past its next snapshot, then
 *    started again on the older build: it can only catch up through a snapshot of the new leader,
 *    which must be in a format it reads (it stopped on format 5 before the format claim);
 * 4. n2 and n3 are upgraded one at a time; then, every member on this build, n3 is made to catch
 *    up through a snapshot again (now format 5);
 * then every member must hold the same registry, field for field, holding every registration that
 * was acknowledged. Exits 1 on any failure. Needs git and this checkout's history.
 *
 * With --kill-every <ms>, a nemesis SIGKILLs the leader that often from step 2 to the end of step 4
 * (whichever build it runs) and starts it again on the same build a second later, so leaders of
 * either build come and go while members of both builds hold the log and snapshots: a write whose
 * client saw an error is of unknown outcome and not counted, every acknowledged one must survive.
 * The nemesis waits while a step has a member down (it never takes a second one), and after each
 * of steps 2-4 the run waits for KILLS_PER_MIX more kills, so each mix of builds sees some; the
 * steps' own checks then hold whichever member leads.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RaftmeshClient } from "../../src/client/index.js";
import { ProcessCluster, REPO_ROOT, waitFor } from "../integration/harness/process-cluster.js";

/** FROM_DEFAULT is the last build before snapshot format 5 (and before members said which format they read). */
const FROM_DEFAULT = "d1b77c3";
/** SNAPSHOT_ENTRIES makes the members snapshot often, so that a member left behind needs a snapshot. */
const SNAPSHOT_ENTRIES = 200;
/** FIRST_REGISTRATIONS are made on the older build alone. */
const FIRST_REGISTRATIONS = 1_000;
/** BEHIND_ENTRIES are written while a member is down: more than one snapshot interval, so it needs a snapshot. */
const BEHIND_ENTRIES = 3 * SNAPSHOT_ENTRIES;
/** WRITERS registering at once, and the bound on all registrations made (the nemesis lengthens the steps: 20,000 ran out before the last one). */
const WRITERS = 8;
const REGISTRATIONS_MAX = 60_000;
/** PHASE_WAIT_MS bounds each wait (older builds start through tsx on a shared 2-core machine). */
const PHASE_WAIT_MS = 90_000;
const SERVICES = 4;

/** RESTART_AFTER_MS is how long the nemesis leaves a killed leader down. */
const RESTART_AFTER_MS = 1_000;
/** KILL_EVERY_MS_MIN bounds --kill-every from below: a leader must have time to be elected and serve between kills. */
const KILL_EVERY_MS_MIN = 2_000;
/** KILLS_PER_MIX is how many leader kills each mix of builds sees with --kill-every. */
const KILLS_PER_MIX = 2;

const { values } = parseArgs({ options: { from: { type: "string", default: FROM_DEFAULT }, json: { type: "string" }, "kill-every": { type: "string" } }, strict: true });
const from = values.from as string;
const killEveryMs = values["kill-every"] === undefined ? undefined : Number(values["kill-every"]);
if (killEveryMs !== undefined && !(Number.isInteger(killEveryMs) && killEveryMs >= KILL_EVERY_MS_MIN && killEveryMs <= PHASE_WAIT_MS)) {
  console.error(`--kill-every: milliseconds, an integer in [${KILL_EVERY_MS_MIN}, ${PHASE_WAIT_MS}], got "${values["kill-every"]}"`);
  process.exit(2);
}

const git = (...args: string[]) => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
const oldBuild = mkdtempSync(join(tmpdir(), "raftmesh-older-"));
git("worktree", "add", "--detach", "--force", oldBuild, from);
// The older build runs on this checkout's dependencies: refuse when its lock file differs.
if (readFileSync(join(oldBuild, "package-lock.json"), "utf8") !== readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8")) {
  git("worktree", "remove", "--force", oldBuild);
  console.error(`${from} locks other dependencies than this checkout: not supported`);
  process.exit(2);
}
symlinkSync(join(REPO_ROOT, "node_modules"), join(oldBuild, "node_modules"));

const c = await ProcessCluster.create({ size: 3, env: { RAFTMESH_SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES) } });
const ids = ["n1", "n2", "n3"];
const buildOf = new Map<string, "older" | "this">();
const phases: { phase: string; ms: number; registered: number }[] = [];
let registered = 0;
let failedWrites = 0;
let stop = false;
let client: RaftmeshClient | undefined;
let ok = false;

const register = (i: number) =>
  (client as RaftmeshClient).register({
    id: `i-${i}`,
    service: `svc-${i % SERVICES}`,
    address: `10.3.${(i >> 8) & 255}.${i & 255}`,
    port: 7_000 + (i % 7),
    tags: ["shared", `u-${i}`],
    metadata: { build: `b${i}`, owner: i % 2 === 0 ? "équipe" : "core" },
    zone: i % 2 === 0 ? "eu-1a" : "eu-1b",
    ttlMs: 3_600_000,
  });

/** acknowledged holds the ids of registrations the cluster acknowledged. */
const acknowledged = new Set<string>();
async function writer(): Promise<void> {
  while (!stop && registered < REGISTRATIONS_MAX) {
    const i = registered++;
    try {
      await register(i);
      acknowledged.add(`i-${i}`);
    } catch {
      failedWrites++;
    }
  }
}

function start(id: string, build: "older" | "this"): void {
  buildOf.set(id, build);
  c.start(id, {}, build === "older" ? oldBuild : undefined);
}

async function caughtUp(id: string): Promise<void> {
  const leader = await c.waitForLeader(PHASE_WAIT_MS, ids.filter((m) => c.isRunning(m)));
  const { commit } = await c.client(leader).status();
  await waitFor(`${id} to apply index ${commit}`, async () => (await c.client(id).status({ deadlineMs: 2_000 })).applied >= commit, PHASE_WAIT_MS);
}

async function phase(name: string, body: () => Promise<void>): Promise<void> {
  const t = Date.now();
  await body();
  phases.push({ phase: name, ms: Date.now() - t, registered });
  console.log(`${name}: ${Date.now() - t} ms, ${registered} registrations so far`);
  // A member the nemesis killed is started again within RESTART_AFTER_MS: wait for that.
  await acting;
  for (const id of ids) if (buildOf.has(id) && !c.isRunning(id)) throw new Error(`${id} (${buildOf.get(id)} build) is not running`);
}

/**
 * The nemesis (--kill-every): `stepsWithMemberDown` counts steps that have a member down on purpose; `acting` is
 * the nemesis's kill-and-restart under way, which such a step waits for before it stops a member.
 */
let stepsWithMemberDown = 0;
let acting: Promise<void> | undefined;
let nemesisStop = false;
const kills: { id: string; build: "older" | "this"; atMs: number }[] = [];
const t0 = Date.now();

async function nemesis(everyMs: number): Promise<void> {
  while (!nemesisStop) {
    await new Promise((r) => setTimeout(r, everyMs));
    if (nemesisStop || stepsWithMemberDown > 0 || ids.some((id) => !c.isRunning(id))) continue;
    acting = (async () => {
      const leader = await c.waitForLeader(PHASE_WAIT_MS, ids).catch(() => undefined);
      if (!leader || nemesisStop || stepsWithMemberDown > 0) return;
      const build = buildOf.get(leader) as "older" | "this";
      await c.kill(leader);
      kills.push({ id: leader, build, atMs: Date.now() - t0 });
      console.log(`  nemesis: SIGKILL ${leader} (${build} build, the leader)`);
      await new Promise((r) => setTimeout(r, RESTART_AFTER_MS));
      start(leader, build);
      // Done once it is back in step, so a step that then stops a member never takes the quorum.
      await caughtUp(leader).catch(() => undefined);
    })();
    await acting;
    acting = undefined;
  }
}

/** killsInThisMix waits (with --kill-every) for KILLS_PER_MIX more kills and their restarts, every member up between them. */
async function killsInThisMix(): Promise<void> {
  if (killEveryMs === undefined) return;
  const target = kills.length + KILLS_PER_MIX;
  await waitFor(`${KILLS_PER_MIX} more leader kills`, () => kills.length >= target, PHASE_WAIT_MS);
  await acting;
}

/** memberDown runs body, which stops a member, with the nemesis held off (after its kill under way restarted its victim). */
async function memberDown(body: () => Promise<void>): Promise<void> {
  stepsWithMemberDown++;
  try {
    await acting;
    await body();
  } finally {
    stepsWithMemberDown--;
  }
}

async function writesPast(entries: number): Promise<void> {
  const target = registered + entries;
  await waitFor(`${entries} more registrations`, () => registered >= target, PHASE_WAIT_MS);
}

const logOf = async (id: string) => (await c.logOf(id)).split("\n");
const installs = async (id: string) => (await logOf(id)).filter((l) => l.includes('"installed snapshot from leader"')).length;

try {
  await phase("three members of the older build", async () => {
    for (const id of ids) start(id, "older");
    await c.waitForLeader(PHASE_WAIT_MS);
    client = new RaftmeshClient(ids.map((id) => c.api(id)), { deadlineMs: 10_000 });
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (registered < FIRST_REGISTRATIONS) {
        const i = registered++;
        await register(i);
        acknowledged.add(`i-${i}`);
      }
    }));
  });
  const writers = Promise.all(Array.from({ length: WRITERS }, writer));
  const nemesisDone = killEveryMs === undefined ? Promise.resolve() : nemesis(killEveryMs);
  try {
    await phase("n1 upgraded and made leader", async () => {
      await memberDown(async () => {
        await c.stop("n1");
        start("n1", "this");
        await caughtUp("n1");
      });
      await waitFor("n1 to lead", async () => {
        const leader = await c.waitForLeader(PHASE_WAIT_MS, ids);
        if (leader === "n1") return true;
        await c.client(leader).transferLeader("n1").catch(() => undefined);
        return false;
      }, PHASE_WAIT_MS);
      await killsInThisMix();
    });
    await phase("n2 (older build) behind the new leader's snapshot, restarted on the older build", async () => {
      await memberDown(async () => {
        const before = await installs("n2");
        await c.stop("n2");
        await writesPast(BEHIND_ENTRIES);
        start("n2", "older");
        await waitFor("n2 to install a snapshot from the leader", async () => (await installs("n2")) > before, PHASE_WAIT_MS);
        await caughtUp("n2");
      });
      await killsInThisMix();
      const refused = (await logOf("n1")).filter((l) => l.includes("not sending a snapshot in a format this member cannot read"));
      console.log(`  n1 refused to send n2 a snapshot in a format it cannot read ${refused.length} time(s) before sending one it reads`);
    });
    for (const id of ["n2", "n3"]) {
      await phase(`${id} upgraded`, () =>
        memberDown(async () => {
          await c.stop(id);
          start(id, "this");
          await caughtUp(id);
        }).then(killsInThisMix),
      );
    }
    await phase("n3 (this build, every member on it) behind a snapshot in format 5", async () => {
      // Every member runs this build now: the nemesis is done (its victims restart on this build too).
      nemesisStop = true;
      await nemesisDone;
      await waitFor("a snapshot written for readers of format 5", async () => (await logOf(await c.waitForLeader(PHASE_WAIT_MS, ids))).some((l) => l.includes('"took snapshot and compacted the log"') && l.includes('"membersReadMax":5')), PHASE_WAIT_MS);
      const before = await installs("n3");
      await c.stop("n3");
      await writesPast(BEHIND_ENTRIES);
      start("n3", "this");
      await waitFor("n3 to install a snapshot", async () => (await installs("n3")) > before, PHASE_WAIT_MS);
      const formats = (await logOf("n3")).filter((l) => l.includes('"installed snapshot from leader"')).map((l) => (JSON.parse(l) as { format?: number }).format);
      console.log(`  n3 installed formats ${formats.map((f) => f ?? "? (older build)").join(", ")}`);
      if (formats.at(-1) !== 5) throw new Error(`n3 installed format ${formats.at(-1)}, not 5`);
    });
  } finally {
    stop = true;
    nemesisStop = true;
    await Promise.all([writers, nemesisDone]);
  }
  await phase("every member holds the same registry", async () => {
    for (const id of ids) await caughtUp(id);
    const leader = await c.waitForLeader(PHASE_WAIT_MS, ids);
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const want = new Map<string, unknown[]>();
    for (let k = 0; k < SERVICES; k++) want.set(`svc-${k}`, [...(await c.client(leader).getService(`svc-${k}`, { stale: true })).instances].sort(byId));
    const held = new Set([...want.values()].flat().map((i) => (i as { id: string }).id));
    const lost = [...acknowledged].filter((id) => !held.has(id));
    if (lost.length > 0) throw new Error(`${lost.length} acknowledged registrations missing, e.g. ${lost.slice(0, 3).join(", ")}`);
    for (const id of ids) {
      for (const [name, instances] of want) {
        const got = [...(await c.client(id).getService(name, { stale: true })).instances].sort(byId);
        if (JSON.stringify(got) !== JSON.stringify(instances)) throw new Error(`${id} holds other instances of ${name} than ${leader}`);
      }
    }
    console.log(`  ${held.size} instances on every member, ${acknowledged.size} acknowledged, ${failedWrites} writes failed (outcome unknown)`);
  });
  ok = true;
} catch (error) {
  console.error(`FAILED: ${(error as Error).stack ?? error}`);
  for (const id of ids) console.error(`--- ${id} (${buildOf.get(id)}) last lines:\n${(await logOf(id)).filter((l) => /"level":(40|50|60)/.test(l)).slice(-5).join("\n")}`);
} finally {
  client?.close();
  await c.cleanup();
  git("worktree", "remove", "--force", oldBuild);
}
const result = { from, ok, registered, acknowledged: acknowledged.size, failedWrites, killEveryMs, kills, phases };
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
console.log(ok ? "rolling upgrade: passed" : "rolling upgrade: FAILED");
process.exit(ok ? 0 : 1);
