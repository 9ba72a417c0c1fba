/**
 * createJepsenCluster runs five real `raftmesh agent` processes, each inside its own network
 * namespace (see netns.ts), configured with the same RAFTMESH_* variables as docker-compose.yml,
 * and faults them: SIGKILL, SIGSTOP/SIGCONT and nftables partitions (nemesis-net.ts). cleanup()
 * also runs on SIGINT, SIGTERM, an uncaught error and process exit, and a leftover of an earlier
 * run is removed before anything is created.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { RaftmeshClient } from "../../../src/client/index.js";
import { type Groups, type Link, NetNemesis } from "./nemesis-net.js";
import { nodeAddress, nodeNames, nsName, setupNetwork, teardownNetworkSync } from "./netns.js";
import type { JepsenCluster, JepsenClusterOptions } from "./types.js";

/** REPO_ROOT is where src/cli/main.ts lives; agents run from the sources through tsx. */
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const MAIN = join(REPO_ROOT, "src/cli/main.ts");

/** Ports are the in-namespace ports DESIGN.md and docker-compose.yml use for every node. */
export const PEER_PORT = 7100;
export const API_PORT = 7200;
export const ADMIN_PORT = 7400;
/** BALANCER_PORT is the balancing endpoint's port (DESIGN.md: 7300 on every node). */
export const BALANCER_PORT = 7300;
/** CLUSTER_ID is the agents' RAFTMESH_CLUSTER_ID. */
export const CLUSTER_ID = "raftmesh-jepsen";
/** EXIT_WAIT_MS bounds the wait for a SIGKILLed agent to be reaped; SIGKILL cannot be caught, so this is generous. */
export const EXIT_WAIT_MS = 10_000;
/** STATUS_DEADLINE_MS bounds leader()'s Status calls, so a partitioned or paused node costs at most this. */
export const STATUS_DEADLINE_MS = 500;

interface Agent {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  paused: boolean;
}

/** membersValue is RAFTMESH_MEMBERS with hostnames, resolved through each namespace's hosts file. */
export function membersValue(nodes: readonly string[]): string {
  return nodes.map((n) => `${n}=${n}:${PEER_PORT}`).join(",");
}

/** NetnsCluster implements JepsenCluster; the extra methods are documented where they are declared. */
export class NetnsCluster implements JepsenCluster {
  readonly nodes: readonly string[];
  private readonly agents = new Map<string, Agent>();
  private readonly clients = new Map<string, RaftmeshClient>();
  private readonly net: NetNemesis;
  private cleaned = false;
  private cleaning: Promise<void> | undefined;

  constructor(private readonly opts: JepsenClusterOptions) {
    this.nodes = nodeNames(opts.size ?? 5);
    this.net = new NetNemesis(this.nodes);
  }

  /** dataDir is RAFTMESH_DATA_DIR for every node (node nK's data is in dataDir/nK). */
  get dataDir(): string {
    return join(this.opts.runDir, "data");
  }

  apiAddress(node: string): string {
    return `${nodeAddress(node)}:${API_PORT}`;
  }

  balancerAddress(node: string): string {
    return `${nodeAddress(node)}:${BALANCER_PORT}`;
  }

  /** address is node's IPv4 address on the bridge. */
  address(node: string): string {
    return nodeAddress(node);
  }

  logPath(node: string): string {
    return join(this.opts.runDir, "logs", `${node}.log`);
  }

  /** env is the environment node's agent starts with. */
  env(node: string): Record<string, string> {
    return {
      RAFTMESH_NODE_ID: node,
      RAFTMESH_CLUSTER_ID: CLUSTER_ID,
      RAFTMESH_DATA_DIR: this.dataDir,
      RAFTMESH_PEER_LISTEN: `0.0.0.0:${PEER_PORT}`,
      RAFTMESH_API_LISTEN: `0.0.0.0:${API_PORT}`,
      RAFTMESH_ADMIN_LISTEN: `0.0.0.0:${ADMIN_PORT}`,
      RAFTMESH_BALANCER_LISTEN: `0.0.0.0:${BALANCER_PORT}`,
      RAFTMESH_MEMBERS: membersValue(this.nodes),
      RAFTMESH_BOOTSTRAP: "true",
      RAFTMESH_LOG_FORMAT: "json",
      ...this.opts.extraEnv,
    };
  }

  /** setup removes leftovers (network and an old data directory), then builds the network and the run directory; nothing runs yet. */
  async setup(): Promise<void> {
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(join(this.opts.runDir, "logs"), { recursive: true });
    mkdirSync(this.dataDir, { recursive: true });
    await setupNetwork(this.nodes);
  }

  async start(node: string): Promise<void> {
    return this.spawnAgent(node, {});
  }

  /** wipe deletes a stopped node's data directory. */
  wipe(node: string): void {
    this.check(node);
    if (this.agents.has(node)) throw new Error(`${node} is running; stop it before wiping`);
    rmSync(join(this.dataDir, node), { recursive: true, force: true });
  }

  /** startEmpty starts a node with bootstrap off: with a wiped directory it waits to be added. */
  async startEmpty(node: string): Promise<void> {
    return this.spawnAgent(node, { RAFTMESH_BOOTSTRAP: "false" });
  }

  /** adminAddress is the node's admin HTTP endpoint, reachable from the root namespace. */
  adminAddress(node: string): string {
    return `${nodeAddress(node)}:${ADMIN_PORT}`;
  }

  /** memberAddresses are the hostname addresses every namespace resolves. */
  memberAddresses(node: string): { peer: string; api: string } {
    this.check(node);
    return { peer: `${node}:${PEER_PORT}`, api: `${node}:${API_PORT}` };
  }

  private async spawnAgent(node: string, extra: Record<string, string>): Promise<void> {
    this.check(node);
    if (this.agents.has(node)) throw new Error(`${node} is already running`);
    const fd = openSync(this.logPath(node), "a");
    // `ip netns exec` execs its command after entering the namespace, so child.pid is the agent.
    const child = spawn("ip", ["netns", "exec", nsName(node), process.execPath, "--import", "tsx", MAIN, "agent"], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env(node), ...extra },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const agent: Agent = { child, exited, paused: false };
    this.agents.set(node, agent);
    void exited.then(() => {
      if (this.agents.get(node) === agent) this.agents.delete(node);
    });
    await new Promise<void>((ok, fail) => {
      child.once("spawn", ok);
      child.once("error", fail);
    });
  }

  /** startAll starts every node. */
  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.start(n)));
  }

  async kill(node: string): Promise<void> {
    const a = this.agents.get(node);
    if (!a) return;
    a.child.kill("SIGKILL");
    await bounded(a.exited, EXIT_WAIT_MS, `${node} to exit after SIGKILL`);
  }

  async pause(node: string): Promise<void> {
    const a = this.agents.get(node);
    if (!a) throw new Error(`${node} is not running`);
    a.child.kill("SIGSTOP");
    a.paused = true;
  }

  async resume(node: string): Promise<void> {
    const a = this.agents.get(node);
    if (!a) throw new Error(`${node} is not running`);
    a.child.kill("SIGCONT");
    a.paused = false;
  }

  isRunning(node: string): boolean {
    return this.agents.has(node);
  }

  /** isPaused says whether node was SIGSTOPped and not yet resumed. */
  isPaused(node: string): boolean {
    return this.agents.get(node)?.paused === true;
  }

  /** pid is node's agent process id, if it runs. */
  pid(node: string): number | undefined {
    return this.agents.get(node)?.child.pid;
  }

  partition(groups: Groups): Promise<void> {
    return this.net.partition(groups);
  }

  /** cuts makes `links` the whole set of directed cuts (bridge, majorities ring, custom topologies). */
  cuts(links: readonly Link[]): Promise<void> {
    return this.net.replace(links);
  }

  /** currentCuts lists the directed links cut right now. */
  currentCuts(): Link[] {
    return this.net.cuts;
  }

  cutOneWay(from: string, to: string): Promise<void> {
    return this.net.cutOneWay(from, to);
  }

  heal(): Promise<void> {
    return this.net.heal();
  }

  /** client is a RaftmeshClient pinned to node's API (created once, closed by cleanup). */
  client(node: string): RaftmeshClient {
    this.check(node);
    let c = this.clients.get(node);
    if (!c) {
      c = new RaftmeshClient([this.apiAddress(node)]);
      this.clients.set(node, c);
    }
    return c;
  }

  /** statuses asks every running, unpaused node for Cluster.Status with a short deadline; failures are omitted. */
  async statuses(deadlineMs = STATUS_DEADLINE_MS) {
    const asked = this.nodes.filter((n) => this.isRunning(n) && !this.isPaused(n));
    const answers = await Promise.all(
      asked.map((n) =>
        this.client(n)
          .status({ deadlineMs })
          .then((s) => ({ node: n, status: s }))
          .catch(() => undefined),
      ),
    );
    return answers.filter((a) => a !== undefined);
  }

  async leader(): Promise<string | undefined> {
    const votes = new Map<string, { count: number; term: number }>();
    for (const { status } of await this.statuses()) {
      if (!status.leader) continue;
      const v = votes.get(status.leader) ?? { count: 0, term: 0 };
      votes.set(status.leader, { count: v.count + 1, term: Math.max(v.term, Number(status.term)) });
    }
    let best: [string, { count: number; term: number }] | undefined;
    for (const e of votes) {
      if (!best || e[1].count > best[1].count || (e[1].count === best[1].count && e[1].term > best[1].term)) best = e;
    }
    return best?.[0];
  }

  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    const running = [...this.agents.entries()];
    for (const [, a] of running) a.child.kill("SIGKILL");
    await Promise.all(running.map(([n, a]) => bounded(a.exited, EXIT_WAIT_MS, `${n} to exit`).catch(() => undefined)));
    this.cleanupSync();
  }

  /**
   * cleanupSync is the exit-handler path: SIGKILL every agent, tear the network down (which also
   * kills anything left inside a namespace), delete the data directory. Logs are kept for the
   * report. Idempotent.
   */
  cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const a of this.agents.values()) a.child.kill("SIGKILL");
    teardownNetworkSync();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private check(node: string): void {
    if (!this.nodes.includes(node)) throw new Error(`unknown node ${node}; nodes are ${this.nodes.join(",")}`);
  }
}

/** bounded waits for p, or rejects after timeoutMs naming what it waited for. */
export async function bounded<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * installExitHandlers makes SIGINT, SIGTERM, an uncaught exception or rejection, and process exit
 * clean the cluster up. Signals and errors run the async cleanup (bounded) and then exit; the
 * exit event can only run synchronous code, so it runs cleanupSync. Installed once per cluster.
 */
function installExitHandlers(cluster: NetnsCluster): void {
  const finish = (code: number, why: string, err?: unknown) => {
    if (err) console.error(`jepsen harness: ${why}:`, err);
    else console.error(`jepsen harness: ${why}, cleaning up`);
    bounded(cluster.cleanup(), EXIT_WAIT_MS + 5_000, "cleanup")
      .catch(() => cluster.cleanupSync())
      .finally(() => process.exit(code));
  };
  process.once("SIGINT", () => finish(130, "SIGINT"));
  process.once("SIGTERM", () => finish(143, "SIGTERM"));
  process.once("uncaughtException", (err) => finish(1, "uncaught exception", err));
  process.once("unhandledRejection", (err) => finish(1, "unhandled rejection", err));
  process.once("exit", () => cluster.cleanupSync());
}

/**
 * createJepsenCluster cleans up leftovers of an earlier run, builds the network, installs the
 * cleanup handlers and starts every agent. It resolves once every process is spawned; waiting
 * for a leader is the caller's job (leader() polled with a bound).
 */
export async function createJepsenCluster(opts: JepsenClusterOptions): Promise<NetnsCluster> {
  const cluster = new NetnsCluster(opts);
  installExitHandlers(cluster);
  try {
    await cluster.setup();
    await cluster.startAll();
  } catch (err) {
    await cluster.cleanup();
    throw err;
  }
  return cluster;
}
