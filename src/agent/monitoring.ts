/**
 * The node's monitoring: its event journal fed by the node, the registry and the balancer; the
 * alert rules on a timer with webhook delivery; and what the status page shows (the overview and
 * the live event stream as server-sent events).
 */
import { type ChannelCredentials, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { childLogger, type Logger } from "../common/logger.js";
import type { NodeStatusMsg } from "../common/messages.js";
import { clientApi } from "../common/proto.js";
import type { AgentConfig } from "../config/index.js";
import { Alerting } from "../events/alerting.js";
import { type Alert, AlertEngine } from "../events/alerts.js";
import { EventJournal, followEvents } from "../events/journal.js";
import { REACHABILITY_CHECK_MS } from "../events/limits.js";
import { BalancerSignals, ReachabilityWatch, recordNodeEvents, recordRegistryEvents } from "../events/sources.js";
import type { BalancerSignal, MeshEvent } from "../events/types.js";
import { WebhookSender } from "../events/webhook.js";
import type { RaftNode } from "../node/raft-node.js";
import { nodeId, Role } from "../raft/index.js";
import type { RegistryFeed } from "../registry/events.js";
import type { RegistryStateMachine } from "../registry/state-machine.js";

/** PEER_STATUS_DEADLINE_MS bounds the status page's question to each other member; a member that does not answer within it shows as unreachable from here. */
const PEER_STATUS_DEADLINE_MS = 500;
/** PEER_STATUS_FRESH_MS: members' answers are reused this long, so a page polling every second from several browsers asks each member at most once a second. */
const PEER_STATUS_FRESH_MS = 800;
/** OVERVIEW_EVENTS_MAX is how many recent events the overview carries (the stream brings the rest live). */
export const OVERVIEW_EVENTS_MAX = 50;
/** OVERVIEW_INSTANCES_MAX bounds the instances listed per service on the page (counts are always whole). */
export const OVERVIEW_INSTANCES_MAX = 100;
/** SSE_KEEPALIVE_MS: an idle event stream sends a comment this often, so proxies keep it open and a dead browser is noticed. */
const SSE_KEEPALIVE_MS = 15_000;

/** MonitoringDeps are what the monitoring follows. */
export interface MonitoringDeps {
  readonly config: AgentConfig;
  readonly node: RaftNode;
  readonly feed: RegistryFeed;
  readonly registry: RegistryStateMachine;
  readonly status: () => NodeStatusMsg;
  readonly addressOf: (id: string) => { api: string } | undefined;
  /** replayedThrough is the commit index found on disk: entries up to it are applied again at start-up, and alerted on before. */
  readonly replayedThrough: number;
  readonly logger: Logger;
  /** apiCredentials dial the other members' client APIs for their status (TLS when on). */
  readonly apiCredentials?: ChannelCredentials;
  /** apiToken is sent with those calls when access control is on ("" for none). */
  readonly apiToken?: string;
}

/** BalancerFigures are the balancing endpoint's figures the page shows. */
export interface BalancerFigures {
  readonly listen: string;
  readonly workers: number;
  readonly ports: Record<string, number>;
  readonly tcpUpstreams: readonly { service: string; port: number }[];
}

interface PeerView {
  readonly at: number;
  readonly status?: NodeStatusMsg;
  readonly error?: string;
}

/** Monitoring: see the module comment. Build it before the node starts, so replayed entries are reported too. */
export class Monitoring {
  readonly journal: EventJournal;
  readonly alerting: Alerting;
  readonly signals: BalancerSignals;
  private readonly reach: ReachabilityWatch;
  private readonly sender: WebhookSender;
  private readonly offs: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly peers = new Map<string, PeerView>();
  private readonly stubs = new Map<string, InstanceType<ReturnType<typeof clientApi>["Cluster"]>>();
  balancer: BalancerFigures | undefined;

  constructor(private readonly deps: MonitoringDeps) {
    const { config, node, feed, logger } = deps;
    this.journal = new EventJournal({ node: config.nodeId });
    this.reach = new ReachabilityWatch(this.journal);
    this.signals = new BalancerSignals(this.journal);
    this.sender = new WebhookSender({ urls: config.alertWebhooks, logger: childLogger(logger, { component: "webhook" }) });
    const engine = new AlertEngine(
      {
        noLeaderMs: config.alertNoLeaderMs,
        memberUnreachableMs: config.alertMemberUnreachableMs,
        noMasterMs: config.alertNoMasterMs,
        criticalPercent: config.alertCriticalPercent,
        criticalMs: config.alertCriticalMs,
        failoverHoldMs: config.alertFailoverHoldMs,
        crashLoopRestarts: config.alertCrashLoopRestarts,
        crashLoopWindowMs: config.alertCrashLoopWindowMs,
        retryBudgetHoldMs: config.alertRetryBudgetHoldMs,
      },
      { cluster: config.clusterId, node: config.nodeId },
      deps.replayedThrough,
    );
    this.alerting = new Alerting({
      engine,
      sender: this.sender,
      externalURL: config.alertExternalUrl || `http://${config.adminListen}/`,
      leads: () => node.isLeader(),
      logger: childLogger(logger, { component: "alerts" }),
    });
    this.offs.push(recordNodeEvents(this.journal, node.events));
    this.offs.push(recordRegistryEvents(this.journal, feed, node.events));
    this.offs.push(this.journal.follow((e) => engine.observe(e)));
    this.offs.push(node.events.on("role", (e) => this.alerting.leadershipChanged(e.role === Role.Leader)));
  }

  /** start runs the reachability check and the alert rules every REACHABILITY_CHECK_MS. */
  start(): void {
    this.timer = setInterval(() => this.tick(), REACHABILITY_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const off of this.offs) off();
    this.sender.close();
    for (const s of this.stubs.values()) s.close();
  }

  /** signal records a balancer worker's signal. */
  signal(s: BalancerSignal): void {
    this.signals.record(s);
  }

  /** webhookStats are the webhook counters (sent, retries, failed, dropped) and what waits. */
  webhookStats() {
    return { ...this.sender.stats, pending: this.sender.pending() };
  }

  private members(): string[] {
    const st = this.deps.node.status();
    return [...st.voters, ...st.learners].filter((m) => m !== st.id);
  }

  /**
   * unreachable is the members this node cannot reach, as only a leader can tell (it hears every
   * member within one to two election timeouts, see RawNode.progress); a follower hears the
   * leader only and judges no one.
   */
  private unreachable(): Set<string> {
    const progress = this.deps.node.progress();
    const out = new Set<string>();
    if (progress.size === 0) return out;
    for (const m of this.members()) if (progress.get(nodeId(m))?.recentActive !== true) out.add(m);
    return out;
  }

  private tick(): void {
    const unreachable = this.unreachable();
    this.reach.check(this.members(), unreachable);
    this.alerting.tick({ leader: this.deps.node.status().lead, unreachable, services: this.deps.registry.serviceHealth() }, Date.now());
  }

  /** overview is what the status page shows: this node, every member, every service, the endpoint, recent events, firing alerts. */
  async overview(): Promise<Record<string, unknown>> {
    const self = this.deps.status();
    const progress = this.deps.node.progress();
    const views = await Promise.all(this.members().map(async (m) => [m, await this.peerStatus(m)] as const));
    const members = [
      { ...memberRow(self), reachable: true, self: true, match: progress.get(nodeId(self.id))?.match ?? null },
      ...views.map(([id, v]) => ({
        ...(v.status ? memberRow(v.status) : { id, role: self.voters.includes(id) ? "voter" : "learner", term: null, commit: null, applied: null, lastIndex: null, leader: null }),
        reachable: v.status !== undefined,
        error: v.error,
        self: false,
        match: progress.get(nodeId(id))?.match ?? null,
        recentActive: progress.size > 0 ? progress.get(nodeId(id))?.recentActive === true : null,
      })),
    ];
    const services = this.deps.registry.listServices().map((s) => ({
      name: s.service.name,
      mode: s.service.config.mode,
      policy: s.service.config.policy,
      master: s.master.master,
      epoch: s.master.epoch,
      counts: s.counts,
      instances: this.deps.registry
        .instances(s.service.name)
        .slice(0, OVERVIEW_INSTANCES_MAX)
        .map((i) => ({ id: i.id, address: `${i.address}:${i.port}`, health: i.health, note: i.note, weight: i.weight, zone: i.zone, role: this.deps.registry.roleOf(s.service.name, i.id) })),
    }));
    return {
      node: self,
      members,
      services,
      balancer: this.balancer ? { ...this.balancer, signals: this.signals.counts() } : null,
      events: this.journal.recent(OVERVIEW_EVENTS_MAX),
      alerts: this.alerting.active().map(alertRow),
      webhooks: this.webhookStats(),
    };
  }

  private async peerStatus(id: string): Promise<PeerView> {
    const cached = this.peers.get(id);
    if (cached && Date.now() - cached.at < PEER_STATUS_FRESH_MS) return cached;
    const api = this.deps.addressOf(id)?.api;
    let view: PeerView;
    if (!api) view = { at: Date.now(), error: "no address recorded" };
    else {
      let stub = this.stubs.get(api);
      if (!stub) {
        stub = new (clientApi().Cluster)(api, this.deps.apiCredentials ?? credentials.createInsecure());
        this.stubs.set(api, stub);
      }
      const s = stub;
      view = await new Promise<PeerView>((resolve) => {
        const fn = (s as unknown as { Status: (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res: NodeStatusMsg) => void) => void }).Status;
        const md = new Metadata();
        // With access control on, peers' Status needs a token (any valid one: acl-policy.ts).
        if (this.deps.apiToken) md.set("authorization", `Bearer ${this.deps.apiToken}`);
        fn.call(s, {}, md, { deadline: new Date(Date.now() + PEER_STATUS_DEADLINE_MS) }, (err, res) =>
          resolve(err ? { at: Date.now(), error: err.details || err.message } : { at: Date.now(), status: res }),
        );
      });
    }
    this.peers.set(id, view);
    return view;
  }

  /**
   * streamEvents answers GET /events/stream with server-sent events: the ring's events after
   * Last-Event-ID (a reconnecting browser resumes where it was), then new ones live. A browser that
   * does not read is cut at EVENT_FOLLOWER_QUEUE_MAX and reconnects on its own.
   */
  streamEvents(req: IncomingMessage, res: ServerResponse): void {
    const last = Number(req.headers["last-event-id"] ?? new URL(req.url ?? "/", "http://x").searchParams.get("from") ?? 0);
    const fromSeq = Number.isSafeInteger(last) && last >= 0 && last <= this.journal.lastSeq ? last : 0;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.write(": raftmesh events\n\n");
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
    keepalive.unref();
    let stop = () => {};
    const close = () => {
      clearInterval(keepalive);
      stop();
    };
    try {
      stop = followEvents(
        this.journal,
        // A resume point the ring dropped starts from what it holds: the page shows recent events, not all.
        { fromSeq: fromSeq < this.journal.oldestSeq - 1 ? 0 : fromSeq, follow: true },
        {
          write: (e: MeshEvent) => res.write(`id: ${e.seq}\nevent: mesh\ndata: ${JSON.stringify(e)}\n\n`),
          onDrain: (fn) => res.once("drain", fn),
          end: () => {
            clearInterval(keepalive);
            res.end();
          },
        },
      );
    } catch {
      res.end();
      close();
      return;
    }
    req.on("close", close);
  }
}

function memberRow(s: NodeStatusMsg) {
  return { id: s.id, role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: s.applied, lastIndex: s.lastIndex };
}

function alertRow(a: Alert) {
  return { name: a.name, scope: a.scope, labels: a.labels, summary: a.annotations.summary, startsAt: a.startsAt, fingerprint: a.fingerprint };
}
