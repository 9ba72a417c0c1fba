import type { Logger } from "../common/logger.js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { HEARTBEATS_PER_TTL, RaftmeshError, type RaftmeshClient } from "../client/index.js";
import { CheckRunner } from "./checks/runner.js";
import { LOCAL_NOTE_BYTES_MAX } from "./limits.js";
import type { ProcessEvent, SupervisedProcess } from "./process.js";
import { type CheckStatus, type Definition, definitionKey, STATUS_RANK } from "./types.js";

/** InstanceClient is what a local instance needs of the client SDK (a RaftmeshClient fits). */
export type InstanceClient = Pick<RaftmeshClient, "register" | "deregister" | "heartbeat">;

/** Health is an instance's status and the note that explains it. */
export interface Health {
  readonly status: CheckStatus;
  readonly note: string;
}

/**
 * LocalInstance keeps one definition's instance registered and heartbeated: every TTL/3 while it
 * lives, and at once when its health changes. Its health is the worst of its checks' damped
 * statuses; a supervised process that is not running makes it critical at once (a crash needs no
 * check to notice it) and marks its checks critical, so a restarted process is passing only after
 * each check's `rise` passing results. It registers once every check has a first result, re-registers when the
 * cluster answers that the instance is unknown (a lease expired while the node was cut off, or a
 * cluster-wide loss), and deregisters only when its definition is removed.
 */
export class LocalInstance {
  readonly key: string;
  private readonly checks: CheckRunner[];
  private registered = false;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private again = false;
  private stopped = false;
  private lastReported: Health | undefined;
  private loggedStatus: CheckStatus | undefined;
  private lastError = "";
  private processState: { up: boolean; note: string } = { up: true, note: "" };
  /** token is the current (or last) process's token; exited names it once it exited (README: "Handover fence"). */
  private token = "";
  private exited = "";
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    readonly def: Definition,
    private readonly client: InstanceClient,
    private readonly logger: Logger,
    readonly proc: SupervisedProcess | undefined,
  ) {
    this.key = definitionKey(def);
    this.checks = def.checks.map((c) => new CheckRunner(c));
    for (const c of this.checks) {
      this.unsubscribe.push(
        c.events.on("change", (e) => {
          const fields = { check: c.spec.name, status: e.status, previous: e.previous ?? "none", note: e.note };
          if (e.status === "passing") this.logger.info(fields, "check status changed");
          else this.logger.warn(fields, "check status changed");
          this.nudge();
        }),
      );
    }
    if (proc) {
      this.processState = { up: proc.running, note: proc.running ? "" : "process not started" };
      this.unsubscribe.push(proc.events.on("event", (e) => this.onProcess(e)));
    }
  }

  /** start starts the checks and the heartbeat timer (and the process, unless it was handed over running). */
  start(): void {
    for (const c of this.checks) c.start();
    if (this.proc && !this.proc.running) this.proc.start();
    this.tick();
  }

  /** health is the instance's current health, undefined while a check has no result yet. */
  health(): Health | undefined {
    if (this.checks.some((c) => c.status === undefined)) return undefined;
    let status: CheckStatus = "passing";
    const notes: string[] = [];
    if (!this.processState.up) {
      status = "critical";
      notes.push(this.processState.note);
    }
    for (const c of this.checks) {
      const s = c.status as CheckStatus;
      if (STATUS_RANK[s] > STATUS_RANK[status]) status = s;
      if (s !== "passing") notes.push(`${c.spec.name}: ${c.note}`);
    }
    return { status, note: boundNote(notes.join("; ")) };
  }

  /**
   * stop ends checks and heartbeats. With deregister (the definition was removed) it stops the
   * process and deregisters the instance; with keepProcess (a changed definition with the same
   * process) the process is left running for the instance that replaces this one.
   */
  async stop(opts: { deregister: boolean; keepProcess: boolean }): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const c of this.checks) c.stop();
    for (const u of this.unsubscribe) u();
    if (this.proc && !opts.keepProcess) await this.proc.stop();
    if (opts.deregister) {
      try {
        await this.client.deregister(this.def.instance.service, this.def.instance.id);
        this.logger.info({}, "deregistered: its definition was removed");
      } catch (err) {
        this.logger.warn({ err: String(err) }, "deregister failed; the instance will expire at its TTL");
      }
    }
  }

  private onProcess(e: ProcessEvent): void {
    if (e.kind === "started") {
      this.processState = { up: true, note: "" };
      this.token = e.processToken ?? "";
      this.exited = "";
      this.logger.info({ pid: e.pid }, "process started");
    } else if (e.kind === "exited") {
      const how = e.code !== null ? `exit ${e.code}` : `signal ${e.signal}`;
      const next = e.restartInMs === null ? "not restarted" : `restart in ${e.restartInMs} ms`;
      this.processState = { up: false, note: `process exited (${how}); ${next}` };
      this.exited = e.processToken ?? "";
      for (const c of this.checks) c.forceDown(`process exited (${how})`);
      this.logger.warn({ code: e.code, signal: e.signal, restartInMs: e.restartInMs }, "process exited");
    } else {
      this.processState = { up: false, note: `process crash loop: ${e.restarts} restarts in ${e.windowMs} ms; not restarted` };
      for (const c of this.checks) c.forceDown("process crash loop");
      this.logger.error({ restarts: e.restarts, windowMs: e.windowMs }, "process in a crash loop; left stopped and critical");
    }
    this.nudge();
  }

  /** nudge sends a heartbeat now if the health changed since the last one reported. */
  private nudge(): void {
    const h = this.health();
    if (h === undefined) return;
    // While a heartbeat is in flight, lastReported is older than what the cluster is being told:
    // a health that changed and changed back during it must still be sent after it.
    if (!this.sending && this.lastReported && h.status === this.lastReported.status && h.note === this.lastReported.note) return;
    if (h.status !== this.loggedStatus) {
      const fields = { status: h.status, previous: this.loggedStatus ?? "none", note: h.note };
      if (h.status === "passing") this.logger.info(fields, "instance status changed");
      else this.logger.warn(fields, "instance status changed");
      this.loggedStatus = h.status;
    }
    void this.send();
  }

  private tick(): void {
    if (this.stopped) return;
    void this.send();
    this.timer = setTimeout(() => this.tick(), Math.floor(this.def.instance.ttlMs / HEARTBEATS_PER_TTL));
  }

  /** send registers if needed and heartbeats once with the current health; one at a time, a nudge during one sends again after it. */
  private async send(): Promise<void> {
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    try {
      do {
        this.again = false;
        await this.sendOnce();
      } while (this.again && !this.stopped);
    } finally {
      this.sending = false;
    }
  }

  /** beatOptions name the process a heartbeat speaks for, and with critical the exited one, so a master's successor need not wait for its lease. */
  private beatOptions(h: Health, deadlineMs: number) {
    const exited = h.status === "critical" && this.exited !== "" ? { exitedProcess: this.exited } : {};
    return { deadlineMs, ...(this.token !== "" ? { processToken: this.token } : {}), ...exited };
  }

  private async sendOnce(): Promise<void> {
    const h = this.health();
    if (h === undefined || this.stopped) return;
    const deadlineMs = Math.floor(this.def.instance.ttlMs / HEARTBEATS_PER_TTL);
    const { service, id } = this.def.instance;
    try {
      if (!this.registered) {
        // With the health the checks give now: registered passing, a failing instance would read
        // passing until the heartbeat just below.
        await this.client.register(this.def.instance, { deadlineMs, health: h.status, note: h.note });
        this.registered = true;
        this.logger.info({}, "registered");
      }
      try {
        await this.client.heartbeat(service, id, h.status, h.note, this.beatOptions(h, deadlineMs));
      } catch (err) {
        if (!(err instanceof RaftmeshError && err.code === GrpcStatus.NOT_FOUND)) throw err;
        // The cluster no longer knows the instance (its lease expired, or the registry lost it):
        // register it again and report at once.
        this.registered = false;
        this.logger.warn({}, "the cluster does not know this instance; registering it again");
        await this.client.register(this.def.instance, { deadlineMs, health: h.status, note: h.note });
        this.registered = true;
        await this.client.heartbeat(service, id, h.status, h.note, this.beatOptions(h, deadlineMs));
      }
      this.lastReported = h;
      if (this.lastError !== "") this.logger.info({}, "heartbeats go through again");
      this.lastError = "";
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Only a change of error is logged: a node cut off from its cluster would log every TTL/3.
      if (message !== this.lastError) this.logger.warn({ err: message }, this.registered ? "heartbeat failed" : "register failed");
      this.lastError = message;
    }
  }
}

/** boundNote cuts a note to LOCAL_NOTE_BYTES_MAX bytes of UTF-8 without splitting a character. */
export function boundNote(note: string): string {
  if (Buffer.byteLength(note, "utf8") <= LOCAL_NOTE_BYTES_MAX) return note;
  const suffix = " …";
  const room = LOCAL_NOTE_BYTES_MAX - Buffer.byteLength(suffix, "utf8");
  let cut = Buffer.from(note, "utf8").subarray(0, room).toString("utf8");
  // A cut inside a multi-byte character decodes to U+FFFD, which may be longer than what was cut.
  while (Buffer.byteLength(cut, "utf8") > room || cut.endsWith("\uFFFD")) cut = cut.slice(0, -1);
  return `${cut}${suffix}`;
}
