/**
 * A balancer worker thread: opens its listeners, keeps the route table the main thread feeds it,
 * and proxies. Nothing here touches the registry or Raft; all it knows comes over its port.
 */
import { randomBytes } from "node:crypto";
import type { Server as NetServer } from "node:net";
import type { Server as TlsServer } from "node:tls";
import { getHeapStatistics } from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import { createListener, createTlsListener } from "./http-listener.js";
import type { ProxyContext } from "./http-proxy.js";
import { type FromWorker, SIGNAL_MIN_GAP_MS, type ToWorker, type WorkerInit, type WorkerSignal } from "./messages.js";
import { SharedBreakerCounters } from "./policy/index.js";
import { RouteTable } from "./route-table.js";
import { reportHeap, WORKER_HEAP_REPORT_MS } from "./stats.js";
import { TcpListener } from "./tcp-proxy.js";
import { UpstreamPools } from "./upstream-pool.js";

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.breakerCounters ? new SharedBreakerCounters(init.breakerCounters.serviceSlots, init.breakerCounters.workers, init.breakerCounters.buffer) : undefined;
const routes = new RouteTable(
  init.localZone,
  Math.random,
  undefined,
  counters && ((slot) => ({ shared: counters.shared(slot), tally: counters.tally(slot, init.index) })),
  init.stats ? new Float64Array(init.stats) : undefined,
);
if (init.stats) {
  const f = new Float64Array(init.stats);
  reportHeap(f, getHeapStatistics());
  // unref: the report never keeps a worker that is shutting down alive.
  setInterval(() => reportHeap(f, getHeapStatistics()), WORKER_HEAP_REPORT_MS).unref();
}
const pools = new UpstreamPools();
pools.setTls(init.tls);
const ctx: ProxyContext = { routes, pools, requestIdPrefix: `${randomBytes(6).toString("hex")}-${init.index}-`, random: Math.random, signal };
const servers: NetServer[] = [];
/** secure: the HTTPS listeners, given each new certificate. */
const secure: TlsServer[] = [];
const tcp: TcpListener[] = [];

function post(m: FromWorker): void {
  port.postMessage(m);
}

/** SIGNAL_SUBJECTS_MAX bounds the throttle's memory; past it the throttle starts afresh (at worst one extra message per subject). */
const SIGNAL_SUBJECTS_MAX = 4_096;
const lastSignal = new Map<string, number>();

/** signal posts a signal to the node, at most once per SIGNAL_MIN_GAP_MS per subject. */
function signal(s: WorkerSignal): void {
  const k = `${s.kind}\u0000${s.service}\u0000${s.instance ?? ""}`;
  const now = Date.now();
  const prev = lastSignal.get(k);
  if (prev !== undefined && now - prev < SIGNAL_MIN_GAP_MS) return;
  if (lastSignal.size >= SIGNAL_SUBJECTS_MAX) lastSignal.clear();
  lastSignal.set(k, now);
  post({ t: "signal", ...s });
}

/**
 * tablesLoaded settles once the first route table is applied. A listener reports "listening" only
 * after it: the node counts a listening endpoint as ready (/readyz), and a request let in before
 * the table would be refused as an unknown service. The pool posts its table with the launch, so
 * this waits one message at most.
 */
let tablesApplied: () => void = () => undefined;
const tablesLoaded = new Promise<void>((resolve) => {
  tablesApplied = resolve;
});

for (const spec of init.listeners) {
  let server: NetServer;
  if (spec.kind === "http" && spec.tls) {
    if (!init.tls?.listener) {
      post({ t: "listen-failed", name: spec.name, message: "HTTPS asked for without a certificate and key" });
      continue;
    }
    const s = createTlsListener(ctx, init.tls.listener, init.headersTimeoutMs);
    secure.push(s);
    server = s;
  } else if (spec.kind === "http") server = createListener(ctx, init.headersTimeoutMs);
  else {
    const l = new TcpListener(routes, spec.service, signal);
    tcp.push(l);
    server = l.server;
  }
  servers.push(server);
  server.once("error", (err) => post({ t: "listen-failed", name: spec.name, message: err.message }));
  server.listen({ host: spec.host, port: spec.port, backlog: 1024 }, () => {
    const addr = server.address();
    const bound = typeof addr === "object" && addr ? addr.port : spec.port;
    void tablesLoaded.then(() => post({ t: "listening", name: spec.name, port: bound }));
  });
}

port.on("message", (m: ToWorker) => {
  if (m.t === "tables") {
    const changes = routes.apply(m);
    for (const c of changes) if (c.masterLost) for (const l of tcp) if (l.service === c.service) l.cutMaster(c.masterLost);
    for (const l of tcp) l.prune();
    pools.retain((key) => routes.isLive(key));
    tablesApplied();
    return;
  }
  if (m.t === "tls") {
    pools.setTls(m.tls);
    const l = m.tls.listener;
    if (l) for (const s of secure) s.setSecureContext({ cert: l.cert, key: l.key });
    return;
  }
  stop();
});

function stop(): void {
  let left = servers.length;
  const closed = () => {
    if (--left > 0) return;
    pools.close();
    post({ t: "stopped" });
  };
  if (left === 0) return void closed();
  for (const s of servers) {
    s.close(closed);
  }
  for (const l of tcp) l.cutAll();
}
