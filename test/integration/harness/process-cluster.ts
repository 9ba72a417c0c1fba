/**
 * ProcessCluster runs real `raftmesh agent` processes on 127.0.0.1 with real data directories,
 * configured by the same RAFTMESH_* variables docker-compose.yml sets, and can SIGKILL, stop,
 * restart and wipe them. Every process and directory it made is removed by cleanup().
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ClientTlsOptions, RaftmeshClient } from "../../../src/client/index.js";

/** REPO_ROOT is where src/cli/main.ts lives; agents run from the sources through tsx. */
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const MAIN = join(REPO_ROOT, "src/cli/main.ts");
/** COMPILED_MAIN is the built CLI (npm run build), what a deployment runs. */
export const COMPILED_MAIN = join(REPO_ROOT, "dist/cli/main.js");

/** EXIT_WAIT_MS bounds how long we wait for a signalled process to exit. */
const EXIT_WAIT_MS = 15_000;
/** How long an exited node's pipes may take to deliver its last output to its log file. */
const OUTPUT_DRAIN_MS = 2_000;
/** How long waitForLog waits for a line to reach a node's log file. */
const LOG_WAIT_MS = 5_000;
/** POLL_MS is how often the wait helpers look again. */
const POLL_MS = 50;
/** LOG_TAIL_LINES is how many of a node's last log lines a failed wait prints. */
const LOG_TAIL_LINES = 6;

/** NodeSpec is one node's identity and ports. */
export interface NodeSpec {
  readonly id: string;
  readonly peerPort: number;
  readonly apiPort: number;
  readonly adminPort: number;
  readonly balancerPort: number;
}

/** ClusterOptions shape the cluster; timing defaults are the agent's defaults. */
export interface ClusterOptions {
  readonly size?: number;
  /** env is added to every node's environment (e.g. RAFTMESH_SNAPSHOT_ENTRIES). */
  readonly env?: Record<string, string>;
  /** clientTls makes client() dial with TLS (a cluster started with TLS on). */
  readonly clientTls?: ClientTlsOptions;
  /** token makes client() send this access token (a cluster started with access control on). */
  readonly token?: string;
  /** clientWriteRounds sets client()'s writeRounds (the SDK's default when absent). */
  readonly clientWriteRounds?: number;
  /**
   * compiled runs the agents from dist/ (npm run build) as a deployment does, rather than from
   * the sources through tsx, whose loader costs each process ~55 MB of RSS and seconds of start-up
   * (benchmarks of memory and start-up use it).
   */
  readonly compiled?: boolean;
}

import { freePorts } from "./ports.js";

export { freePorts };

/** waitFor polls f until it returns something truthy, or throws after timeoutMs naming what it waited for. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const start = Date.now();
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** CliResult is what a finished raftmesh command printed and returned. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** runCli runs `raftmesh <args>` from the sources and waits for it to exit (bounded by timeoutMs). */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`raftmesh ${args.join(" ")} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly log: WriteStream;
}

/** ProcessCluster: see the module comment. */
export class ProcessCluster {
  readonly specs = new Map<string, NodeSpec>();
  private readonly running = new Map<string, Running>();
  private readonly clients = new Map<string, RaftmeshClient>();
  /** lastExit is how each node's last process ended (a signal name or "code N"), for failure messages. */
  private readonly lastExit = new Map<string, string>();
  /** founders are the ids in RAFTMESH_MEMBERS (the initial cluster). */
  private founders: string[] = [];

  private constructor(
    readonly root: string,
    private readonly options: ClusterOptions,
  ) {}

  /** create allocates ports and a temporary root for a cluster of `size` founders (n1..nN); nothing runs yet. */
  static async create(options: ClusterOptions = {}): Promise<ProcessCluster> {
    const root = await mkdtemp(join(tmpdir(), "raftmesh-cluster-"));
    const c = new ProcessCluster(root, options);
    const size = options.size ?? 3;
    for (let i = 1; i <= size; i++) await c.allocate(`n${i}`);
    c.founders = [...c.specs.keys()];
    return c;
  }

  /** allocate gives a node id its ports (for a node that joins later too). */
  async allocate(id: string): Promise<NodeSpec> {
    const [peerPort, apiPort, adminPort, balancerPort] = (await freePorts(4)) as [number, number, number, number];
    const spec = { id, peerPort, apiPort, adminPort, balancerPort };
    this.specs.set(id, spec);
    return spec;
  }

  /**
   * reallocate gives an existing node id new ports (e.g. a wiped node that rejoins at a new
   * address) and drops the client pinned to its old API address. The node must not be running.
   */
  async reallocate(id: string): Promise<NodeSpec> {
    if (this.running.has(id)) throw new Error(`${id} is running; stop it before giving it new ports`);
    this.clients.get(id)?.close();
    this.clients.delete(id);
    return this.allocate(id);
  }

  /** dataDir is the RAFTMESH_DATA_DIR every node shares; node id's data is in dataDir/<id>. */
  get dataDir(): string {
    return join(this.root, "data");
  }

  /** membersValue is RAFTMESH_MEMBERS for the founders (with explicit API addresses). */
  membersValue(ids: readonly string[] = this.founders): string {
    return ids
      .map((id) => {
        const s = this.spec(id);
        return `${id}=127.0.0.1:${s.peerPort}/127.0.0.1:${s.apiPort}`;
      })
      .join(",");
  }

  /** env is the environment node id starts with. */
  env(id: string, extra: Record<string, string> = {}): Record<string, string> {
    const s = this.spec(id);
    return {
      RAFTMESH_NODE_ID: id,
      RAFTMESH_CLUSTER_ID: "it-cluster",
      RAFTMESH_DATA_DIR: this.dataDir,
      RAFTMESH_PEER_LISTEN: `127.0.0.1:${s.peerPort}`,
      RAFTMESH_API_LISTEN: `127.0.0.1:${s.apiPort}`,
      RAFTMESH_ADMIN_LISTEN: `127.0.0.1:${s.adminPort}`,
      RAFTMESH_BALANCER_LISTEN: `127.0.0.1:${s.balancerPort}`,
      RAFTMESH_MEMBERS: this.membersValue(),
      RAFTMESH_BOOTSTRAP: this.founders.includes(id) ? "true" : "false",
      RAFTMESH_LOG_LEVEL: "info",
      RAFTMESH_LOG_FORMAT: "json",
      ...this.options.env,
      ...extra,
    };
  }

  /**
   * start launches node id (founders bootstrap; others join); it returns once the process is
   * spawned. `build`, when given, is the root of another checkout whose sources to run (through
   * tsx) instead of this one's: a node of another build, for upgrade tests.
   */
  start(id: string, extraEnv: Record<string, string> = {}, build?: string): void {
    if (this.running.has(id)) throw new Error(`${id} is already running`);
    const log = createWriteStream(join(this.root, `${id}.log`), { flags: "a" });
    if (this.options.compiled && build === undefined && !existsSync(COMPILED_MAIN)) throw new Error(`${COMPILED_MAIN} does not exist: run npm run build first`);
    const args = build !== undefined ? ["--import", "tsx", join(build, "src/cli/main.ts"), "agent"] : this.options.compiled ? [COMPILED_MAIN, "agent"] : ["--import", "tsx", MAIN, "agent"];
    const child = spawn(process.execPath, args, {
      cwd: build ?? REPO_ROOT,
      env: { ...process.env, ...this.env(id, extraEnv) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    // "exit" can come before the last of the child's output has been read from its pipes: the log
    // file is ended (and exited resolves) only once both pipes have ended and the file has it all,
    // so a test that reads the log after an exit sees every line. A grandchild that inherited the
    // pipes could hold them open, hence the bound.
    const outputDrained = Promise.all([child.stdout, child.stderr].map((s) => (s && !s.readableEnded ? new Promise((r) => s.once("close", r)) : undefined)));
    const exited = new Promise<number | null>((r) =>
      child.on("exit", (code, signal) => {
        this.lastExit.set(id, signal ?? `code ${code}`);
        const bound = new Promise((t) => setTimeout(t, OUTPUT_DRAIN_MS).unref());
        void Promise.race([outputDrained, bound]).then(() => {
          if (this.running.get(id) === entry) this.running.delete(id);
          log.end(() => r(signal ? null : code));
        });
      }),
    );
    const entry = { child, exited, log };
    this.running.set(id, entry);
  }

  /** startAll starts every founder. */
  startAll(): void {
    for (const id of this.founders) this.start(id);
  }

  /** isRunning says whether node id's process is alive. */
  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** pid is the process id of node id's agent (undefined when it is not running), e.g. to read its /proc/<pid>/status. */
  pid(id: string): number | undefined {
    return this.running.get(id)?.child.pid;
  }

  /** kill sends a signal (SIGKILL by default) and waits for the process to exit. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    const r = this.running.get(id);
    if (!r) return null;
    r.child.kill(signal);
    return this.waitExit(id, r);
  }

  /** stop sends SIGTERM and returns the exit status (0 for a clean stop). */
  stop(id: string): Promise<number | null> {
    return this.kill(id, "SIGTERM");
  }

  /** exited resolves with node id's exit status once its process ends by itself. */
  async exited(id: string, timeoutMs = EXIT_WAIT_MS): Promise<number | null> {
    const r = this.running.get(id);
    if (!r) return null;
    return this.waitExit(id, r, timeoutMs);
  }

  private async waitExit(id: string, r: Running, timeoutMs = EXIT_WAIT_MS): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${id} did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([r.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** wipe deletes node id's data directory (the node must not be running). */
  async wipe(id: string): Promise<void> {
    if (this.running.has(id)) throw new Error(`${id} is running; stop it before wiping`);
    await rm(join(this.dataDir, id), { recursive: true, force: true });
  }

  /** api is node id's client API address. */
  api(id: string): string {
    return `127.0.0.1:${this.spec(id).apiPort}`;
  }

  /** peer is node id's peer address. */
  peer(id: string): string {
    return `127.0.0.1:${this.spec(id).peerPort}`;
  }

  /** client is a client pinned to node id (one per node, reused). */
  client(id: string): RaftmeshClient {
    let c = this.clients.get(id);
    if (!c) {
      c = new RaftmeshClient([this.api(id)], {
        deadlineMs: 3_000,
        tls: this.options.clientTls,
        token: this.options.token,
        writeRounds: this.options.clientWriteRounds,
      });
      this.clients.set(id, c);
    }
    return c;
  }

  /** ids of the running nodes. */
  runningIds(): string[] {
    return [...this.running.keys()];
  }

  /**
   * waitForLeader resolves with the leader once every running node in `among` (default: all
   * running) reports the same leader, and that leader reports itself as leader.
   */
  async waitForLeader(timeoutMs = 20_000, among: readonly string[] = this.runningIds()): Promise<string> {
    return this.explained(among, waitFor(
      `one leader agreed by ${among.join(", ")}`,
      async () => {
        const views = await Promise.all(among.map((id) => this.client(id).status({ deadlineMs: 1_000 }).catch(() => undefined)));
        const leader = views[0]?.leader;
        if (!leader || views.some((v) => v?.leader !== leader)) return undefined;
        const own = views.find((v) => v?.id === leader) ?? (await this.client(leader).status({ deadlineMs: 1_000 }));
        return own?.role === "leader" ? leader : undefined;
      },
      timeoutMs,
    ));
  }

  /**
   * explained passes wait's result through; when it fails, the error also says, for each node of
   * `ids`, whether its process still runs (or how it exited), what it answers now, and the last
   * lines it logged, so a failed wait in CI shows its cause and not only its timeout.
   */
  private async explained<T>(ids: readonly string[], wait: Promise<T>): Promise<T> {
    try {
      return await wait;
    } catch (err) {
      const lines = await Promise.all(ids.map((id) => this.describe(id)));
      throw new Error(`${(err as Error).message}\n${lines.join("\n")}`);
    }
  }

  /** describe is one node's state for a failure message: process, status answer, last log lines. */
  private async describe(id: string): Promise<string> {
    const r = this.running.get(id);
    const proc = r ? `running (pid ${r.child.pid})` : `not running (${this.lastExit.get(id) ?? "never started"})`;
    const view = await this.client(id)
      .status({ deadlineMs: 1_000 })
      .then((v) => `role ${v.role}, leader ${v.leader || "none"}, term ${v.term}, commit ${v.commit}`)
      .catch((e: unknown) => `status failed: ${(e as Error).message}`);
    const tail = (await this.logOf(id)).trim().split("\n").slice(-LOG_TAIL_LINES).join("\n    ");
    return `  ${id}: ${proc}; ${view}\n    ${tail}`;
  }

  /**
   * waitForLog waits until node id's log contains text and returns the log. A line the node printed
   * before answering a call reaches the file a little later (through its pipe and this process's
   * event loop), so a test asserting on a line logged during a call waits for it rather than reading once.
   */
  async waitForLog(id: string, text: string, timeoutMs = LOG_WAIT_MS): Promise<string> {
    return waitFor(`${id}'s log to contain ${JSON.stringify(text)}`, async () => {
      const log = await this.logOf(id);
      return log.includes(text) ? log : undefined;
    }, timeoutMs);
  }

  /** logOf is what node id has printed so far (stdout and stderr). */
  async logOf(id: string): Promise<string> {
    const { readFile } = await import("node:fs/promises");
    return readFile(join(this.root, `${id}.log`), "utf8").catch(() => "");
  }

  private spec(id: string): NodeSpec {
    const s = this.specs.get(id);
    if (!s) throw new Error(`no node ${id} in this cluster`);
    return s;
  }

  /** cleanup SIGKILLs every process, closes clients and removes the temporary root (keep it with KEEP_CLUSTER=1). */
  async cleanup(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await Promise.all([...this.running.keys()].map((id) => this.kill(id).catch(() => undefined)));
    if (!process.env.KEEP_CLUSTER) await rm(this.root, { recursive: true, force: true });
  }
}
