import { API_CONNECTIONS_MAX, CLIENT_WATCH_RATE_DEFAULT, CLIENT_WRITE_RATE_DEFAULT } from "../common/limits.js";
import { ConfigError } from "./errors.js";

/** Member is one cluster member's addresses. */
export interface Member {
  readonly id: string;
  /** peer is host:port of its Raft peer gRPC server. */
  readonly peer: string;
  /** api is host:port of its client API gRPC server (writes are forwarded there). */
  readonly api: string;
}

/** AgentConfig is the whole configuration of one `raftmesh agent`. */
export interface AgentConfig {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly dataDir: string;
  readonly peerListen: string;
  readonly apiListen: string;
  readonly adminListen: string;
  readonly members: readonly Member[];
  /** bootstrap: a node with an empty data directory founds a new cluster of `members` once every member is empty too (else it waits to be added). */
  readonly bootstrap: boolean;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEntries: number;
  /** pendingReadsMax bounds the linearizable reads one node holds at once; past it reads are refused. */
  readonly pendingReadsMax: number;
  /** clientWriteRate and clientWatchRate: writes and new watches per second one client address may send this node (0: no limit; src/api/rate-limit.ts). */
  readonly clientWriteRate: number;
  readonly clientWatchRate: number;
  /** apiConnectionsMax: client API connections this node holds at once (members' addresses get API_MEMBER_CONNECTIONS_RESERVED more; src/api/limits.ts). */
  readonly apiConnectionsMax: number;
  readonly logLevel: string;
  /** logFormat: auto is pretty when stdout is a terminal, JSON otherwise. */
  readonly logFormat: "auto" | "json" | "pretty";
  /** balancerListen is host:port of the balancing endpoint (HTTP/1.1 and h2c); TCP upstreams listen on its host. */
  readonly balancerListen: string;
  /** balancerWorkers is the number of worker threads that run the endpoint's listeners. */
  readonly balancerWorkers: number;
  /** tcpUpstreams: one TCP listener per entry, forwarding to the named service. */
  readonly tcpUpstreams: readonly TcpUpstreamConfig[];
  /** zone is this node's locality zone: the balancer prefers instances of the same zone ("" for none). */
  readonly zone: string;
  /** servicesDir holds this node's service definitions (JSON; README "Local agent"); "" runs no local agent. */
  readonly servicesDir: string;
  /** alertWebhooks: URLs that receive every firing and resolved alert (Alertmanager webhook payload). */
  readonly alertWebhooks: readonly string[];
  /** alertExternalUrl is the payloads' externalURL ("" for this node's admin address). */
  readonly alertExternalUrl: string;
  /** alert rule thresholds (src/events/alerts.ts says what each rule does). */
  readonly alertNoLeaderMs: number;
  readonly alertMemberUnreachableMs: number;
  readonly alertNoMasterMs: number;
  readonly alertCriticalPercent: number;
  readonly alertCriticalMs: number;
  readonly alertFailoverHoldMs: number;
  readonly alertCrashLoopRestarts: number;
  readonly alertCrashLoopWindowMs: number;
  readonly alertRetryBudgetHoldMs: number;
  /** metrics: keep Prometheus metrics and serve them on the admin port's GET /metrics (false: nothing is counted). */
  readonly metrics: boolean;
  /**
   * heapGrowthPercent: the main thread's old generation may grow to (1 + p/100) times what the
   * last full collection left before the next one starts (V8's --heap-growing-percent); 0 leaves
   * V8's own adaptive factor (up to 4×). A memory-for-CPU trade, measured in README "Benchmarks":
   * 100 (the default) cut a loaded leader's RSS at rest by 70-160 MiB for 4-17 % more CPU per
   * registration and none measurable per KV put.
   */
  readonly heapGrowthPercent: number;
  /**
   * idleHeapShrink: while the whole process rests (under a tenth of a core for two 2-s checks), V8
   * may give a grown heap back at once rather than when its own allocation-rate test or its 100 s
   * watchdog lets it (src/agent/idle-heap.ts; README "Benchmarks").
   */
  readonly idleHeapShrink: boolean;
  /**
   * TLS: the cluster CA, this node's certificate (naming it as SAN URI raftmesh://member/<id>)
   * and key, all PEM paths, all three or none ("": plaintext). With them every port speaks TLS and
   * peers authenticate each other by certificate; files are reloaded when they change.
   */
  readonly tlsCa: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** tlsClientAuth: clients of the API and admin ports must present a certificate of the CA too. */
  readonly tlsClientAuth: boolean;
  /** acl: every client API and admin call must carry a token whose rules allow it (README "Access control"). */
  readonly acl: boolean;
  /** aclBootstrapToken: the secret of the first admin token, created once when the cluster has none ("": bootstrap with raftmesh acl bootstrap). */
  readonly aclBootstrapToken: string;
  /** aclAgentToken: the secret the node's own local agent sends to its client API ("": none). */
  readonly aclAgentToken: string;
  /** balancerTls: the balancing endpoint's HTTP listener serves HTTPS (balancerTlsCert/Key, else the node's certificate). */
  readonly balancerTls: boolean;
  /** balancerTlsCert, balancerTlsKey: PEM paths of the endpoint's own certificate (chain) and key ("": the node's tlsCert/tlsKey). */
  readonly balancerTlsCert: string;
  readonly balancerTlsKey: string;
  /** balancerUpstreamCa: PEM CA bundle that instances of services with upstreamTls are checked against ("": the cluster CA, else Node's public roots). */
  readonly balancerUpstreamCa: string;
}

/** TcpUpstreamConfig is one TCP upstream listener: the service it forwards to and its port. */
export interface TcpUpstreamConfig {
  readonly service: string;
  readonly port: number;
}

/** FieldSpec describes one field: its flag, environment variable, file key, parser and default. */
interface FieldSpec<K extends keyof AgentConfig> {
  readonly key: K;
  readonly flag: string;
  readonly env: string;
  readonly parse: (raw: unknown, source: string) => AgentConfig[K];
  readonly fallback?: AgentConfig[K];
  readonly help: string;
}

/** NODE_ID_PATTERN: node ids are short DNS-label-like names, so they work as hostnames and in metrics labels. */
export const NODE_ID_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
const CLUSTER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** TICK_MS_RANGE: below 1 ms timers are meaningless; above 1 s failover would take tens of seconds. */
export const TICK_MS_RANGE = [1, 1000] as const;
/** ELECTION_TICKS_RANGE bounds the election timeout in ticks; it must also exceed the heartbeat. */
export const ELECTION_TICKS_RANGE = [2, 10_000] as const;
/** PENDING_READS_RANGE: at least one read must fit; 1 M pending reads is ~100 MiB of bookkeeping. */
export const PENDING_READS_RANGE = [1, 1_000_000] as const;
/** API_CONNECTIONS_RANGE bounds apiConnectionsMax: at least one client; a million connections is ~20 GB of a node's memory. */
export const API_CONNECTIONS_RANGE = [1, 1_000_000] as const;
/** CLIENT_RATE_RANGE bounds clientWriteRate and clientWatchRate: 0 is no limit; a million a second is beyond any one node. */
export const CLIENT_RATE_RANGE = [0, 1_000_000] as const;
/**
 * PENDING_READS_DEFAULT is the Raft core's PENDING_READS_MAX (config may not import the core; a
 * test keeps the two equal).
 */
export const PENDING_READS_DEFAULT = 100_000;
/** SNAPSHOT_ENTRIES_RANGE: a snapshot at least every 100 entries is wasteful, at most every 10 M bounds replay. */
export const SNAPSHOT_ENTRIES_RANGE = [100, 10_000_000] as const;

function str(field: string, pattern?: RegExp, what?: string) {
  return (raw: unknown, source: string): string => {
    if (typeof raw !== "string" || raw.length === 0) throw new ConfigError(field, source, "must be a non-empty string");
    if (pattern && !pattern.test(raw)) throw new ConfigError(field, source, `"${raw}" is not ${what}`);
    return raw;
  };
}

function int(field: string, [min, max]: readonly [number, number]) {
  return (raw: unknown, source: string): number => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(field, source, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

function path(field: string) {
  return (raw: unknown, source: string): string => {
    if (typeof raw !== "string") throw new ConfigError(field, source, "must be a file path (or empty for none)");
    return raw;
  };
}

function bool(field: string) {
  return (raw: unknown, source: string): boolean => {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(field, source, `must be true or false, got ${JSON.stringify(raw)}`);
  };
}

/** parseHostPort checks "host:port" with a port in 1..65535 (0 allowed for listen addresses in tests). */
export function parseHostPort(field: string, raw: unknown, source: string, allowZero = false): string {
  if (typeof raw !== "string") throw new ConfigError(field, source, "must be host:port");
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535 || (port === 0 && !allowZero)) {
    throw new ConfigError(field, source, `"${raw}" is not host:port with a port from ${allowZero ? 0 : 1} to 65535`);
  }
  return raw;
}

/**
 * parseMembers reads "n1=host:7100,n2=host:7100" or, with explicit API addresses,
 * "n1=host:7100/host:7200". The API address defaults to the peer host with the port plus 100.
 */
export function parseMembers(raw: unknown, source: string): Member[] {
  const field = "members";
  const text = Array.isArray(raw) ? raw.join(",") : raw;
  if (typeof text !== "string" || text.trim() === "") throw new ConfigError(field, source, "must list at least one member as id=host:port");
  const seen = new Set<string>();
  return text.split(",").map((part) => {
    const [id, addrs] = part.trim().split("=");
    if (!id || !addrs || !NODE_ID_PATTERN.test(id)) {
      throw new ConfigError(field, source, `"${part}" is not id=host:port (ids are lower-case letters, digits and -)`);
    }
    if (seen.has(id)) throw new ConfigError(field, source, `member ${id} is listed twice`);
    seen.add(id);
    const [peerRaw, apiRaw] = addrs.split("/");
    const peer = parseHostPort(`${field}.${id}`, peerRaw, source);
    const [host, port] = [peer.slice(0, peer.lastIndexOf(":")), Number(peer.slice(peer.lastIndexOf(":") + 1))];
    const api = apiRaw ? parseHostPort(`${field}.${id}.api`, apiRaw, source) : `${host}:${port + 100}`;
    return { id, peer, api };
  });
}

/**
 * HEAP_GROWTH_PERCENT_RANGE: 0 (V8's own factor) up to 300 (4×, V8's own largest). Below 10 the
 * collector would run a full collection for every few MB allocated.
 */
export const HEAP_GROWTH_PERCENT_RANGE = [0, 300] as const;

/** BALANCER_WORKERS_RANGE: at least one thread; more than 64 is beyond any machine this runs on. */
export const BALANCER_WORKERS_RANGE = [1, 64] as const;
const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ZONE_PATTERN = /^[A-Za-z0-9._-]{0,63}$/;

/** parseTcpUpstreams reads "db=7500,cache=7501": a service name and the port of its TCP listener ("" for none). */
export function parseTcpUpstreams(raw: unknown, source: string): TcpUpstreamConfig[] {
  const field = "tcpUpstreams";
  const text = Array.isArray(raw) ? raw.join(",") : raw;
  if (typeof text !== "string") throw new ConfigError(field, source, "must be a list of service=port");
  if (text.trim() === "") return [];
  const ports = new Set<number>();
  return text.split(",").map((part) => {
    const [service, portText] = part.trim().split("=");
    const port = Number(portText);
    if (!service || !SERVICE_NAME_PATTERN.test(service) || !/^\d{1,5}$/.test(portText ?? "") || port < 1 || port > 65535) {
      throw new ConfigError(field, source, `"${part}" is not service=port with a port from 1 to 65535`);
    }
    if (ports.has(port)) throw new ConfigError(field, source, `port ${port} is listed twice`);
    ports.add(port);
    return { service, port };
  });
}

/** ALERT_MS_RANGE bounds every alert duration: 0 (at once) to a day; longer is no alert at all. */
export const ALERT_MS_RANGE = [0, 86_400_000] as const;
/** ALERT_WEBHOOKS_MAX: each URL gets its own queue and deliveries; a handful is what any setup uses. */
export const ALERT_WEBHOOKS_MAX = 8;

/** parseWebhooks reads "http://a/hook,https://b/hook": http or https URLs. */
export function parseWebhooks(raw: unknown, source: string): string[] {
  const field = "alertWebhooks";
  const text = Array.isArray(raw) ? raw.join(",") : raw;
  if (typeof text !== "string") throw new ConfigError(field, source, "must be a list of http(s) URLs");
  if (text.trim() === "") return [];
  const urls = text.split(",").map((u) => u.trim());
  if (urls.length > ALERT_WEBHOOKS_MAX) throw new ConfigError(field, source, `at most ${ALERT_WEBHOOKS_MAX} URLs, got ${urls.length}`);
  for (const u of urls) {
    let ok = false;
    try {
      ok = ["http:", "https:"].includes(new URL(u).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new ConfigError(field, source, `"${u}" is not an http(s) URL`);
  }
  return urls;
}

/** ACL_SECRET_PATTERN: 64 hex digits, the form of every token secret (src/registry/acl.ts SECRET_PATTERN; config may not import the registry). */
export const ACL_SECRET_PATTERN = /^[0-9a-f]{64}$/;

/** secret reads a token secret: "" or 64 hex digits. The error never repeats the value: it is a credential. */
function secret(field: string) {
  return (raw: unknown, source: string): string => {
    if (raw === "") return "";
    if (typeof raw !== "string" || !ACL_SECRET_PATTERN.test(raw)) {
      throw new ConfigError(field, source, "must be 64 lower-case hex digits (256 random bits, e.g. from openssl rand -hex 32); the value is not shown");
    }
    return raw;
  };
}

/** FIELDS is the one schema that file, environment and flags all go through. */
export const FIELDS: FieldSpec<keyof AgentConfig>[] = [
  { key: "nodeId", flag: "node-id", env: "RAFTMESH_NODE_ID", parse: str("nodeId", NODE_ID_PATTERN, "a node id (lower-case letters, digits, -)"), help: "this node's id, e.g. n1" },
  { key: "clusterId", flag: "cluster-id", env: "RAFTMESH_CLUSTER_ID", parse: str("clusterId", CLUSTER_ID_PATTERN, "a cluster id"), fallback: "raftmesh", help: "cluster id; a node refuses peers and data of another cluster" },
  { key: "dataDir", flag: "data-dir", env: "RAFTMESH_DATA_DIR", parse: str("dataDir"), fallback: "./data", help: "data directory; this node's data lives in <dir>/<node id>/" },
  { key: "peerListen", flag: "peer-listen", env: "RAFTMESH_PEER_LISTEN", parse: (r, s) => parseHostPort("peerListen", r, s, true), fallback: "0.0.0.0:7100", help: "Raft peer gRPC listen address" },
  { key: "apiListen", flag: "api-listen", env: "RAFTMESH_API_LISTEN", parse: (r, s) => parseHostPort("apiListen", r, s, true), fallback: "0.0.0.0:7200", help: "client API gRPC listen address" },
  { key: "adminListen", flag: "admin-listen", env: "RAFTMESH_ADMIN_LISTEN", parse: (r, s) => parseHostPort("adminListen", r, s, true), fallback: "0.0.0.0:7400", help: "admin HTTP listen address (metrics, health, status)" },
  { key: "members", flag: "members", env: "RAFTMESH_MEMBERS", parse: parseMembers, help: "initial members: n1=host:7100,n2=host:7100[/apihost:7200]" },
  { key: "bootstrap", flag: "bootstrap", env: "RAFTMESH_BOOTSTRAP", parse: bool("bootstrap"), fallback: true, help: "with an empty data directory, found a new cluster of the members once every member answers that it is empty too, and refuse to start if one holds the cluster (false: wait to be added)" },
  { key: "tickMs", flag: "tick-ms", env: "RAFTMESH_TICK_MS", parse: int("tickMs", TICK_MS_RANGE), fallback: 10, help: "length of one Raft tick in ms" },
  { key: "electionTicks", flag: "election-ticks", env: "RAFTMESH_ELECTION_TICKS", parse: int("electionTicks", ELECTION_TICKS_RANGE), fallback: 30, help: "minimum election timeout in ticks (randomized up to twice that)" },
  { key: "heartbeatTicks", flag: "heartbeat-ticks", env: "RAFTMESH_HEARTBEAT_TICKS", parse: int("heartbeatTicks", [1, 1000]), fallback: 5, help: "leader heartbeat interval in ticks" },
  { key: "snapshotEntries", flag: "snapshot-entries", env: "RAFTMESH_SNAPSHOT_ENTRIES", parse: int("snapshotEntries", SNAPSHOT_ENTRIES_RANGE), fallback: 10_000, help: "take a snapshot every this many applied entries" },
  { key: "pendingReadsMax", flag: "pending-reads-max", env: "RAFTMESH_PENDING_READS_MAX", parse: int("pendingReadsMax", PENDING_READS_RANGE), fallback: PENDING_READS_DEFAULT, help: "linearizable reads one node holds at once; more are refused with RESOURCE_EXHAUSTED" },
  { key: "clientWriteRate", flag: "client-write-rate", env: "RAFTMESH_CLIENT_WRITE_RATE", parse: int("clientWriteRate", CLIENT_RATE_RANGE), fallback: CLIENT_WRITE_RATE_DEFAULT, help: "writes per second one client address may send this node, bursts of 5 s of it (0: no limit); more get RESOURCE_EXHAUSTED" },
  { key: "clientWatchRate", flag: "client-watch-rate", env: "RAFTMESH_CLIENT_WATCH_RATE", parse: int("clientWatchRate", CLIENT_RATE_RANGE), fallback: CLIENT_WATCH_RATE_DEFAULT, help: "new watches per second one client address may open on this node, bursts of 5 s of it (0: no limit)" },
  { key: "apiConnectionsMax", flag: "api-connections-max", env: "RAFTMESH_API_CONNECTIONS_MAX", parse: int("apiConnectionsMax", API_CONNECTIONS_RANGE), fallback: API_CONNECTIONS_MAX, help: "client API connections this node holds at once; past it a new one is closed (members' addresses get 64 more)" },
  { key: "logLevel", flag: "log-level", env: "RAFTMESH_LOG_LEVEL", parse: (r, s) => { const v = str("logLevel")(r, s); if (!LOG_LEVELS.includes(v)) throw new ConfigError("logLevel", s, `must be one of ${LOG_LEVELS.join(", ")}`); return v; }, fallback: "info", help: "log level" },
  { key: "logFormat", flag: "log-format", env: "RAFTMESH_LOG_FORMAT", parse: (r, s) => { if (r !== "auto" && r !== "json" && r !== "pretty") throw new ConfigError("logFormat", s, "must be auto, json or pretty"); return r; }, fallback: "auto", help: "json, pretty, or auto (pretty on a terminal, else json)" },
  { key: "balancerListen", flag: "balancer-listen", env: "RAFTMESH_BALANCER_LISTEN", parse: (r, s) => parseHostPort("balancerListen", r, s, true), fallback: "0.0.0.0:7300", help: "balancing endpoint listen address (HTTP/1.1 and h2c)" },
  { key: "balancerWorkers", flag: "balancer-workers", env: "RAFTMESH_BALANCER_WORKERS", parse: int("balancerWorkers", BALANCER_WORKERS_RANGE), fallback: 1, help: "worker threads of the balancing endpoint (listeners are dealt over them)" },
  { key: "tcpUpstreams", flag: "tcp-upstreams", env: "RAFTMESH_TCP_UPSTREAMS", parse: parseTcpUpstreams, fallback: [], help: "TCP upstream listeners: service=port,... (on the balancer's host; DESIGN: from 7500)" },
  { key: "zone", flag: "zone", env: "RAFTMESH_ZONE", parse: (r, s) => { if (typeof r !== "string" || !ZONE_PATTERN.test(r)) throw new ConfigError("zone", s, "must be up to 63 letters, digits, '.', '_' or '-'"); return r; }, fallback: "", help: "this node's locality zone; the balancer prefers instances in it" },
  { key: "servicesDir", flag: "services-dir", env: "RAFTMESH_SERVICES_DIR", parse: (r, s) => { if (typeof r !== "string") throw new ConfigError("servicesDir", s, "must be a directory path (or empty for none)"); return r; }, fallback: "", help: "directory of service definitions the node registers, checks and heartbeats (reloaded on SIGHUP and raftmesh reload)" },
  { key: "alertWebhooks", flag: "alert-webhooks", env: "RAFTMESH_ALERT_WEBHOOKS", parse: parseWebhooks, fallback: [], help: "URLs that get each firing and resolved alert as an Alertmanager webhook POST: url,..." },
  { key: "alertExternalUrl", flag: "alert-external-url", env: "RAFTMESH_ALERT_EXTERNAL_URL", parse: (r, s) => { if (typeof r !== "string") throw new ConfigError("alertExternalUrl", s, "must be a URL"); return r; }, fallback: "", help: "externalURL of alert payloads (default: this node's admin address)" },
  { key: "alertNoLeaderMs", flag: "alert-no-leader-ms", env: "RAFTMESH_ALERT_NO_LEADER_MS", parse: int("alertNoLeaderMs", ALERT_MS_RANGE), fallback: 10_000, help: "NoLeader fires after a node knew no leader this long" },
  { key: "alertMemberUnreachableMs", flag: "alert-member-unreachable-ms", env: "RAFTMESH_ALERT_MEMBER_UNREACHABLE_MS", parse: int("alertMemberUnreachableMs", ALERT_MS_RANGE), fallback: 15_000, help: "MemberUnreachable fires after the leader could not reach a member this long" },
  { key: "alertNoMasterMs", flag: "alert-no-master-ms", env: "RAFTMESH_ALERT_NO_MASTER_MS", parse: int("alertNoMasterMs", ALERT_MS_RANGE), fallback: 10_000, help: "ServiceWithoutMaster fires after a master-slave service with instances had no master this long" },
  { key: "alertCriticalPercent", flag: "alert-critical-percent", env: "RAFTMESH_ALERT_CRITICAL_PERCENT", parse: int("alertCriticalPercent", [0, 100]), fallback: 50, help: "CriticalInstances fires when more than this share (%) of a service's instances is critical..." },
  { key: "alertCriticalMs", flag: "alert-critical-ms", env: "RAFTMESH_ALERT_CRITICAL_MS", parse: int("alertCriticalMs", ALERT_MS_RANGE), fallback: 30_000, help: "...for this long" },
  { key: "alertFailoverHoldMs", flag: "alert-failover-hold-ms", env: "RAFTMESH_ALERT_FAILOVER_HOLD_MS", parse: int("alertFailoverHoldMs", ALERT_MS_RANGE), fallback: 300_000, help: "FailoverHappened fires at an unplanned master change and resolves this long after the last" },
  { key: "alertCrashLoopRestarts", flag: "alert-crash-loop-restarts", env: "RAFTMESH_ALERT_CRASH_LOOP_RESTARTS", parse: int("alertCrashLoopRestarts", [1, 1_000]), fallback: 3, help: "InstanceCrashLooping fires for an instance re-registered this often..." },
  { key: "alertCrashLoopWindowMs", flag: "alert-crash-loop-window-ms", env: "RAFTMESH_ALERT_CRASH_LOOP_WINDOW_MS", parse: int("alertCrashLoopWindowMs", ALERT_MS_RANGE), fallback: 300_000, help: "...within this window" },
  { key: "alertRetryBudgetHoldMs", flag: "alert-retry-budget-hold-ms", env: "RAFTMESH_ALERT_RETRY_BUDGET_HOLD_MS", parse: int("alertRetryBudgetHoldMs", ALERT_MS_RANGE), fallback: 60_000, help: "RetryBudgetExhausted fires when this node's balancer refused a retry and resolves this long after the last" },
  { key: "tlsCa", flag: "tls-ca", env: "RAFTMESH_TLS_CA", parse: path("tlsCa"), fallback: "", help: "PEM file of the cluster CA; with --tls-cert and --tls-key every port speaks TLS and peers check each other's certificate (\"\": plaintext)" },
  { key: "tlsCert", flag: "tls-cert", env: "RAFTMESH_TLS_CERT", parse: path("tlsCert"), fallback: "", help: "PEM file of this node's certificate (SAN URI raftmesh://member/<node id>; reloaded on change)" },
  { key: "tlsKey", flag: "tls-key", env: "RAFTMESH_TLS_KEY", parse: path("tlsKey"), fallback: "", help: "PEM file of this node's private key (reloaded on change)" },
  { key: "tlsClientAuth", flag: "tls-client-auth", env: "RAFTMESH_TLS_CLIENT_AUTH", parse: bool("tlsClientAuth"), fallback: false, help: "with TLS: API and admin clients must present a certificate of the CA too (peers always must)" },
  { key: "acl", flag: "acl", env: "RAFTMESH_ACL", parse: bool("acl"), fallback: false, help: "access control: every client API and admin call needs a token (README \"Access control\")" },
  { key: "aclBootstrapToken", flag: "acl-bootstrap-token", env: "RAFTMESH_ACL_BOOTSTRAP_TOKEN", parse: secret("aclBootstrapToken"), fallback: "", help: "secret (64 hex digits) of the first admin token, created when the cluster has none; prefer the variable or file to the flag, which ps shows" },
  { key: "aclAgentToken", flag: "acl-agent-token", env: "RAFTMESH_ACL_AGENT_TOKEN", parse: secret("aclAgentToken"), fallback: "", help: "secret of a token (write on the node's services) its local agent uses to register and heartbeat" },
  { key: "balancerTls", flag: "balancer-tls", env: "RAFTMESH_BALANCER_TLS", parse: bool("balancerTls"), fallback: false, help: "the balancing endpoint serves HTTPS (ALPN h2 and http/1.1) with --balancer-tls-cert/--balancer-tls-key, else the node's certificate (reloaded on change)" },
  { key: "balancerTlsCert", flag: "balancer-tls-cert", env: "RAFTMESH_BALANCER_TLS_CERT", parse: path("balancerTlsCert"), fallback: "", help: "PEM certificate (chain) of the balancing endpoint's HTTPS listener (\"\": the node's --tls-cert)" },
  { key: "balancerTlsKey", flag: "balancer-tls-key", env: "RAFTMESH_BALANCER_TLS_KEY", parse: path("balancerTlsKey"), fallback: "", help: "PEM private key of the balancing endpoint's HTTPS listener (\"\": the node's --tls-key)" },
  { key: "balancerUpstreamCa", flag: "balancer-upstream-ca", env: "RAFTMESH_BALANCER_UPSTREAM_CA", parse: path("balancerUpstreamCa"), fallback: "", help: "PEM CA bundle that instances of services with upstreamTls are checked against (\"\": the cluster CA, else Node's public roots)" },
  { key: "metrics", flag: "metrics", env: "RAFTMESH_METRICS", parse: bool("metrics"), fallback: true, help: "keep Prometheus metrics and serve them on the admin port's GET /metrics (false: nothing is counted)" },
  { key: "heapGrowthPercent", flag: "heap-growth-percent", env: "RAFTMESH_HEAP_GROWTH_PERCENT", parse: (r, s) => { const n = int("heapGrowthPercent", HEAP_GROWTH_PERCENT_RANGE)(r, s); if (n > 0 && n < 10) throw new ConfigError("heapGrowthPercent", s, `must be 0 (V8's own factor) or from 10 to 300, got ${JSON.stringify(r)}`); return n; }, fallback: 100, help: "main-thread heap growth between full collections, in percent (0: V8's own factor, up to 300); lower uses less memory for more collector CPU" },
  { key: "idleHeapShrink", flag: "idle-heap-shrink", env: "RAFTMESH_IDLE_HEAP_SHRINK", parse: bool("idleHeapShrink"), fallback: true, help: "at rest (the process under a tenth of a core for 4 s), let V8 give a grown heap back at once (false: V8's own timing, up to 100 s)" },
];
