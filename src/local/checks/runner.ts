import { Emitter } from "../../common/emitter.js";
import type { CheckResult, CheckSpec, CheckStatus } from "../types.js";
import { DAMPED_INITIAL, type Damped, damp, dampDown } from "./damp.js";
import { grpcCheck } from "./grpc.js";
import { httpCheck } from "./http.js";
import { scriptCheck } from "./script.js";
import { tcpCheck } from "./tcp.js";

/** runProbe runs a check's probe once; it settles by the timeout whatever the target does. */
export function runProbe(spec: CheckSpec, signal: AbortSignal): Promise<CheckResult> {
  const p = spec.probe;
  switch (p.kind) {
    case "http":
      return httpCheck(p, signal);
    case "tcp":
      return tcpCheck(p, signal);
    case "grpc":
      return grpcCheck(p, signal, spec.timing.timeoutMs);
    case "script":
      return scriptCheck(p, signal, spec.timing.timeoutMs);
  }
}

/**
 * CheckRunner runs one check on its interval (plus jitter) and damps its results. Every probe is
 * asynchronous and ends at its timeout, so a hung target costs a pending promise, never the event
 * loop: the node's heartbeats go on. It emits "change" when the damped status changes (the first
 * result included), and "result" on every run.
 */
export class CheckRunner {
  readonly events = new Emitter<{ change: { status: CheckStatus; note: string; previous: CheckStatus | undefined }; result: CheckResult }>();
  private state: Damped = DAMPED_INITIAL;
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(
    readonly spec: CheckSpec,
    private readonly random: () => number = Math.random,
  ) {}

  /** status is the damped status, undefined before the first result. */
  get status(): CheckStatus | undefined {
    return this.state.status;
  }

  get note(): string {
    return this.state.note;
  }

  /** start runs the first probe after a random share of the jitter, then one per interval. */
  start(): void {
    this.schedule(Math.floor(this.random() * this.spec.timing.jitterMs));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  /**
   * forceDown marks the check critical now (its target is known to be gone), so it needs `rise`
   * passing results to report passing again. A probe in flight is left to finish: its result is
   * damped against the forced state.
   */
  forceDown(note: string): void {
    if (this.stopped) return;
    const before = this.state.status;
    this.state = dampDown(note);
    if (before !== "critical") this.events.emit("change", { status: "critical", note, previous: before });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runOnce(), delayMs);
  }

  private async runOnce(): Promise<void> {
    const { timing } = this.spec;
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(), timing.timeoutMs);
    let result: CheckResult;
    try {
      result = await runProbe(this.spec, abort.signal);
    } finally {
      clearTimeout(timer);
      this.abort = undefined;
    }
    if (this.stopped) return;
    const before = this.state.status;
    this.state = damp(this.state, result, timing.rise, timing.fall);
    this.events.emit("result", result);
    if (this.state.status !== before) this.events.emit("change", { status: this.state.status as CheckStatus, note: this.state.note, previous: before });
    this.schedule(timing.intervalMs + Math.floor(this.random() * timing.jitterMs));
  }
}
