/**
 * The Prometheus alerting rules (cluster/prometheus/alerts.yml) pass `promtool check rules`
 * (Debian's prometheus package; .ci/run installs it), and promtool refuses a broken rule, so the
 * check can fail. Without promtool the test is skipped with a note, except in CI, where it fails.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findOnPath, IN_CI } from "../../fixtures/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const ALERTS = join(ROOT, "cluster/prometheus/alerts.yml");
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
