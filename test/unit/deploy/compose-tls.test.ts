/**
 * The TLS variant of the compose file (docker-compose.tls.yml over docker-compose.yml): compose
 * validates the pair, every node gets the three TLS settings and mounts the certificates, waits for
 * the one-shot tls-init, and checks its health over HTTPS; and the agent's own config loader accepts
 * each node's merged environment with the certificates `raftmesh tls init` makes (the volume's
 * path mapped to a temporary directory), so a certificate naming the wrong node would fail here.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { tlsInit } from "../../../src/cli/tls-command.js";
import { FIELDS, loadConfig } from "../../../src/config/index.js";
import { findOnPath, IN_CI } from "../../fixtures/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** COMPOSE_TIMEOUT_MS bounds one `docker-compose config` run (a Python start-up, about a second). */
const COMPOSE_TIMEOUT_MS = 60_000;
/** TLS_DIR is where the compose file mounts the certificates in each container. */
const TLS_DIR = "/etc/raftmesh/tls";
const COMPOSE_BIN = findOnPath("docker-compose");
const SKIP = COMPOSE_BIN === undefined && !IN_CI;

/** serviceBlocks cuts compose's normalised output into its services' text (two-space-indented keys under the top-level services:). */
function serviceBlocks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let inServices = false;
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (/^\S/.test(line)) {
      inServices = line === "services:";
      current = undefined;
      continue;
    }
    if (!inServices) continue;
    const m = /^ {2}([^\s:]+):$/.exec(line);
    if (m) {
      current = m[1]!;
      out.set(current, "");
    } else if (current) out.set(current, `${out.get(current)}${line}\n`);
  }
  return out;
}

/** envOf reads a service's RAFTMESH_ variables from compose's normalised output. */
function envOf(block: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of block.matchAll(/^ {6}(RAFTMESH_[A-Z_]+): (.*)$/gm)) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1");
  return env;
}

const certs = mkdtempSync(join(tmpdir(), "raftmesh-compose-tls-"));
afterAll(() => rmSync(certs, { recursive: true, force: true }));

describe("deploy: docker-compose.tls.yml", () => {
  const note = SKIP ? " (skipped: docker-compose is not on PATH; CI=1 makes this fail)" : "";
  it.skipIf(SKIP)(`deploy: compose validates the TLS variant and each node's settings load with certificates from raftmesh tls init${note}`, () => {
    if (COMPOSE_BIN === undefined) throw new Error("docker-compose is not on PATH in CI");
    const run = spawnSync(COMPOSE_BIN, ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml", "config"], { cwd: ROOT, encoding: "utf8", timeout: COMPOSE_TIMEOUT_MS });
    expect(run.error).toBeUndefined();
    expect(run.status, `docker-compose config failed:\n${run.stderr}`).toBe(0);
    const blocks = serviceBlocks(run.stdout);
    expect([...blocks.keys()]).toContain("tls-init");
    // compose folds long strings over lines: compare with whitespace collapsed.
    expect(blocks.get("tls-init")?.replace(/\s+/g, " ")).toContain(`tls init --dir ${TLS_DIR} --nodes n1,n2,n3`);
    tlsInit({ dir: certs, nodes: ["n1", "n2", "n3"] });
    const known = new Set(FIELDS.map((f) => f.env));
    for (const id of ["n1", "n2", "n3"]) {
      const block = blocks.get(id);
      expect(block, `no service ${id}`).toBeDefined();
      expect(block).toContain(`tls:${TLS_DIR}:ro`);
      expect(block).toMatch(/tls-init:\n\s+condition: service_completed_successfully/);
      expect(block).toMatch(/healthcheck:[\s\S]*https[\s\S]*\/readyz/);
      const env = envOf(block!);
      expect(Object.keys(env).filter((k) => !known.has(k))).toEqual([]);
      expect(env.RAFTMESH_TLS_CERT).toBe(`${TLS_DIR}/${id}.pem`);
      const local = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.startsWith(TLS_DIR) ? v.replace(TLS_DIR, certs) : v]));
      const cfg = loadConfig({ env: local, flags: {} });
      expect(cfg.nodeId).toBe(id);
      expect(cfg.tlsKey).toBe(join(certs, `${id}-key.pem`));
      // The same files under another node's name are refused: the certificate names its member.
      expect(() => loadConfig({ env: { ...local, RAFTMESH_NODE_ID: id === "n1" ? "n2" : "n1" }, flags: {} })).toThrow(/tlsCert/);
    }
  });
});
