/**
 * npm run bench:balancer: wrk against three node:http backends directly, through the raftmesh
 * endpoint (HTTP/1.1 and TCP), through HAProxy (roundrobin, keep-alive both sides, http-reuse
 * always; and in TCP mode) and through nginx (upstream keepalive), side by side in one run.
 * Reports medians over repeats of requests/s, p50/p99 latency and each proxy's CPU (from
 * /proc/<pid>/stat, all threads; user and system apart), and the ratios raftmesh/HAProxy in
 * requests/s and in requests per proxy CPU-second. The repeats are interleaved: repeat i runs every
 * target once (in reverse order on odd i), so a drift in the shared machine's load hits all alike. Every proxy runs one thread/worker/process, so the CPU figures compare
 * like with like. Baseline row "node minimal tcp" (minimal-tcp.ts): the smallest Node TCP proxy, the
 * floor of what Node's socket API allows. Paced rows: the same wrk with a delay per connection
 * between requests (--paced-delay-ms), below saturation, for the p99 added at a load kept up with.
 *
 * Then gRPC: a bounded grpc-js unary call load (--grpc-concurrency callers, at most --grpc-calls
 * calls per run) against three grpc-js backends directly (client-side round-robin) and through the
 * endpoint's h2c: calls/s, p50/p99, the proxy's CPU and the ratio through/direct.
 *
 *   npm run bench:balancer -- [--json out.json] [--seconds 5] [--repeats 3] [--connections 16]
 *                             [--grpc-concurrency 16] [--grpc-calls 200000] [--paced-delay-ms 2]
 *                             [--only "raftmesh http,haproxy http,..."]: only the named rows (and
 *                             the ratios between them; gRPC only when "grpc" is named)
 *                             [--compare <name>=<dir>,...]: endpoints from other checkouts of the
 *                             repository (rows "<name> http", "<name> tcp", "<name> http paced";
 *                             a bare <dir> is named "baseline"), interleaved with this one: a
 *                             hot-path change before/after
 *                             [--tls]: adds the TLS rows, interleaved with the plaintext ones
 *                             (also on when --only names one of them): "raftmesh https" (wrk over
 *                             HTTPS to the endpoint's TLS listener, plaintext to the backends),
 *                             "raftmesh http→tls" (plaintext client, the endpoint dialling the
 *                             backends over TLS: upstreamTls, checked against a test CA) and
 *                             "haproxy https" (HAProxy terminating TLS with the same certificate),
 *                             and the ratios https/http. wrk keeps its connections alive, so the
 *                             handshake (one per connection per run) is amortised: these rows are
 *                             the cost of TLS records on a warm connection, not of handshakes. The
 *                             certificates (`raftmesh tls init`'s writer) go to the run's temp dir.
 *   npm run bench:balancer -- --metrics-cost [--seconds 5] [--repeats 5]: only the raftmesh
 *     endpoint, with metrics on and off side by side (runs interleaved on, off, on, off, ...), and
 *     the cost of metrics in requests/s and in requests per CPU-second.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { tlsInit } from "../../../src/cli/tls-command.js";
import { grpcLoad } from "./grpc-load.js";

const { values } = parseArgs({
  options: {
    json: { type: "string" },
    seconds: { type: "string", default: "5" },
    repeats: { type: "string", default: "3" },
    connections: { type: "string", default: "16" },
    "metrics-cost": { type: "boolean", default: false },
    "grpc-concurrency": { type: "string", default: "16" },
    "grpc-calls": { type: "string", default: "200000" },
    "paced-delay-ms": { type: "string", default: "2" },
    only: { type: "string" },
    compare: { type: "string" },
    tls: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const REPEATS = Number(values.repeats);
const CONNECTIONS = Number(values.connections);
const HERE = import.meta.dirname;
const BASE_PORT = 18_300;
const BACKENDS = [BASE_PORT + 1, BASE_PORT + 2, BASE_PORT + 3];
const PORTS = { rmHttp: BASE_PORT + 10, rmTcp: BASE_PORT + 11, haHttp: BASE_PORT + 20, haTcp: BASE_PORT + 21, nginx: BASE_PORT + 30, nodeTcp: BASE_PORT + 31, compare: BASE_PORT + 50 };
/** TLS_PORTS: the TLS rows' listeners (endpoint processes of their own, so the plaintext endpoint is the same as without --tls). */
const TLS_PORTS = { rmHttps: BASE_PORT + 14, rmHttpsTcp: BASE_PORT + 15, rmUpTls: BASE_PORT + 16, rmUpTlsTcp: BASE_PORT + 17, haHttps: BASE_PORT + 22 };
/** TLS_BACKENDS: the same backends as BACKENDS, serving HTTPS (the "raftmesh http→tls" row). */
const TLS_BACKENDS = [BASE_PORT + 4, BASE_PORT + 5, BASE_PORT + 6];
const CLK_TCK = 100;
const GRPC_BACKENDS = [BASE_PORT + 41, BASE_PORT + 42, BASE_PORT + 43];
const GRPC_CONCURRENCY = Number(values["grpc-concurrency"]);
/**
 * PACED_DELAY_MS: in the paced rows each wrk connection waits this long after each answer before
 * its next request (wrk's delay() hook), which holds the rate below the endpoint's saturation: the
 * p99 added there is the latency a request pays at a load the proxy keeps up with.
 */
const PACED_DELAY_MS = Number(values["paced-delay-ms"]);
/** GRPC_CALLS_MAX bounds one gRPC run's calls (besides --seconds). */
const GRPC_CALLS_MAX = Number(values["grpc-calls"]);

/** Proc is a child process we started and stop. */
interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
}

const procs: Proc[] = [];

/** ONLY: the rows --only names (undefined: every row). */
const ONLY = values.only?.split(",").map((s) => s.trim());
const TLS_ROWS = ["raftmesh https", "raftmesh http→tls", "haproxy https"];
/** TLS: the TLS rows are measured (--tls, or --only names one); off, nothing TLS is started. */
const TLS = values.tls || (ONLY?.some((t) => TLS_ROWS.includes(t)) ?? false);
const wanted = (target: string) => (ONLY === undefined ? !TLS_ROWS.includes(target) || TLS : ONLY.includes(target));

function start(name: string, cmd: string, args: string[], readyLine?: RegExp, env?: NodeJS.ProcessEnv): Promise<Proc> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env: { ...process.env, ...env } } : {}) });
  const p = { name, child };
  procs.push(p);
  let errText = "";
  child.stderr?.on("data", (c) => (errText += c));
  return new Promise((ok, fail) => {
    child.once("exit", (code) => fail(new Error(`${name} exited (${code}): ${errText}`)));
    if (!readyLine) {
      // A proxy with no ready line is ready when it is still running after a moment.
      setTimeout(() => (child.exitCode === null ? ok(p) : fail(new Error(`${name} exited: ${errText}`))), 1_000);
      return;
    }
    let seen = 0;
    const need = name === "backends" ? BACKENDS.length : name === "tls backends" ? TLS_BACKENDS.length : 1;
    createInterface({ input: child.stdout! }).on("line", (l) => {
      if (readyLine.test(l) && ++seen === need) ok(p);
    });
  });
}

/** cpuSeconds reads a process's user + system CPU time (all threads). */
function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

/** cpuTimes reads a process's user and system CPU time apart (all threads). */
function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
}

interface Run {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuS: number;
  /** userS: the user part of cpuS (the rest is the kernel's, mostly the same syscalls for every proxy). */
  readonly userS: number;
  readonly errors: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

function wrk(url: string, pid: number | undefined, script?: string): Run {
  const cpu0 = pid ? cpuTimes(pid) : { user: 0, sys: 0 };
  const out = execFileSync("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, "--latency", ...(script ? ["-s", script] : []), url], { encoding: "utf8" });
  const cpu1 = pid ? cpuTimes(pid) : { user: 0, sys: 0 };
  const cpuS = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
  const userS = cpu1.user - cpu0.user;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? "";
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? "";
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = (errs ? Number(errs[1]) : 0) + (sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, p50Ms: ms(p50), p99Ms: ms(p99), cpuS, userS, errors };
}

/** tcpWrk measures the TCP listener with HTTP traffic: wrk's connections each stick to one backend. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

interface Row {
  readonly target: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuS: number;
  readonly reqPerCpuS: number;
  /** userUsPerReq: the proxy's user CPU per request, in µs (median over the repeats). */
  readonly userUsPerReq: number;
  /** sysUsPerReq: the proxy's system CPU per request, in µs. */
  readonly sysUsPerReq: number;
  readonly errors: number;
}

/** Target is one row to measure: a URL through a proxy (pid: whose CPU counts), with wrk's script (paced rows). */
interface Target {
  readonly target: string;
  readonly url: string;
  readonly pid: number | undefined;
  readonly script?: string;
}

/**
 * measureAll runs a warm-up of each target (JIT, pools; not counted), then REPEATS rounds that
 * each run every target once, in reverse order on odd rounds: interleaved, so a change in the
 * shared machine's load during the run lands on every target alike. Medians per target.
 */
function measureAll(targets: readonly Target[]): Row[] {
  for (const t of targets) wrk(t.url, t.pid, t.script);
  const runs = new Map<string, Run[]>(targets.map((t) => [t.target, []]));
  for (let i = 0; i < REPEATS; i++) for (const t of i % 2 === 0 ? targets : [...targets].reverse()) runs.get(t.target)!.push(wrk(t.url, t.pid, t.script));
  return targets.map((t) => {
    const rs = runs.get(t.target)!;
    const perReq = (f: (r: Run) => number) => (t.pid ? median(rs.map((r) => (f(r) * 1e6) / Math.max(r.rps * SECONDS, 1))) : Number.NaN);
    return {
      target: t.target,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      cpuS: median(rs.map((r) => r.cpuS)),
      reqPerCpuS: t.pid ? median(rs.map((r) => (r.rps * SECONDS) / Math.max(r.cpuS, 0.01))) : Number.NaN,
      userUsPerReq: perReq((r) => r.userS),
      sysUsPerReq: perReq((r) => r.cpuS - r.userS),
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  });
}

/** GrpcRow is one gRPC target's medians over the repeats. */
interface GrpcRow {
  readonly target: string;
  readonly callsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuS: number;
  readonly callsPerCpuS: number;
  readonly errors: number;
}

/** measureGrpc runs the gRPC load (a warm-up, then the repeats) and takes medians; pid's CPU is the proxy's. */
async function measureGrpc(target: string, address: string, authority: string | undefined, pid: number | undefined): Promise<GrpcRow> {
  const opts = { seconds: SECONDS, concurrency: GRPC_CONCURRENCY, maxCalls: GRPC_CALLS_MAX };
  await grpcLoad(address, authority, { ...opts, seconds: Math.min(2, SECONDS) }); // warm-up, not counted
  const runs: { callsPerS: number; p50Ms: number; p99Ms: number; cpuS: number; callsPerCpuS: number; errors: number }[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const cpu0 = pid ? cpuSeconds(pid) : 0;
    const r = await grpcLoad(address, authority, opts);
    const cpuS = pid ? cpuSeconds(pid) - cpu0 : 0;
    runs.push({ ...r, cpuS, callsPerCpuS: pid ? r.calls / Math.max(cpuS, 0.01) : Number.NaN });
  }
  const med = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
  return { target, callsPerS: med((r) => r.callsPerS), p50Ms: med((r) => r.p50Ms), p99Ms: med((r) => r.p99Ms), cpuS: med((r) => r.cpuS), callsPerCpuS: med((r) => r.callsPerCpuS), errors: runs.reduce((n, r) => n + r.errors, 0) };
}

/** haproxyConfig: tlsPem (certificate and key in one PEM file) adds the HTTPS frontend of the "haproxy https" row. */
function haproxyConfig(tlsPem?: string): string {
  const servers = BACKENDS.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join("\n");
  return `global
  nbthread 1
  maxconn 4096
defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend http_in
  mode http
  option http-keep-alive
  bind 127.0.0.1:${PORTS.haHttp}
  default_backend be_http
backend be_http
  mode http
  balance roundrobin
  http-reuse always
${servers}
frontend tcp_in
  mode tcp
  bind 127.0.0.1:${PORTS.haTcp}
  default_backend be_tcp
backend be_tcp
  mode tcp
  balance roundrobin
${servers}
${
  tlsPem
    ? `frontend https_in
  mode http
  option http-keep-alive
  bind 127.0.0.1:${TLS_PORTS.haHttps} ssl crt ${tlsPem} alpn h2,http/1.1
  default_backend be_http
`
    : ""
}`;
}

function nginxConfig(dir: string): string {
  const servers = BACKENDS.map((p) => `    server 127.0.0.1:${p};`).join("\n");
  return `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream be {
${servers}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${PORTS.nginx};
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** metricsCost measures the endpoint with metrics on and off, interleaved so drifts in machine load hit both alike. */
async function metricsCost(): Promise<void> {
  const tsx = ["--import", "tsx"];
  await start("backends", process.execPath, [...tsx, resolve(HERE, "backends.ts"), ...BACKENDS.map(String)], /^ready/);
  const env = (on: boolean) => ({ ...process.env, BENCH_METRICS: on ? "1" : "0" });
  const on = await startWith("raftmesh metrics on", env(true), [String(PORTS.rmHttp), String(PORTS.rmTcp)]);
  const off = await startWith("raftmesh metrics off", env(false), [String(BASE_PORT + 12), String(BASE_PORT + 13)]);
  const targets = [
    { name: "metrics on", url: `http://127.0.0.1:${PORTS.rmHttp}/svc/hello/`, pid: on.child.pid },
    { name: "metrics off", url: `http://127.0.0.1:${BASE_PORT + 12}/svc/hello/`, pid: off.child.pid },
  ];
  for (const t of targets) wrk(t.url, t.pid); // warm-up runs, not counted
  const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
  for (let i = 0; i < REPEATS; i++) for (const t of i % 2 === 0 ? targets : [...targets].reverse()) runs.get(t.name)!.push(wrk(t.url, t.pid));
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  process.stdout.write(`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${REPEATS} interleaved runs each, medians\n`);
  process.stdout.write(`${"ENDPOINT".padEnd(14)}${"REQ/S".padStart(10)}${"P50 MS".padStart(9)}${"P99 MS".padStart(9)}${"REQ/CPU-S".padStart(11)}${"ERRORS".padStart(8)}\n`);
  const row = (name: string) => {
    const rs = runs.get(name)!;
    return { rps: median(rs.map((r) => r.rps)), perCpu: median(rs.map((r) => (r.rps * SECONDS) / Math.max(r.cpuS, 0.01))), p50: median(rs.map((r) => r.p50Ms)), p99: median(rs.map((r) => r.p99Ms)), errors: rs.reduce((n, r) => n + r.errors, 0) };
  };
  for (const t of targets) {
    const r = row(t.name);
    process.stdout.write(`${t.name.padEnd(14)}${fmt(r.rps).padStart(10)}${fmt(r.p50, 2).padStart(9)}${fmt(r.p99, 2).padStart(9)}${fmt(r.perCpu).padStart(11)}${String(r.errors).padStart(8)}\n`);
  }
  const a = row("metrics on");
  const b = row("metrics off");
  process.stdout.write(`metrics cost: req/s ${fmt((1 - a.rps / b.rps) * 100, 1)} %, req per CPU-second ${fmt((1 - a.perCpu / b.perCpu) * 100, 1)} % (negative: metrics on measured faster)\n`);
}

function startWith(name: string, env: NodeJS.ProcessEnv, ports: string[]): Promise<Proc> {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(HERE, "endpoint.ts"), ...ports, ...BACKENDS.map(String)], { stdio: ["ignore", "pipe", "pipe"], env });
  const p = { name, child };
  procs.push(p);
  return new Promise((ok, fail) => {
    child.once("exit", (code) => fail(new Error(`${name} exited (${code})`)));
    createInterface({ input: child.stdout! }).on("line", (l) => {
      if (/^ready/.test(l)) ok(p);
    });
  });
}

async function main(): Promise<void> {
  if (values["metrics-cost"]) return metricsCost();
  const dir = mkdtempSync(join(tmpdir(), "raftmesh-bench-balancer-"));
  // TLS: a test CA and one certificate (for 127.0.0.1 and localhost) that the endpoint, HAProxy and the TLS backends all serve.
  const certs = join(dir, "certs");
  if (TLS) tlsInit({ dir: certs, nodes: ["bench"] });
  const cert = join(certs, "bench.pem");
  const key = join(certs, "bench-key.pem");
  const haPem = join(certs, "haproxy.pem");
  if (TLS) writeFileSync(haPem, readFileSync(cert, "utf8") + readFileSync(key, "utf8"));
  writeFileSync(join(dir, "haproxy.cfg"), haproxyConfig(TLS ? haPem : undefined));
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir));
  const tsx = ["--import", "tsx"];
  await start("backends", process.execPath, [...tsx, resolve(HERE, "backends.ts"), ...BACKENDS.map(String)], /^ready/);
  await start("grpc-backends", process.execPath, [...tsx, resolve(HERE, "grpc-backends.ts"), ...GRPC_BACKENDS.map(String)], /^ready/);
  // The endpoint learns the gRPC backends from its environment (service "hello-grpc").
  process.env.BENCH_GRPC_PORTS = GRPC_BACKENDS.join(",");
  const rm = await start("raftmesh", process.execPath, [...tsx, resolve(HERE, "endpoint.ts"), String(PORTS.rmHttp), String(PORTS.rmTcp), ...BACKENDS.map(String)], /^ready/);
  const others: { name: string; proc: Proc; http: number; tcp: number }[] = [];
  for (const [i, spec] of (values.compare?.split(",") ?? []).entries()) {
    const eq = spec.indexOf("=");
    const name = eq === -1 ? "baseline" : spec.slice(0, eq);
    const http = PORTS.compare + 2 * i;
    const proc = await start(name, process.execPath, [...tsx, resolve(spec.slice(eq + 1), "test/bench/balancer/endpoint.ts"), String(http), String(http + 1), ...BACKENDS.map(String)], /^ready/);
    others.push({ name, proc, http, tcp: http + 1 });
  }
  const ha = await start("haproxy", "haproxy", ["-f", join(dir, "haproxy.cfg"), "-db"]);
  const ng = await start("nginx", "nginx", ["-c", join(dir, "nginx.conf"), "-p", dir]);
  const nt = await start("node minimal tcp", process.execPath, [...tsx, resolve(HERE, "minimal-tcp.ts"), String(PORTS.nodeTcp), ...BACKENDS.map(String)], /^ready/);
  // TLS rows: their own endpoint processes (HTTPS listener; TLS to backends of their own), so the plaintext rows measure what they measure without --tls.
  const tlsTargets: Target[] = [];
  if (TLS) {
    const endpoint = (http: number, tcp: number, backends: number[]) => [...tsx, resolve(HERE, "endpoint.ts"), String(http), String(tcp), ...backends.map(String)];
    await start("tls backends", process.execPath, [...tsx, resolve(HERE, "backends.ts"), ...TLS_BACKENDS.map(String)], /^ready/, { BENCH_BACKEND_TLS_CERT: cert, BENCH_BACKEND_TLS_KEY: key });
    const rmHttps = await start("raftmesh https", process.execPath, endpoint(TLS_PORTS.rmHttps, TLS_PORTS.rmHttpsTcp, BACKENDS), /^ready/, { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key });
    const rmUpTls = await start("raftmesh http→tls", process.execPath, endpoint(TLS_PORTS.rmUpTls, TLS_PORTS.rmUpTlsTcp, TLS_BACKENDS), /^ready/, { BENCH_UPSTREAM_CA: join(certs, "ca.pem") });
    tlsTargets.push(
      { target: "raftmesh https", url: `https://127.0.0.1:${TLS_PORTS.rmHttps}/svc/hello/`, pid: rmHttps.child.pid },
      { target: "raftmesh http→tls", url: `http://127.0.0.1:${TLS_PORTS.rmUpTls}/svc/hello/`, pid: rmUpTls.child.pid },
      { target: "haproxy https", url: `https://127.0.0.1:${TLS_PORTS.haHttps}/`, pid: ha.child.pid },
    );
  }
  const direct = `http://127.0.0.1:${BACKENDS[0]}/`;
  const rmUrl = `http://127.0.0.1:${PORTS.rmHttp}/svc/hello/`;
  // Paced: the same -c, each connection pausing PACED_DELAY_MS between requests (below saturation).
  const paced = join(dir, "paced.lua");
  writeFileSync(paced, `function delay()\n  return ${PACED_DELAY_MS}\nend\n`);
  const all: Target[] = [
    { target: "direct (one backend)", url: direct, pid: undefined },
    { target: "raftmesh http", url: rmUrl, pid: rm.child.pid },
    { target: "haproxy http", url: `http://127.0.0.1:${PORTS.haHttp}/`, pid: ha.child.pid },
    { target: "nginx http", url: `http://127.0.0.1:${PORTS.nginx}/`, pid: ng.child.pid },
    { target: "raftmesh tcp", url: `http://127.0.0.1:${PORTS.rmTcp}/`, pid: rm.child.pid },
    { target: "haproxy tcp", url: `http://127.0.0.1:${PORTS.haTcp}/`, pid: ha.child.pid },
    // Baseline: the smallest Node TCP proxy (minimal-tcp.ts), what Node's socket API allows at best.
    { target: "node minimal tcp", url: `http://127.0.0.1:${PORTS.nodeTcp}/`, pid: nt.child.pid },
    ...others.flatMap((o) => [
      { target: `${o.name} http`, url: `http://127.0.0.1:${o.http}/svc/hello/`, pid: o.proc.child.pid },
      { target: `${o.name} tcp`, url: `http://127.0.0.1:${o.tcp}/`, pid: o.proc.child.pid },
    ]),
    ...tlsTargets,
  ];
  const allPaced: Target[] = [
    { target: "direct paced", url: direct, pid: undefined, script: paced },
    { target: "raftmesh http paced", url: rmUrl, pid: rm.child.pid, script: paced },
    { target: "haproxy http paced", url: `http://127.0.0.1:${PORTS.haHttp}/`, pid: ha.child.pid, script: paced },
    { target: "raftmesh tcp paced", url: `http://127.0.0.1:${PORTS.rmTcp}/`, pid: rm.child.pid, script: paced },
    ...others.map((o) => ({ target: `${o.name} http paced`, url: `http://127.0.0.1:${o.http}/svc/hello/`, pid: o.proc.child.pid, script: paced })),
  ];
  // Saturated and paced rows are interleaved apart: a paced run beside saturated ones would see their tail.
  const rows: Row[] = [...measureAll(all.filter((t) => wanted(t.target))), ...measureAll(allPaced.filter((t) => wanted(t.target)))];
  const get = (t: string) => rows.find((r) => r.target === t);
  const ratio = (a: string, b: string, base = "direct (one backend)") => {
    const ra = get(a);
    const rb = get(b);
    if (!ra || !rb) return undefined;
    return { rps: ra.rps / rb.rps, reqPerCpuS: ra.reqPerCpuS / rb.reqPerCpuS, p99AddedMs: ra.p99Ms - (get(base)?.p99Ms ?? Number.NaN) };
  };
  const ratios = Object.fromEntries(
    Object.entries({
      http: ratio("raftmesh http", "haproxy http"),
      tcp: ratio("raftmesh tcp", "haproxy tcp"),
      httpVsNginx: ratio("raftmesh http", "nginx http"),
      nodeTcpFloor: ratio("node minimal tcp", "haproxy tcp"),
      // TLS: each over its plaintext twin (the cost of TLS), and raftmesh's HTTPS over HAProxy's.
      httpsVsHttp: ratio("raftmesh https", "raftmesh http"),
      upstreamTlsVsHttp: ratio("raftmesh http→tls", "raftmesh http"),
      haproxyHttpsVsHttp: ratio("haproxy https", "haproxy http"),
      https: ratio("raftmesh https", "haproxy https"),
      httpPaced: ratio("raftmesh http paced", "haproxy http paced", "direct paced"),
      tcpPaced: ratio("raftmesh tcp paced", "haproxy http paced", "direct paced"),
      ...Object.fromEntries(
        others.flatMap((o) => [
          [`${o.name}Http`, ratio(`${o.name} http`, "haproxy http")],
          [`httpVs_${o.name}`, ratio("raftmesh http", `${o.name} http`)],
          [`${o.name}HttpPaced`, ratio(`${o.name} http paced`, "haproxy http paced", "direct paced")],
        ]),
      ),
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, { rps: number; reqPerCpuS: number; p99AddedMs: number }>;
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  process.stdout.write(`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, median of ${REPEATS} interleaved runs; paced rows: ${PACED_DELAY_MS} ms delay per connection between requests\n`);
  process.stdout.write(`${"TARGET".padEnd(22)}${"REQ/S".padStart(10)}${"P50 MS".padStart(9)}${"P99 MS".padStart(9)}${"CPU S".padStart(8)}${"REQ/CPU-S".padStart(11)}${"USR US/REQ".padStart(12)}${"SYS US/REQ".padStart(12)}${"ERRORS".padStart(8)}\n`);
  for (const r of rows) {
    process.stdout.write(`${r.target.padEnd(22)}${fmt(r.rps).padStart(10)}${fmt(r.p50Ms, 2).padStart(9)}${fmt(r.p99Ms, 2).padStart(9)}${fmt(r.cpuS, 2).padStart(8)}${fmt(r.reqPerCpuS).padStart(11)}${fmt(r.userUsPerReq, 1).padStart(12)}${fmt(r.sysUsPerReq, 1).padStart(12)}${String(r.errors).padStart(8)}\n`);
  }
  for (const [k, v] of Object.entries(ratios)) {
    process.stdout.write(`${k}: req/s ratio ${fmt(v.rps, 2)}, req per CPU-second ratio ${fmt(v.reqPerCpuS, 2)}, p99 added over direct ${fmt(v.p99AddedMs, 2)} ms\n`);
  }
  if (!wanted("grpc")) {
    if (values.json) writeFileSync(values.json, `${JSON.stringify({ seconds: SECONDS, repeats: REPEATS, connections: CONNECTIONS, rows, ratios }, null, 2)}\n`);
    return;
  }
  const grpcRows = [
    await measureGrpc("direct grpc (3 backends)", `ipv4:${GRPC_BACKENDS.map((p) => `127.0.0.1:${p}`).join(",")}`, undefined, undefined),
    await measureGrpc("raftmesh h2c", `127.0.0.1:${PORTS.rmHttp}`, "hello-grpc", rm.child.pid),
  ];
  const grpcRatio = { callsPerS: grpcRows[1]!.callsPerS / grpcRows[0]!.callsPerS, p99AddedMs: grpcRows[1]!.p99Ms - grpcRows[0]!.p99Ms };
  process.stdout.write(`\ngrpc-js unary calls, ${GRPC_CONCURRENCY} concurrent, ${SECONDS}s (at most ${GRPC_CALLS_MAX} calls), median of ${REPEATS}\n`);
  process.stdout.write(`${"TARGET".padEnd(26)}${"CALLS/S".padStart(10)}${"P50 MS".padStart(9)}${"P99 MS".padStart(9)}${"CPU S".padStart(8)}${"CALLS/CPU-S".padStart(13)}${"ERRORS".padStart(8)}\n`);
  for (const r of grpcRows) {
    process.stdout.write(`${r.target.padEnd(26)}${fmt(r.callsPerS).padStart(10)}${fmt(r.p50Ms, 2).padStart(9)}${fmt(r.p99Ms, 2).padStart(9)}${fmt(r.cpuS, 2).padStart(8)}${fmt(r.callsPerCpuS).padStart(13)}${String(r.errors).padStart(8)}\n`);
  }
  process.stdout.write(`grpc: calls/s through h2c / direct ${fmt(grpcRatio.callsPerS, 2)}, p99 added ${fmt(grpcRatio.p99AddedMs, 2)} ms\n`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ seconds: SECONDS, repeats: REPEATS, connections: CONNECTIONS, rows, ratios, grpc: { concurrency: GRPC_CONCURRENCY, maxCalls: GRPC_CALLS_MAX, rows: grpcRows, ratio: grpcRatio } }, null, 2)}\n`);
}

function stopAll(): void {
  for (const p of procs) p.child.kill("SIGTERM");
}

main()
  .catch((err) => {
    process.stderr.write(`bench:balancer failed: ${(err as Error).stack}\n`);
    process.exitCode = 1;
  })
  .finally(stopAll);
