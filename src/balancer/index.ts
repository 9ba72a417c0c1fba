/**
 * The balancing endpoint's public face: startBalancer starts the worker threads with their
 * listeners and feeds them from the node's applied registry.
 */
import type { Logger } from "../common/logger.js";
import { type FeedSource, RegistryFeed } from "./feed.js";
import type { ListenerSpec, ToWorker, WorkerSignal } from "./messages.js";
import { StatsSlots } from "./stats.js";
import { type BalancerTlsFiles, followTls, workerTls } from "./tls.js";
import { WorkerPool } from "./workers.js";

export { ListenError, WorkerExitError, BalancerError } from "./errors.js";
export type { ListenerSpec, WorkerSignal } from "./messages.js";
export { StatsSlots } from "./stats.js";
export type { BalancerTlsFiles } from "./tls.js";

/** TcpUpstream is one TCP listener: the service it forwards to and its port. */
export interface TcpUpstream {
  readonly service: string;
  readonly port: number;
}

/** BalancerSettings are the node's listener settings (the agent's configuration has these fields). */
export interface BalancerSettings {
  readonly nodeId: string;
  /** balancerListen is host:port of the HTTP/1.1 (and h2c) listener; TCP upstreams listen on its host. */
  readonly balancerListen: string;
  readonly balancerWorkers: number;
  readonly tcpUpstreams: readonly TcpUpstream[];
  /** zone is the node's locality zone ("" for none). */
  readonly zone: string;
  /** metrics: the workers count requests into shared buffers the node's metrics read (stats.ts). */
  readonly metrics?: boolean;
  /** balancerTls: the HTTP listener serves HTTPS with tls.listener's certificate. */
  readonly balancerTls?: boolean;
  /** tls: the files the endpoint follows (listener certificate, upstream CA, the node's own certificate for mTLS to instances). */
  readonly tls?: BalancerTlsFiles;
}

/** Balancer is a running endpoint. */
export interface Balancer {
  /** ports: bound port by listener name ("http", "tcp:<service>"). */
  readonly ports: ReadonlyMap<string, number>;
  /** stats, when metrics are on: the slot directory and every worker's counters buffer. */
  readonly stats?: { readonly slots: StatsSlots; buffers(): SharedArrayBuffer[] };
  /** notListening says why a listener is not served now (a worker restarting), undefined when all listen. */
  notListening(): string | undefined;
  stop(): Promise<void>;
}

/** listenersOf lists the listeners the options ask for. */
export function listenersOf(opts: Pick<BalancerSettings, "balancerListen" | "tcpUpstreams" | "balancerTls">): ListenerSpec[] {
  const listen = opts.balancerListen;
  const cut = listen.lastIndexOf(":");
  const host = listen.slice(0, cut).replace(/^\[|\]$/g, "");
  const out: ListenerSpec[] = [{ kind: "http", name: "http", host, port: Number(listen.slice(cut + 1)), tls: opts.balancerTls === true }];
  for (const u of opts.tcpUpstreams) out.push({ kind: "tcp", name: `tcp:${u.service}`, host, port: u.port, service: u.service });
  return out;
}

/** startBalancer starts the endpoint fed by the node's registry; it resolves once every listener listens. onSignal hears the workers' signals. */
export async function startBalancer(opts: BalancerSettings, source: FeedSource, logger: Logger, onSignal?: (s: WorkerSignal) => void): Promise<Balancer> {
  let feed: RegistryFeed | undefined;
  const slots = opts.metrics ? new StatsSlots() : undefined;
  const stamp = <M extends ToWorker>(m: M): M => (slots ? (slots.stamp(m) as M) : m);
  const pool = await WorkerPool.start({
    workers: opts.balancerWorkers,
    listeners: listenersOf(opts),
    localZone: opts.zone,
    nodeId: opts.nodeId,
    logger,
    current: () => stamp(feed?.full() ?? { t: "tables", full: true, tables: [], removed: [] }),
    stats: slots !== undefined,
    onSignal,
    tls: opts.tls ? workerTls(opts.tls) : undefined,
  });
  const unfollow = opts.tls ? followTls(opts.tls, (t) => pool.postTls(t)) : undefined;
  feed = new RegistryFeed(source, (m) => pool.post(stamp(m)), logger);
  feed.start();
  logger.info({ ports: Object.fromEntries(pool.ports), workers: opts.balancerWorkers, https: opts.balancerTls === true }, "balancing endpoint listening");
  return {
    ports: pool.ports,
    stats: slots ? { slots, buffers: () => pool.statsBuffers() } : undefined,
    notListening: () => pool.notListening(),
    async stop() {
      unfollow?.();
      feed?.close();
      await pool.stop();
    },
  };
}
