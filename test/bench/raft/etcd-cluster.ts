/**
 * EtcdCluster runs an etcd cluster on 127.0.0.1 as child processes of this one, for benchmarks:
 * free ports, data in a fresh temporary directory, SIGKILL and restart of single members on their
 * old data, and health and leader checks through Maintenance.Status. It implements Cluster, so
 * runFailover can drive it. Children and the directory are reaped even if the benchmark crashes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdMemberClient, type EtcdStatus } from "./etcd-client.js";
import { ClusterUnhealthyError, EtcdExitedError, NoLeaderError, UnknownMemberError } from "./errors.js";
import type { Cluster, ClusterPutOptions } from "./failover.js";
import { freePorts } from "../../integration/harness/ports.js";
import { trackChild, trackDir, untrackDir } from "./reaper.js";

/** ETCD_HEARTBEAT_INTERVAL_MS_DEFAULT is etcd's own default --heartbeat-interval. */
export const ETCD_HEARTBEAT_INTERVAL_MS_DEFAULT = 100;

/** ETCD_ELECTION_TIMEOUT_MS_DEFAULT is etcd's own default --election-timeout. */
export const ETCD_ELECTION_TIMEOUT_MS_DEFAULT = 1_000;

/** ETCD_START_TIMEOUT_MS_DEFAULT bounds start-up: a fresh etcd cluster on loopback elects a leader within a few election timeouts. */
export const ETCD_START_TIMEOUT_MS_DEFAULT = 20_000;

/** ETCD_CLUSTER_SIZE_MAX is the largest cluster accepted: etcd advises against more than 7 voting members. */
const ETCD_CLUSTER_SIZE_MAX = 7;

/** HEALTH_POLL_MS is the pause between health probes: a tenth of the default election timeout. */
const HEALTH_POLL_MS = 100;

/** HEALTH_PUT_TIMEOUT_MS is the deadline of a health-check write: generous against loopback commit times of a few ms. */
const HEALTH_PUT_TIMEOUT_MS = 1_000;

/** LOG_TAIL_BYTES is how much of a member's log an EtcdExitedError quotes; enough for the fatal line and its context. */
const LOG_TAIL_BYTES = 4_096;

/** EtcdClusterOptions configure EtcdCluster.start. */
export interface EtcdClusterOptions {
  /** size is the number of members, 1 to 7; 3 by default. */
  readonly size?: number;
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  /** etcdBin is the etcd executable; $ETCD_BIN or /usr/bin/etcd by default. */
  readonly etcdBin?: string;
  /** dataRoot is where the temporary data directory goes; os.tmpdir() by default. Put it on the disk you mean to measure. */
  readonly dataRoot?: string;
  readonly startTimeoutMs?: number;
}

interface Member {
  readonly name: string;
  readonly clientAddress: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logPath: string;
  readonly client: EtcdMemberClient;
  /** child is the running process; undefined while the member is killed or after it died. */
  child: ChildProcess | undefined;
  /** etcdId is the member's 64-bit id as etcd reports it, learned from its Status answers. */
  etcdId: string | undefined;
  /** unexpectedExit says how the process ended when the cluster did not kill it. */
  unexpectedExit: string | undefined;
}

/** EtcdCluster is a running etcd cluster; see the module comment. */
export class EtcdCluster implements Cluster {
  private readonly byName = new Map<string, Member>();
  private roundRobin = 0;
  private stopped = false;

  private constructor(
    private readonly root: string,
    members: readonly Member[],
    private readonly flags: readonly string[],
    private readonly etcdBin: string,
  ) {
    for (const m of members) this.byName.set(m.name, m);
  }

  /** start launches the members and resolves once the cluster is healthy; on failure it stops what it started and rejects. */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1 || size > ETCD_CLUSTER_SIZE_MAX) throw new RangeError(`cluster size ${size} is outside [1, ${ETCD_CLUSTER_SIZE_MAX}]`);
    const root = mkdtempSync(join(options.dataRoot ?? tmpdir(), "raftmesh-etcd-"));
    trackDir(root);
    const ports = await freePorts(2 * size);
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      const name = `e${i + 1}`;
      const clientAddress = `127.0.0.1:${ports[2 * i]}`;
      members.push({
        name,
        clientAddress,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: join(root, name),
        logPath: join(root, `${name}.log`),
        client: new EtcdMemberClient(name, clientAddress),
        child: undefined,
        etcdId: undefined,
        unexpectedExit: undefined,
      });
    }
    const flags = [
      "--initial-cluster",
      members.map((m) => `${m.name}=${m.peerUrl}`).join(","),
      "--initial-cluster-token",
      root, // unique per run, so members of an older run can never join this one
      "--heartbeat-interval",
      String(options.heartbeatIntervalMs ?? ETCD_HEARTBEAT_INTERVAL_MS_DEFAULT),
      "--election-timeout",
      String(options.electionTimeoutMs ?? ETCD_ELECTION_TIMEOUT_MS_DEFAULT),
      "--logger",
      "zap",
    ];
    const cluster = new EtcdCluster(root, members, flags, options.etcdBin ?? process.env.ETCD_BIN ?? "/usr/bin/etcd");
    try {
      await Promise.all(members.map((m) => cluster.spawnMember(m, "new")));
      await cluster.waitHealthy(options.startTimeoutMs ?? ETCD_START_TIMEOUT_MS_DEFAULT);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** members lists the member ids ("e1", "e2", …). */
  get members(): readonly string[] {
    return [...this.byName.keys()];
  }

  /** pids are the running members' process ids (for their CPU time in /proc). */
  pids(): number[] {
    return [...this.byName.values()].map((m) => m.child?.pid).filter((p): p is number => p !== undefined);
  }

  /** dataDir is the temporary directory that holds every member's data and log. */
  get dataDir(): string {
    return this.root;
  }

  /** client returns the gRPC client of one member, for calls aimed at it. */
  client(id: string): EtcdMemberClient {
    return this.member(id).client;
  }

  async leader(): Promise<string> {
    this.checkExits();
    const live = [...this.byName.values()].filter((m) => m.child);
    const answers = await Promise.allSettled(live.map((m) => this.statusOf(m)));
    const votes = new Map<string, number>();
    for (const a of answers) if (a.status === "fulfilled" && a.value.leaderId !== "0") votes.set(a.value.leaderId, (votes.get(a.value.leaderId) ?? 0) + 1);
    const majority = Math.floor(this.byName.size / 2) + 1;
    for (const [etcdId, count] of votes) {
      const leader = live.find((m) => m.etcdId === etcdId);
      if (count >= majority && leader) return leader.name;
    }
    throw new NoLeaderError(`${live.length} live members, votes ${JSON.stringify(Object.fromEntries(votes))}`);
  }

  kill(id: string): Promise<void> {
    const member = this.member(id);
    const child = member.child;
    if (!child) return Promise.reject(new UnknownMemberError(id));
    // Forget the child first, so its exit is not taken for a crash.
    member.child = undefined;
    child.kill("SIGKILL");
    return exited(child);
  }

  async restart(id: string): Promise<void> {
    const member = this.member(id);
    if (member.child) throw new UnknownMemberError(id);
    member.unexpectedExit = undefined;
    await this.spawnMember(member, "existing");
  }

  /** put writes through live members in turn, skipping viaNotId, as etcd's Go client balances over its endpoints. */
  async put(key: string, value: Uint8Array, opts: ClusterPutOptions = {}): Promise<void> {
    const entries = [...this.byName.values()].filter((m) => m.child && m.name !== opts.viaNotId);
    const entry = entries[this.roundRobin++ % Math.max(1, entries.length)];
    if (!entry) throw new UnknownMemberError(opts.viaNotId ?? "(none live)");
    await entry.client.put(key, value, opts.timeoutMs);
  }

  /** waitHealthy resolves once every member runs, all report the same leader, and a write through each member succeeds. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const startMs = performance.now();
    let reason = "not checked yet";
    while (performance.now() - startMs < timeoutMs) {
      this.checkExits();
      try {
        reason = await this.healthProblem();
        if (reason === "") return;
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
    }
    throw new ClusterUnhealthyError(timeoutMs, reason);
  }

  /** stop SIGKILLs every member, closes the channels and removes the data directory; the data is thrown away, so nothing needs a clean shutdown. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running = [...this.byName.values()].flatMap((m) => (m.child ? [m.child] : []));
    for (const m of this.byName.values()) m.child = undefined;
    for (const child of running) child.kill("SIGKILL");
    await Promise.all(running.map(exited));
    for (const m of this.byName.values()) m.client.close();
    rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
    untrackDir(this.root);
  }

  /** healthProblem returns "" when healthy, else what is wrong; it throws when a call fails. */
  private async healthProblem(): Promise<string> {
    const members = [...this.byName.values()];
    const down = members.filter((m) => !m.child).map((m) => m.name);
    if (down.length > 0) return `members not running: ${down.join(", ")}`;
    const statuses = await Promise.all(members.map((m) => this.statusOf(m)));
    const leaders = new Set(statuses.map((s) => s.leaderId));
    if (leaders.size !== 1 || leaders.has("0")) return `members disagree on the leader: ${[...leaders].join(", ")}`;
    await Promise.all(members.map((m) => m.client.put(`health/${m.name}`, new Uint8Array(1), HEALTH_PUT_TIMEOUT_MS)));
    return "";
  }

  private async statusOf(member: Member): Promise<EtcdStatus> {
    const status = await member.client.status();
    member.etcdId = status.memberId;
    return status;
  }

  private spawnMember(member: Member, state: "new" | "existing"): Promise<void> {
    // etcd takes its configuration from ETCD_* variables too; a stray one must not change the cluster.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ETCD_")));
    const log = openSync(member.logPath, "a");
    const args = [
      "--name",
      member.name,
      "--data-dir",
      member.dataDir,
      "--listen-client-urls",
      `http://${member.clientAddress}`,
      "--advertise-client-urls",
      `http://${member.clientAddress}`,
      "--listen-peer-urls",
      member.peerUrl,
      "--initial-advertise-peer-urls",
      member.peerUrl,
      // With a data directory present etcd restarts from its WAL and ignores the initial-cluster flags.
      "--initial-cluster-state",
      state,
      ...this.flags,
    ];
    const child = spawn(this.etcdBin, args, { env, stdio: ["ignore", log, log] });
    closeSync(log);
    trackChild(child);
    member.child = child;
    child.once("exit", (code, signal) => {
      if (member.child === child) {
        member.child = undefined;
        member.unexpectedExit = `code ${code}, signal ${signal}`;
      }
    });
    return new Promise((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) => {
        // A child that failed to spawn never emits "exit"; nobody may wait for it.
        if (member.child === child) member.child = undefined;
        reject(err);
      });
    });
  }

  private checkExits(): void {
    for (const m of this.byName.values()) {
      if (m.unexpectedExit) throw new EtcdExitedError(m.name, m.unexpectedExit, logTail(m.logPath));
    }
  }

  private member(id: string): Member {
    const member = this.byName.get(id);
    if (!member) throw new UnknownMemberError(id);
    return member;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function logTail(path: string): string {
  try {
    const text = readFileSync(path, "utf8");
    return text.slice(-LOG_TAIL_BYTES);
  } catch {
    return "(no log)";
  }
}
