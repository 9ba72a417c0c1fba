/**
 * The history recorder: every client operation and every fault, timed on the run's one clock,
 * kept in memory for the checkers and appended to history.jsonl as it completes.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import type { OpStatus } from "../checker/history.js";
import type { RunClock } from "./clock.js";

/** OpRecord is one client operation. `return` is Infinity when it never completed. */
export interface OpRecord {
  readonly type: "op";
  readonly id: number;
  /** process is the logical client (a fresh one after each indeterminate op, as in Jepsen). */
  readonly process: number;
  /** node is the node the operation was sent to. */
  readonly node: string;
  readonly f: string;
  readonly input: unknown;
  readonly output?: unknown;
  readonly status: OpStatus;
  readonly call: number;
  readonly return: number;
  readonly error?: string;
}

/** NemesisRecord is the start or end of one fault. */
export interface NemesisRecord {
  readonly type: "nemesis";
  readonly f: string;
  readonly phase: "start" | "stop";
  readonly time: number;
  /** value names the targets: nodes, groups or a one-way cut. */
  readonly value: unknown;
}

/** PhaseRecord marks a schedule step (warm-up, faults, heal, recovery, final reads). */
export interface PhaseRecord {
  readonly type: "phase";
  readonly name: string;
  readonly time: number;
}

/** HistoryEntry is one line of history.jsonl. */
export type HistoryEntry = OpRecord | NemesisRecord | PhaseRecord;

/** PendingOp is an invoked operation; exactly one of ok, fail or info completes it. */
export interface PendingOp {
  readonly call: number;
  ok(output?: unknown): OpRecord;
  fail(error?: string, output?: unknown): OpRecord;
  info(error?: string): OpRecord;
}

/** HistoryRecorder collects a run's history; see the module comment. */
export class HistoryRecorder {
  readonly entries: HistoryEntry[] = [];
  private readonly pending = new Map<number, Omit<OpRecord, "status" | "return">>();
  private nextId = 0;
  private readonly out: WriteStream | undefined;

  constructor(
    private readonly clock: RunClock,
    jsonlPath?: string,
  ) {
    this.out = jsonlPath === undefined ? undefined : createWriteStream(jsonlPath);
  }

  /** invoke starts an operation now. */
  invoke(process: number, node: string, f: string, input: unknown): PendingOp {
    const id = this.nextId++;
    const base = { type: "op" as const, id, process, node, f, input, call: this.clock.now() };
    this.pending.set(id, base);
    const complete = (status: OpStatus, output: unknown, error: string | undefined): OpRecord => {
      if (!this.pending.delete(id)) throw new Error(`operation ${id} completed twice`);
      const rec: OpRecord = { ...base, status, return: this.clock.now(), ...(output === undefined ? {} : { output }), ...(error ? { error } : {}) };
      this.push(rec);
      return rec;
    };
    return {
      call: base.call,
      ok: (output) => complete("ok", output, undefined),
      fail: (error, output) => complete("fail", output, error),
      info: (error) => complete("info", undefined, error),
    };
  }

  /** nemesis records the start or end of a fault now. */
  nemesis(f: string, phase: "start" | "stop", value: unknown): NemesisRecord {
    const rec: NemesisRecord = { type: "nemesis", f, phase, value, time: this.clock.now() };
    this.push(rec);
    return rec;
  }

  /** phase records a schedule step now. */
  phase(name: string): PhaseRecord {
    const rec: PhaseRecord = { type: "phase", name, time: this.clock.now() };
    this.push(rec);
    return rec;
  }

  /** ops are the completed operations so far, in completion order. */
  ops(): OpRecord[] {
    return this.entries.filter((e): e is OpRecord => e.type === "op");
  }

  /** abandonPending records every operation still outstanding as info with an infinite return. */
  abandonPending(): void {
    for (const base of this.pending.values()) this.push({ ...base, status: "info", return: Number.POSITIVE_INFINITY, error: "still pending at the end of the run" });
    this.pending.clear();
  }

  /** close flushes history.jsonl. */
  close(): Promise<void> {
    const out = this.out;
    if (!out) return Promise.resolve();
    return new Promise((resolve) => out.end(resolve));
  }

  private push(entry: HistoryEntry): void {
    this.entries.push(entry);
    // JSON has no Infinity; a never-completed return is written as null.
    this.out?.write(`${JSON.stringify(entry, (_k, v) => (v === Number.POSITIVE_INFINITY ? null : v))}\n`);
  }
}
