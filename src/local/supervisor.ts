/**
 * Supervisor runs one process and keeps it running: it starts the command (with its environment,
 * working directory and, as root, another user), writes its stdout and stderr to rotated files,
 * restarts it when it exits after a growing backoff (RestartPolicy), gives up after a crash loop,
 * and stops it with SIGTERM, then SIGKILL once the grace period has passed.
 *
 * Process groups: the process leads a group of its own (spawned detached), and every signal goes to
 * the group, so the children it forked stop with it. When the process exits by itself, whatever is
 * left of its group is killed before "exited" is emitted: a worker it forked cannot go on serving
 * as it, and an "exited" event means no process of the group runs any more (a process that left the
 * group with setsid escapes this, as it escapes any supervisor that is not a cgroup).
 *
 * Every start gets a fresh process token, passed as RAFTMESH_PROCESS_TOKEN and named in the
 * "started" and "exited" events, so whoever reports the exit can name the process that died
 * (src/common/process-token.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Emitter } from "../common/emitter.js";
import { newProcessToken, PROCESS_TOKEN_ENV } from "../common/process-token.js";
import { SupervisorError } from "./errors.js";
import { type LogFileLimits, RotatingLogFile } from "./log-files.js";
import { type RestartLimits, RestartPolicy } from "./restart-policy.js";

/** GRACE_PERIOD_MS_DEFAULT: 10 s between SIGTERM and SIGKILL, as `docker stop` gives. */
export const GRACE_PERIOD_MS_DEFAULT = 10_000;

/** ProcessSpec is what to run and how. */
export interface ProcessSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** env is added to the supervisor's own environment. */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** user is a user name or uid from /etc/passwd (its primary group is used); needs root. */
  readonly user?: string;
  /** gracePeriodMs is the wait between SIGTERM and SIGKILL on stop (default GRACE_PERIOD_MS_DEFAULT). */
  readonly gracePeriodMs?: number;
  /** logDir receives `<name>.stdout.log` and `<name>.stderr.log` (rotated). */
  readonly logDir: string;
}

/** SupervisorEvent is what the supervisor reports; processToken names the process of the run (additive to the first contract). */
export type SupervisorEvent =
  | { kind: "started"; pid: number; processToken: string }
  /** restartInMs null: no restart (stopping, or a crash loop, which follows as its own event). */
  | { kind: "exited"; code: number | null; signal: string | null; restartInMs: number | null; processToken: string }
  | { kind: "crash-loop"; restarts: number; windowMs: number };

/** SupervisorOptions tune the restart policy and log bounds (tests use small ones). */
export interface SupervisorOptions extends RestartLimits {
  readonly logLimits?: LogFileLimits;
}

/** Credentials are a resolved user's uid and gid. */
export interface Credentials {
  readonly uid: number;
  readonly gid: number;
}

/**
 * userCredentials resolves a user name or uid through a passwd file's text (name:x:uid:gid:...),
 * or throws a SupervisorError naming the field.
 */
export function userCredentials(user: string, passwd: string): Credentials {
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (name === user || uid === user) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new SupervisorError(`user: "${user}" is not in /etc/passwd`);
}

/** Supervisor: see the module comment. */
export class Supervisor {
  readonly events = new Emitter<{ event: SupervisorEvent }>();
  private readonly policy: RestartPolicy;
  private readonly credentials: Credentials | undefined;
  private readonly gracePeriodMs: number;
  private readonly out: RotatingLogFile;
  private readonly err: RotatingLogFile;
  private child: ChildProcess | undefined;
  private token = "";
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;
  private readonly stopWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    private readonly spec: ProcessSpec,
    opts: SupervisorOptions = {},
  ) {
    this.policy = new RestartPolicy(opts);
    this.gracePeriodMs = spec.gracePeriodMs ?? GRACE_PERIOD_MS_DEFAULT;
    if (!Number.isInteger(this.gracePeriodMs) || this.gracePeriodMs < 0) throw new SupervisorError(`gracePeriodMs: must be a whole number of ms >= 0, got ${spec.gracePeriodMs}`);
    if (spec.command === "") throw new SupervisorError("command: must not be empty");
    if (spec.user !== undefined) {
      if (process.getuid?.() !== 0) throw new SupervisorError(`user: running the process as "${spec.user}" needs root (this supervisor runs as uid ${process.getuid?.()})`);
      this.credentials = userCredentials(spec.user, readFileSync("/etc/passwd", "utf8"));
    }
    this.out = new RotatingLogFile(join(spec.logDir, `${name}.stdout.log`), opts.logLimits);
    this.err = new RotatingLogFile(join(spec.logDir, `${name}.stderr.log`), opts.logLimits);
  }

  /** running says whether a process of this supervisor is alive. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** pid is the running process's id (undefined when none runs). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** start starts the process (again after a crash loop, with a fresh history); nothing if it runs or a restart is pending. */
  start(): void {
    if (this.child !== undefined || this.restartTimer !== undefined) return;
    this.stopping = false;
    this.policy.reset();
    this.spawn();
  }

  /** stop ends restarts, sends SIGTERM to the process group, SIGKILL after the grace period, and resolves once the process exited. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (child === undefined) {
      this.closeLogs();
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    signalGroup(child, "SIGTERM");
    const kill = setTimeout(() => signalGroup(child, "SIGKILL"), this.gracePeriodMs);
    return done.finally(() => clearTimeout(kill));
  }

  private spawn(): void {
    this.restartTimer = undefined;
    const token = newProcessToken();
    this.token = token;
    const child = spawn(this.spec.command, [...this.spec.args], {
      env: { ...process.env, ...this.spec.env, [PROCESS_TOKEN_ENV]: token },
      ...(this.spec.cwd === undefined ? {} : { cwd: this.spec.cwd }),
      ...(this.credentials ?? {}),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    child.stdout?.on("data", (d: Buffer) => this.out.write(d));
    child.stderr?.on("data", (d: Buffer) => this.err.write(d));
    child.once("spawn", () => {
      this.policy.started(performance.now());
      this.events.emit("event", { kind: "started", pid: child.pid as number, processToken: token });
    });
    let ended = false;
    const end = (code: number | null, signal: string | null) => {
      if (ended) return;
      ended = true;
      this.exited(child, code, signal, token);
    };
    child.once("exit", end);
    // A command that cannot be started (no such file, no permission) never emits "exit".
    child.once("error", (err) => {
      this.err.write(`raftmesh: cannot start ${this.spec.command}: ${err.message}\n`);
      if (child.pid === undefined) end(null, null);
    });
  }

  private exited(child: ChildProcess, code: number | null, signal: string | null, token: string): void {
    // What is left of the group dies with its leader (see the module comment).
    signalGroup(child, "SIGKILL");
    this.child = undefined;
    if (this.stopping) {
      this.events.emit("event", { kind: "exited", code, signal, restartInMs: null, processToken: token });
      this.closeLogs();
      for (const wake of this.stopWaiters.splice(0)) wake();
      return;
    }
    const decision = this.policy.exited(performance.now());
    if ("crashLoop" in decision) {
      this.events.emit("event", { kind: "exited", code, signal, restartInMs: null, processToken: token });
      this.events.emit("event", { kind: "crash-loop", ...decision.crashLoop });
      return;
    }
    this.events.emit("event", { kind: "exited", code, signal, restartInMs: decision.restartInMs, processToken: token });
    this.restartTimer = setTimeout(() => this.spawn(), decision.restartInMs);
  }

  private closeLogs(): void {
    this.out.close();
    this.err.close();
  }

  /** processToken is the token of the current (or last) process. */
  get processToken(): string {
    return this.token;
  }
}

/** signalGroup sends a signal to the process group the child leads (gone already: nothing to do). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}
