/**
 * The status page in a real browser: headless Chromium (Debian's, driven by playwright-core)
 * loads a follower's admin page of a running 3-node cluster and shows the leader, a registered
 * master-slave service with its master, and the failover event when the master's heartbeats stop;
 * when the leader is killed the page shows the new leader and its election without a reload.
 * A screenshot is saved as test-artifacts/status-page.png. Skipped, saying why, without
 * /usr/bin/chromium (CI installs Debian's chromium).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, REPO_ROOT } from "../harness/process-cluster.js";

const CHROMIUM = process.env.RAFTMESH_CHROMIUM ?? "/usr/bin/chromium";
const NODES = ["n1", "n2", "n3"] as const;
const TTL_MS = 1_000;
/** PAGE_WAIT_MS bounds each wait for the page to show something: two polls of the page and a failover or election on a busy machine. */
const PAGE_WAIT_MS = 10_000;
const ARTIFACT = join(REPO_ROOT, "test-artifacts", "status-page.png");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`status page browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set RAFTMESH_CHROMIUM)`);

describe.skipIf(!haveChromium)("the status page in headless Chromium", () => {
  let c: ProcessCluster;
  let browser: Browser | undefined;

  beforeAll(async () => {
    c = await ProcessCluster.create({ size: 3 });
    c.startAll();
    [browser] = await Promise.all([chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] }), c.waitForLeader()]);
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await c?.cleanup();
  });

  it("shows the leader, a service with its master and a failover event, and follows a leader change live", async () => {
    const leader = await c.waitForLeader();
    const follower = NODES.find((n) => n !== leader) as string;
    const cl = c.client(follower);
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
      const page = await (browser as Browser).newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(`http://127.0.0.1:${c.specs.get(follower)?.adminPort}/`);
      await page.locator("#leader", { hasText: leader }).waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator(`#members tr[data-member="${leader}"] .role`, { hasText: "leader" }).waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator('[data-service="db"] [data-master="a"]').waitFor({ timeout: PAGE_WAIT_MS });

      // a's heartbeats stop: b is promoted; the page shows the new master and the failover event.
      beatA = false;
      await page.locator('[data-service="db"] [data-master="b"]').waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator('#events li[data-kind="master-promoted"]', { hasText: "db: b is master" }).waitFor({ timeout: PAGE_WAIT_MS });
      expect(await page.locator('#events li[data-kind="instance-expired"]', { hasText: "db/a" }).count()).toBeGreaterThan(0);

      // The leader is killed: without a reload the page shows another leader and its election.
      await c.kill(leader);
      const next = await c.waitForLeader(20_000, NODES.filter((n) => n !== leader));
      await page.locator("#leader", { hasText: next }).waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator('#events li[data-kind="leader-elected"]', { hasText: `${next} leads` }).waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator(`#members tr[data-member="${leader}"] td.no`).waitFor({ timeout: PAGE_WAIT_MS });
      expect(await page.locator("#conn").textContent()).toBe("live");
      mkdirSync(join(REPO_ROOT, "test-artifacts"), { recursive: true });
      await page.screenshot({ path: ARTIFACT, fullPage: true });
      console.log(`status page screenshot: ${ARTIFACT}`);
    } finally {
      stop = true;
      await loop;
    }
  }, 40_000);
});
