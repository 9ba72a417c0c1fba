/**
 * The Prometheus alerting rules (cluster/prometheus/alerts.yml) pass `promtool check rules`
 * (Debian's prometheus package; .ci/run installs it), and promtool refuses a broken rule, so the
 * check can fail. The TLS scrape config (cluster/prometheus/prometheus-tls.yml) passes `promtool
 * check config` with the certificates `raftmesh tls init` makes in its paths (and fails without
 * the client key), and a real prometheus scrapes a node's admin endpoint over HTTPS that requires
 * a client certificate, once. Without promtool/prometheus the tests are skipped with a note,
 * except in CI, where they fail.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AdminHttp } from "../../../src/agent/admin-http.js";
import { tlsInit } from "../../../src/cli/tls-command.js";
import { TlsFiles } from "../../../src/common/tls.js";
import { NodeMetrics } from "../../../src/metrics/index.js";
import { findOnPath, IN_CI } from "../../fixtures/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const ALERTS = join(ROOT, "cluster/prometheus/alerts.yml");
const TLS_CONFIG = join(ROOT, "cluster/prometheus/prometheus-tls.yml");
/** SCRAPE_WAIT_MS bounds the wait for prometheus's first scrape of the HTTPS target (it starts in about a second and scrapes every second). */
const SCRAPE_WAIT_MS = 10_000;
const PROMETHEUS = findOnPath("prometheus");
const SKIP_SCRAPE = PROMETHEUS === undefined && !IN_CI;
/** PROMTOOL_TIMEOUT_MS bounds one promtool run (it starts in well under a second). */
const PROMTOOL_TIMEOUT_MS = 30_000;
const PROMTOOL = findOnPath("promtool");
const SKIP = PROMTOOL === undefined && !IN_CI;
const note = SKIP ? " (skipped: promtool is not on PATH; install Debian's prometheus package — .ci/run does, and CI=1 makes this fail)" : "";

function checkRules(file: string) {
  if (PROMTOOL === undefined) throw new Error("promtool is not on PATH in CI; .ci/run should have installed Debian's prometheus package");
  return spawnSync(PROMTOOL, ["check", "rules", file], { encoding: "utf8", timeout: PROMTOOL_TIMEOUT_MS });
}

describe("deploy: Prometheus alerting rules", () => {
  it.skipIf(SKIP)(`deploy: promtool check rules accepts cluster/prometheus/alerts.yml${note}`, () => {
    const run = checkRules(ALERTS);
    expect(run.status, `promtool check rules failed:\n${run.stdout}${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/SUCCESS: 9 rules found/);
  });

  it.skipIf(SKIP)(`deploy: promtool refuses a rule with a broken expression${note}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-rules-"));
    try {
      const bad = join(dir, "bad.yml");
      writeFileSync(bad, "groups:\n  - name: bad\n    rules:\n      - alert: Broken\n        expr: raftmesh_raft_term >\n");
      expect(checkRules(bad).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** tlsConfigIn is prometheus-tls.yml with the container's paths moved to dir (certificates) and the real alerts.yml; targets and interval replaced when given. */
function tlsConfigIn(dir: string, over: { targets?: string; intervalS?: number } = {}): string {
  let text = readFileSync(TLS_CONFIG, "utf8").replaceAll("/etc/raftmesh/tls/", `${dir}/`).replace("/etc/prometheus/alerts.yml", ALERTS);
  if (over.targets) text = text.replace(/targets: \[.*\]/, `targets: [${over.targets}]`);
  if (over.intervalS) text = text.replace(/scrape_interval: \d+s/, `scrape_interval: ${over.intervalS}s`);
  const file = join(dir, "prometheus.yml");
  writeFileSync(file, text);
  return file;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe("deploy: Prometheus over HTTPS", () => {
  it.skipIf(SKIP)(`deploy: promtool check config accepts cluster/prometheus/prometheus-tls.yml with raftmesh tls init's files, and refuses it without the client key${note}`, () => {
    if (PROMTOOL === undefined) throw new Error("promtool is not on PATH in CI");
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-prom-tls-"));
    try {
      tlsInit({ dir, nodes: ["n1", "n2", "n3"] });
      const file = tlsConfigIn(dir);
      const ok = spawnSync(PROMTOOL, ["check", "config", file], { encoding: "utf8", timeout: PROMTOOL_TIMEOUT_MS });
      expect(ok.status, `promtool check config failed:\n${ok.stdout}${ok.stderr}`).toBe(0);
      expect(`${ok.stdout}${ok.stderr}`).toMatch(/SUCCESS/);
      unlinkSync(join(dir, "client-key.pem"));
      expect(spawnSync(PROMTOOL, ["check", "config", file], { encoding: "utf8", timeout: PROMTOOL_TIMEOUT_MS }).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const scrapeNote = SKIP_SCRAPE ? " (skipped: prometheus is not on PATH; CI=1 makes this fail)" : "";
  it.skipIf(SKIP_SCRAPE)(`deploy: prometheus scrapes a node's admin endpoint over HTTPS with its client certificate (tlsClientAuth), once${scrapeNote}`, async () => {
    if (PROMETHEUS === undefined) throw new Error("prometheus is not on PATH in CI");
    const dir = mkdtempSync(join(tmpdir(), "raftmesh-prom-scrape-"));
    tlsInit({ dir, nodes: ["n1"] });
    const files = new TlsFiles({ ca: join(dir, "ca.pem"), cert: join(dir, "n1.pem"), key: join(dir, "n1-key.pem") });
    const metrics = new NodeMetrics({ node: "n1", cluster: "c", version: "test" });
    metrics.followTls(files);
    const admin = new AdminHttp({ status: () => ({ leader: "n1" }), running: () => true, metrics: { contentType: metrics.registry.contentType, text: () => metrics.registry.metrics() }, tls: { files, clientAuth: true } });
    let prom: ChildProcess | undefined;
    try {
      const adminPort = await admin.listen("127.0.0.1:0");
      const webPort = await freePort();
      const file = tlsConfigIn(dir, { targets: `"127.0.0.1:${adminPort}"`, intervalS: 1 });
      prom = spawn(PROMETHEUS, [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${webPort}`], { stdio: "ignore" });
      const deadline = Date.now() + SCRAPE_WAIT_MS;
      let target: { health: string; lastError: string } | undefined;
      while (Date.now() < deadline) {
        try {
          const r = await fetch(`http://127.0.0.1:${webPort}/api/v1/targets`);
          const body = (await r.json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
          target = body.data.activeTargets[0];
          if (target?.health === "up" || (target?.health === "down" && target.lastError !== "")) break;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(target, "prometheus reported no target").toBeDefined();
      expect(target!.lastError).toBe("");
      expect(target!.health).toBe("up");
      const q = await fetch(`http://127.0.0.1:${webPort}/api/v1/query?query=raftmesh_tls_cert_expiry_seconds`);
      const result = ((await q.json()) as { data: { result: { value: [number, string] }[] } }).data.result;
      expect(Number(result[0]?.value[1])).toBeGreaterThan(300 * 86_400);
    } finally {
      prom?.kill("SIGKILL");
      await admin.close();
      files.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});
