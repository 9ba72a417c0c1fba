import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type AgentConfig, FIELDS, loadConfig } from "../../../src/config/index.js";
import { findOnPath, IN_CI } from "../../fixtures/tools.js";

// The compose file must describe a cluster that the agent's own config loader accepts. loadConfig
// ignores environment variables it does not know, so a misspelt RAFTMESH_ name would silently fall
// back to a default: this test checks every name against FIELDS as well.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const COMPOSE_FILE = join(ROOT, "docker-compose.yml");
const DOCKERFILE = "cluster/Dockerfile";
/** BALANCER_PORT is the balancer's in-container HTTP port (DESIGN.md); it has no config field yet. */
const BALANCER_PORT = 7300;
/** COMPOSE_TIMEOUT_MS bounds one `docker-compose config` run (a Python start-up, about a second). */
const COMPOSE_TIMEOUT_MS = 60_000;

const COMPOSE_BIN = findOnPath("docker-compose");
const SKIP_COMPOSE = COMPOSE_BIN === undefined && !IN_CI;

// --- a parser for the YAML subset that docker-compose.yml and `docker-compose config` use -------------

/** Yaml is a parsed value; every scalar stays a string, exactly as written. */
type Yaml = string | null | Yaml[] | { [key: string]: Yaml };
interface Line {
  readonly no: number;
  indent: number;
  text: string;
}

/**
 * parseYamlSubset reads block mappings and sequences, quoted and plain scalars, `{}`/`[]`, comments,
 * `&anchor`, `*alias` and `<<` merges. Anything else (flow collections, block scalars, tabs) throws, so
 * a compose file that outgrows the subset fails this test loudly instead of being misread.
 */
function parseYamlSubset(text: string): Yaml {
  const lines: Line[] = [];
  text.split("\n").forEach((raw, i) => {
    const body = stripComment(raw).trimEnd();
    if (body.trim() === "") return;
    if (/^\s*\t/.test(body)) throw new Error(`yaml line ${i + 1}: tabs are not supported`);
    lines.push({ no: i + 1, indent: body.length - body.trimStart().length, text: body.trim() });
  });
  const anchors = new Map<string, Yaml>();
  const [value, next] = parseBlock(lines, 0, 0, anchors);
  if (next !== lines.length) throw new Error(`yaml line ${lines[next]?.no}: unexpected indentation`);
  return value;
}

function stripComment(raw: string): string {
  let quote = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote !== "") quote = c === quote ? "" : quote;
    else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(raw[i - 1] ?? ""))) return raw.slice(0, i);
  }
  return raw;
}

function parseBlock(lines: Line[], i: number, indent: number, anchors: Map<string, Yaml>): [Yaml, number] {
  const first = lines[i];
  if (!first || first.indent < indent) return [null, i];
  return isSeqItem(first.text) ? parseSeq(lines, i, first.indent, anchors) : parseMap(lines, i, first.indent, anchors);
}

function isSeqItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

const MAP_ENTRY = /^([A-Za-z0-9_.<-][^:"']*?):(?:\s+(.*))?$/;

function parseMap(lines: Line[], start: number, indent: number, anchors: Map<string, Yaml>): [Yaml, number] {
  const own: Record<string, Yaml> = {};
  const merged: Record<string, Yaml> = {};
  let i = start;
  for (let line = lines[i]; line && line.indent === indent && !isSeqItem(line.text); line = lines[i]) {
    const m = MAP_ENTRY.exec(line.text);
    if (!m) throw new Error(`yaml line ${line.no}: expected key: value, got ${line.text}`);
    const key = m[1]!;
    let rest = m[2] ?? "";
    const anchor = /^&([\w-]+)\s*/.exec(rest);
    if (anchor) rest = rest.slice(anchor[0].length);
    let value: Yaml;
    const next = lines[i + 1];
    if (rest !== "") [value, i] = [scalarOrAlias(rest, line, anchors), i + 1];
    // A sequence may sit at its key's own indentation, as `docker-compose config` prints it.
    else if (next && next.indent === indent && isSeqItem(next.text)) [value, i] = parseSeq(lines, i + 1, indent, anchors);
    else [value, i] = parseBlock(lines, i + 1, indent + 1, anchors);
    if (anchor) anchors.set(anchor[1]!, value);
    if (key === "<<") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error(`yaml line ${line.no}: << needs a mapping`);
      Object.assign(merged, value);
    } else {
      if (key in own) throw new Error(`yaml line ${line.no}: duplicate key ${key}`);
      own[key] = value;
    }
  }
  // YAML merge keys never override keys written in the mapping itself, wherever they appear.
  return [{ ...merged, ...own }, i];
}

function parseSeq(lines: Line[], start: number, indent: number, anchors: Map<string, Yaml>): [Yaml, number] {
  const out: Yaml[] = [];
  let i = start;
  for (let line = lines[i]; line && line.indent === indent && isSeqItem(line.text); line = lines[i]) {
    const item = line.text.slice(1).trim();
    let value: Yaml;
    if (item === "") {
      [value, i] = parseBlock(lines, i + 1, indent + 1, anchors);
    } else if (MAP_ENTRY.test(item)) {
      // "- key: value" opens a mapping whose later keys sit two columns in; re-read this line as its first key.
      lines[i] = { no: line.no, indent: indent + 2, text: item };
      [value, i] = parseMap(lines, i, indent + 2, anchors);
    } else {
      [value, i] = [scalarOrAlias(item, line, anchors), i + 1];
    }
    out.push(value);
  }
  return [out, i];
}

function scalarOrAlias(text: string, line: Line, anchors: Map<string, Yaml>): Yaml {
  if (text.startsWith("*")) {
    const value = anchors.get(text.slice(1));
    if (value === undefined) throw new Error(`yaml line ${line.no}: unknown alias ${text}`);
    return value;
  }
  if (text === "{}") return {};
  if (text === "[]") return [];
  if (text.startsWith('"')) return JSON.parse(text) as string;
  if (text.startsWith("'") && text.endsWith("'") && text.length >= 2) return text.slice(1, -1).replaceAll("''", "'");
  if (/^[[{|>&!%@`]/.test(text)) throw new Error(`yaml line ${line.no}: unsupported YAML: ${text}`);
  return text;
}

// --- reading services out of a parsed compose file ----------------------------------------------------

interface Port {
  readonly published: number;
  readonly target: number;
}
interface Service {
  readonly name: string;
  readonly hostname: string;
  readonly env: Record<string, string>;
  readonly ports: Port[];
  readonly volumes: string[];
  readonly dockerfile: string;
}

function asMap(v: Yaml | undefined, where: string): Record<string, Yaml> {
  if (v === null || v === undefined || typeof v !== "object" || Array.isArray(v)) throw new Error(`${where} must be a mapping`);
  return v;
}

function asList(v: Yaml | undefined, where: string): Yaml[] {
  if (!Array.isArray(v)) throw new Error(`${where} must be a list`);
  return v;
}

function asString(v: Yaml | undefined, where: string): string {
  if (typeof v !== "string") throw new Error(`${where} must be a scalar`);
  return v;
}

/** portOf reads "[ip:]published:target[/tcp]" (as written) or { published, target } (as compose prints it). */
function portOf(v: Yaml, where: string): Port {
  if (typeof v === "string") {
    const m = /^(?:[\d.]+:)?(\d+):(\d+)(?:\/tcp)?$/.exec(v);
    if (!m) throw new Error(`${where}: "${v}" is not [ip:]published:target`);
    return { published: Number(m[1]), target: Number(m[2]) };
  }
  const map = asMap(v, where);
  return { published: Number(asString(map.published, `${where}.published`)), target: Number(asString(map.target, `${where}.target`)) };
}

/** MONITORING_PROFILE is the compose profile of the optional Prometheus and Grafana services. */
const MONITORING_PROFILE = "monitoring";

/** servicesOf reads the raftmesh nodes: every service but the optional ones under a profile. */
function servicesOf(doc: Yaml): Service[] {
  const all = Object.entries(asMap(asMap(doc, "compose file").services, "services"));
  return all.filter(([, raw]) => asMap(raw, "service").profiles === undefined).map(([name, raw]) => {
    const s = asMap(raw, name);
    const envRaw = s.environment ?? {};
    const env: Record<string, string> = {};
    if (Array.isArray(envRaw)) {
      for (const e of envRaw) {
        const [k, ...v] = asString(e, `${name}.environment`).split("=");
        env[k!] = v.join("=");
      }
    } else {
      for (const [k, v] of Object.entries(asMap(envRaw, `${name}.environment`))) env[k] = asString(v, `${name}.environment.${k}`);
    }
    return {
      name,
      hostname: asString(s.hostname, `${name}.hostname`),
      env,
      ports: asList(s.ports ?? [], `${name}.ports`).map((p, i) => portOf(p, `${name}.ports[${i}]`)),
      volumes: asList(s.volumes ?? [], `${name}.volumes`).map((v, i) => asString(v, `${name}.volumes[${i}]`)),
      dockerfile: asString(asMap(s.build, `${name}.build`).dockerfile, `${name}.build.dockerfile`),
    };
  });
}

function portOfAddress(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}

// --- the checks ------------------------------------------------------------------------------------------

const DOC = parseYamlSubset(readFileSync(COMPOSE_FILE, "utf8"));
const SERVICES = servicesOf(DOC);
const KNOWN_ENV = new Set(FIELDS.map((f) => f.env));

function configOf(s: Service): AgentConfig {
  return loadConfig({ env: s.env, flags: {} });
}

describe("deploy: docker-compose.yml describes a cluster the agent's config loader accepts", () => {
  const skipNote = SKIP_COMPOSE ? " (skipped: docker-compose is not on PATH; .ci/run installs it and CI=1 makes this fail)" : "";
  it.skipIf(SKIP_COMPOSE)(`deploy: docker-compose validates the file and reads it as this test does${skipNote}`, () => {
    if (COMPOSE_BIN === undefined) throw new Error("docker-compose is not on PATH in CI; .ci/run should have installed it");
    const run = spawnSync(COMPOSE_BIN, ["-f", COMPOSE_FILE, "config"], { cwd: ROOT, encoding: "utf8", timeout: COMPOSE_TIMEOUT_MS });
    expect(run.error).toBeUndefined();
    expect(run.status, `docker-compose config failed:\n${run.stderr}`).toBe(0);
    // compose resolves anchors and merges and rewrites ports in long form; its view must equal ours,
    // which also catches YAML 1.1 surprises such as an unquoted 22:22 read as the number 1342.
    const theirs = servicesOf(parseYamlSubset(run.stdout));
    const view = (list: Service[]) =>
      list.map((s) => ({ name: s.name, hostname: s.hostname, env: s.env, ports: s.ports, dockerfile: s.dockerfile, volumes: s.volumes.map((v) => v.replace(/:rw$/, "")) }));
    expect(view(theirs)).toEqual(view(SERVICES));
  });

  it("deploy: the cluster is n1, n2 and n3, each with its own hostname", () => {
    expect(SERVICES.map((s) => s.name)).toEqual(["n1", "n2", "n3"]);
    for (const s of SERVICES) expect(s.hostname).toBe(s.name);
  });

  for (const s of SERVICES) {
    it(`deploy: ${s.name} uses only known RAFTMESH_ variables and loadConfig accepts them`, () => {
      const unknown = Object.keys(s.env).filter((k) => !KNOWN_ENV.has(k));
      expect(unknown, `not in FIELDS (src/config/schema.ts): ${unknown.join(", ")}`).toEqual([]);
      const cfg = configOf(s);
      expect(cfg.nodeId).toBe(s.name);
      expect(cfg.nodeId).toBe(s.hostname);
      expect(cfg.bootstrap).toBe(true);
      const peerPort = portOfAddress(cfg.peerListen);
      const apiPort = portOfAddress(cfg.apiListen);
      expect(cfg.members).toEqual(
        SERVICES.map((m) => ({ id: m.name, peer: `${m.hostname}:${peerPort}`, api: `${m.hostname}:${apiPort}` })),
      );
    });

    it(`deploy: ${s.name} publishes its API, balancer and admin ports and keeps its data on its own volume`, () => {
      const cfg = configOf(s);
      const targets = s.ports.map((p) => p.target).sort((a, b) => a - b);
      expect(targets).toEqual([portOfAddress(cfg.apiListen), BALANCER_PORT, portOfAddress(cfg.adminListen)].sort((a, b) => a - b));
      const volume = s.volumes.map((v) => v.split(":")).find(([, path]) => path === cfg.dataDir);
      expect(volume, `no volume mounted at ${cfg.dataDir}`).toBeDefined();
      expect(volume![0]).toBe(`${s.name}-data`);
      expect(Object.keys(asMap(asMap(DOC, "compose file").volumes, "volumes"))).toContain(`${s.name}-data`);
    });
  }

  it("deploy: the nodes agree on every cluster-wide setting", () => {
    // Log level and format may differ per node; these must not, or the nodes would not form one cluster.
    const shared = (cfg: AgentConfig) => {
      const { clusterId, dataDir, peerListen, apiListen, adminListen, members, bootstrap, tickMs, electionTicks, heartbeatTicks } = cfg;
      return { clusterId, dataDir, peerListen, apiListen, adminListen, members, bootstrap, tickMs, electionTicks, heartbeatTicks };
    };
    const configs = SERVICES.map(configOf);
    for (const cfg of configs) expect(shared(cfg)).toEqual(shared(configs[0]!));
  });

  it("deploy: no two published host ports collide", () => {
    const published = SERVICES.flatMap((s) => s.ports.map((p) => p.published));
    expect(published.length).toBeGreaterThan(0);
    expect(new Set(published).size).toBe(published.length);
  });

  it("deploy: the image exposes the ports, volume and entry point the compose file relies on", () => {
    for (const s of SERVICES) expect(s.dockerfile).toBe(DOCKERFILE);
    expect(existsSync(join(ROOT, DOCKERFILE))).toBe(true);
    const dockerfile = readFileSync(join(ROOT, DOCKERFILE), "utf8");
    const exposed = /^EXPOSE\s+(.+)$/m.exec(dockerfile)?.[1]?.split(/\s+/).map(Number) ?? [];
    const cfg = configOf(SERVICES[0]!);
    for (const port of [cfg.peerListen, cfg.apiListen, cfg.adminListen].map(portOfAddress).concat(BALANCER_PORT)) {
      expect(exposed).toContain(port);
    }
    expect(/^VOLUME\s+(\S+)$/m.exec(dockerfile)?.[1]).toBe(cfg.dataDir);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/cli\/main\.js"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["agent"\]$/m);
    expect(dockerfile).toMatch(/^USER 10001/m);
  });

  it("deploy: the healthcheck asks /readyz (running, a leader known, caught up) and the image carries the status page", () => {
    const dockerfile = readFileSync(join(ROOT, DOCKERFILE), "utf8");
    const check = /^HEALTHCHECK[^\n]*\\\n\s*CMD (.+)$/m.exec(dockerfile)?.[1] ?? "";
    expect(check).toContain("/readyz");
    expect(dockerfile).toMatch(/^COPY web \.\/web$/m);
    // The compose services inherit the image's healthcheck; one that overrides it must ask /readyz too.
    for (const s of SERVICES) {
      const own = JSON.stringify(asMap(asMap(asMap(DOC, "compose file").services, "services")[s.name] ?? null, s.name).healthcheck ?? null);
      if (own !== "null") expect(own).toContain("/readyz");
    }
  });

  it("deploy: Prometheus and Grafana are optional (profile monitoring) and mount the repository's config", () => {
    const services = asMap(asMap(DOC, "compose file").services, "services");
    for (const name of ["prometheus", "grafana"]) {
      const s = asMap(services[name] ?? null, name);
      expect(asList(s.profiles ?? null, `${name}.profiles`)).toEqual([MONITORING_PROFILE]);
      for (const v of asList(s.volumes ?? [], `${name}.volumes`)) {
        const source = asString(v, `${name}.volumes`).split(":")[0] ?? "";
        expect(existsSync(join(ROOT, source)), `${name} mounts ${source}, which does not exist`).toBe(true);
      }
    }
    // Prometheus scrapes every node's admin port by its compose hostname.
    const prom = readFileSync(join(ROOT, "cluster/prometheus/prometheus.yml"), "utf8");
    for (const node of SERVICES) expect(prom).toContain(`"${node.hostname}:${portOfAddress(configOf(node).adminListen)}"`);
  });

  it("deploy: the YAML subset parser resolves merges and refuses what it does not understand", () => {
    const text = ["x: &a", '  K: "1"', "  L: b", "y:", "  <<: *a", "  L: c # own key wins", "z:", '- "7201:7200"', "- p: 1", "  q: 2", "w:", "  - 'it''s'"];
    const doc = parseYamlSubset(`${text.join("\n")}\n`);
    expect(doc).toEqual({ x: { K: "1", L: "b" }, y: { K: "1", L: "c" }, z: ["7201:7200", { p: "1", q: "2" }], w: ["it's"] });
    expect(() => parseYamlSubset("a: {b: c}\n")).toThrow(/unsupported/);
    expect(() => parseYamlSubset("a: |\n  text\n")).toThrow(/unsupported/);
    expect(() => parseYamlSubset("a: *missing\n")).toThrow(/unknown alias/);
    expect(() => parseYamlSubset("a: 1\na: 2\n")).toThrow(/duplicate/);
  });
});
