/**
 * SupervisedInstance keeps the registration of one supervised process true to what the process
 * does: it registers the instance once the process is up (its port accepts a TCP connection, when
 * a port is given), heartbeats every TTL/3 (passing while the process is up, critical while it is
 * down), and reports an exit at once, in a heartbeat of its own, without waiting for a TTL or the
 * next beat. That report names the exited process (exited_process), so a master-slave service's
 * next master need not wait for the dead process's lease (src/registry/lease-driver.ts, fenceOf).
 */
import { connect } from "node:net";
import { performance } from "node:perf_hooks";
import type { RaftmeshClient } from "../client/index.js";
import type { Supervisor, SupervisorEvent } from "../local/supervisor.js";

/** HEARTBEATS_PER_TTL: three beats per TTL, so one lost beat never lets the lease run out. */
const HEARTBEATS_PER_TTL = 3;
/** READY_POLL_MS: how often a started process's port is tried; 20 ms keeps a restart's return to passing prompt at little cost. */
export const READY_POLL_MS = 20;
/** READY_CONNECT_TIMEOUT_MS bounds one readiness connect (a local port answers in well under a millisecond). */
const READY_CONNECT_TIMEOUT_MS = 1_000;
/** REGISTER_RETRY_MS: the pause between registration attempts while the cluster cannot be reached. */
const REGISTER_RETRY_MS = 500;

/** InstanceState is what the process is doing, as the registry will hear it. */
type InstanceState = { readonly up: false; readonly note: string; readonly exited: string } | { readonly up: true };

/** RunReport is one line of what `raftmesh run` did (printed as JSON). */
export type RunReport = Record<string, unknown> & { readonly event: string };

/** SupervisedInstanceOptions describe the instance and where to report. */
export interface SupervisedInstanceOptions {
  readonly client: RaftmeshClient;
  readonly supervisor: Supervisor;
  readonly service: string;
  readonly id: string;
  readonly address: string;
  /** port: 0 when none is given (readiness is then the start itself). */
  readonly port: number;
  readonly ttlMs: number;
  readonly report: (r: RunReport) => void;
}

/** SupervisedInstance: see the module comment. */
export class SupervisedInstance {
  private state: InstanceState = { up: false, note: "starting", exited: "" };
  /** token: the current (or last) process's token, which every heartbeat speaks for. */
  private token = "";
  private registered = false;
  private stopped = false;
  private beatTimer: ReturnType<typeof setInterval> | undefined;
  /** generation: bumped at every start and exit, so a readiness wait of an older run gives up. */
  private generation = 0;

  constructor(private readonly o: SupervisedInstanceOptions) {
    o.supervisor.events.on("event", (e) => this.onEvent(e));
  }

  /** start starts the process. */
  start(): void {
    this.o.supervisor.start();
  }

  /**
   * stop stops heartbeating and the process (SIGTERM, SIGKILL after the grace period), reports the
   * exit (so a master's successor need not wait for its lease), then deregisters the instance.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.beatTimer);
    await this.o.supervisor.stop();
    if (!this.registered) return;
    if (this.token !== "") await this.beat({ up: false, note: "stopped", exited: this.token }).catch(() => undefined);
    await this.o.client.deregister(this.o.service, this.o.id);
    this.o.report({ event: "deregistered" });
  }

  private onEvent(e: SupervisorEvent): void {
    const gen = ++this.generation;
    if (e.kind === "started") {
      this.token = e.processToken;
      this.o.report({ event: "started", pid: e.pid });
      void this.whenReady(gen);
      return;
    }
    if (e.kind === "exited") {
      const how = e.signal !== null ? `signal ${e.signal}` : `code ${e.code}`;
      const next = e.restartInMs === null ? "not restarted" : `restart in ${e.restartInMs} ms`;
      this.state = { up: false, note: `process exited (${how}); ${next}`, exited: e.processToken };
      this.o.report({ event: "exited", code: e.code, signal: e.signal, restartInMs: e.restartInMs, at: performance.now() });
      // At once: the exit is known now, and a TTL would only delay what everyone needs to hear.
      if (this.registered && !this.stopped) this.send("exit");
      return;
    }
    this.state = { up: false, note: `crash loop: ${e.restarts} restarts within ${e.windowMs} ms; not restarted`, exited: this.state.up ? "" : this.state.exited };
    this.o.report({ event: "crash-loop", restarts: e.restarts, windowMs: e.windowMs });
    if (this.registered && !this.stopped) this.send("crash-loop");
  }

  /** whenReady waits for the port (if any), then registers (the first time) and reports passing. */
  private async whenReady(gen: number): Promise<void> {
    if (this.o.port !== 0) {
      while (!(await tcpAccepts(this.o.address, this.o.port))) {
        if (gen !== this.generation || this.stopped) return;
        await sleep(READY_POLL_MS);
      }
    }
    if (gen !== this.generation || this.stopped) return;
    this.state = { up: true };
    if (!this.registered) {
      await this.register(gen);
      return;
    }
    this.send("up");
  }

  private async register(gen: number): Promise<void> {
    const { client, service, id, address, port, ttlMs } = this.o;
    for (;;) {
      if (gen !== this.generation || this.stopped) return;
      try {
        await client.register({ id, service, address, port, ttlMs });
        break;
      } catch (err) {
        this.o.report({ event: "register-failed", error: (err as Error).message });
        await sleep(REGISTER_RETRY_MS);
      }
    }
    this.registered = true;
    this.o.report({ event: "registered", service, id, address, port, ttlMs });
    this.beatTimer = setInterval(() => this.send("beat"), Math.floor(ttlMs / HEARTBEATS_PER_TTL));
    this.send("up");
  }

  /**
   * send heartbeats the current state. Two heartbeats in flight may reach the leader in either
   * order (a follower forwards them in separate batches), so when one carrying an older state is
   * answered, the current state is sent again: the last report the leader applies is the current one.
   */
  private send(why: string): void {
    const state = this.state;
    const sentAt = performance.now();
    this.beat(state).then(
      (res) => {
        if (why !== "beat") this.o.report({ event: "reported", why, status: state.up ? "passing" : "critical", health: res.health, role: res.role ?? "", epoch: Number(res.epoch ?? 0), ms: Math.round((performance.now() - sentAt) * 100) / 100 });
        if (state !== this.state && !this.stopped) this.send("resend");
      },
      (err) => {
        this.o.report({ event: "heartbeat-failed", why, error: (err as Error).message });
        if (why !== "beat" && state === this.state && !this.stopped) setTimeout(() => this.state === state && this.send(why), REGISTER_RETRY_MS);
      },
    );
  }

  private beat(state: InstanceState) {
    const { client, service, id, ttlMs } = this.o;
    if (state.up) return client.heartbeat(service, id, "passing", "", { processToken: this.token, deadlineMs: ttlMs });
    return client.heartbeat(service, id, "critical", state.note, { processToken: this.token, deadlineMs: ttlMs, ...(state.exited === "" ? {} : { exitedProcess: state.exited }) });
  }
}

/** tcpAccepts says whether host:port accepts a TCP connection now. */
function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: READY_CONNECT_TIMEOUT_MS });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
    sock.once("timeout", () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
