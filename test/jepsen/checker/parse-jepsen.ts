/**
 * Parsers for recorded Jepsen-style histories (the shared linearizability test data), turning
 * them into checker histories. Time is the line number: the logs are in real-time order and
 * carry no timestamps, and distinct line numbers mean no two events ever tie.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { History, Operation, OpStatus } from "./history.js";
import type { Verdict } from "./linearizability.js";
import type { KvInput, KvOutput, RegisterInput, RegisterOutput } from "./models.js";

/** Pending is an invocation not yet matched with its completion. */
interface Pending<I> {
  readonly input: I;
  readonly call: number;
}

/**
 * Recorder pairs invocations with completions per process. An invocation left without a
 * completion at the end becomes an indeterminate operation (status info, return Infinity).
 */
class Recorder<I, O> {
  private readonly pending = new Map<number, Pending<I>>();
  readonly ops: Operation<I, O>[] = [];

  invoke(process: number, input: I, time: number): void {
    if (this.pending.has(process)) this.close(process, "info", undefined, Infinity);
    this.pending.set(process, { input, call: time });
  }

  complete(process: number, status: OpStatus, output: O | undefined, time: number): void {
    this.close(process, status, output, status === "info" ? Infinity : time);
  }

  finish(): History<I, O> {
    for (const process of [...this.pending.keys()]) {
      this.close(process, "info", undefined, Infinity);
    }
    return this.ops;
  }

  private close(process: number, status: OpStatus, output: O | undefined, ret: number): void {
    const p = this.pending.get(process);
    if (p === undefined) throw new Error(`process ${process}: completion without an invocation`);
    this.pending.delete(process);
    this.ops.push({ clientId: process, input: p.input, output, call: p.call, return: ret, status });
  }
}

// Columns may be separated by tabs or by runs of spaces (both occur in the data).
const ETCD_LINE =
  /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

function parseEtcdValue(s: string): number | null {
  if (s === "nil") return null;
  const v = Number(s);
  if (!Number.isInteger(v)) throw new Error(`etcd log: bad value ${JSON.stringify(s)}`);
  return v;
}

function parseEtcdNumber(s: string): number {
  const v = parseEtcdValue(s);
  if (v === null) throw new Error("etcd log: nil where a value is needed");
  return v;
}

function parseEtcdInput(f: string, arg: string): RegisterInput {
  if (f === "read") return { f: "read" };
  if (f === "write") return { f: "write", value: parseEtcdNumber(arg) };
  const m = /^\[(\S+)\s+(\S+)\]$/.exec(arg);
  if (m === null) throw new Error(`etcd log: bad cas argument ${JSON.stringify(arg)}`);
  return { f: "cas", from: parseEtcdNumber(m[1]!), to: parseEtcdNumber(m[2]!) };
}

/**
 * parseEtcdLog reads a Jepsen etcd register log. Only `jepsen.util - <process> ...` lines count.
 *
 * - `:ok :read v|nil`: read observed v (null for nil). `:ok :write`: completed, observes nothing.
 *   `:ok :cas`: swapped (output true).
 * - `:fail :cas`: the compare failed. That is a result, not a non-execution: recorded as status
 *   fail with output false, which the checker keeps as a completed, read-like operation.
 * - `:fail :read` (timed out): recorded as fail without output, so the checker drops it; a read
 *   has no effect and this one's answer was lost, so it constrains nothing.
 * - `:fail` of a write: Jepsen's fail means it definitely did not happen: dropped likewise.
 * - `:info`, or no completion at all: indeterminate.
 */
export function parseEtcdLog(text: string): History<RegisterInput, RegisterOutput> {
  const rec = new Recorder<RegisterInput, RegisterOutput>();
  let time = 0;
  for (const line of text.split("\n")) {
    const m = ETCD_LINE.exec(line);
    if (m === null) continue;
    const [, proc, type, f, arg] = m as unknown as [string, string, string, string, string];
    const process = Number(proc);
    time++;
    if (type === "invoke") rec.invoke(process, parseEtcdInput(f, arg), time);
    else if (type === "info") rec.complete(process, "info", undefined, time);
    else if (type === "ok") {
      const output = f === "read" ? parseEtcdValue(arg) : f === "cas" ? true : undefined;
      rec.complete(process, "ok", output, time);
    } else rec.complete(process, "fail", f === "cas" ? false : undefined, time);
  }
  return rec.finish();
}

/** parseVerdicts reads a VERDICTS file: one `file verdict` pair a line. */
export function parseVerdicts(text: string): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>();
  for (const line of text.split("\n")) {
    const [file, verdict] = line.trim().split(/\s+/);
    if (!file || !verdict) continue;
    if (verdict !== "linearizable" && verdict !== "not-linearizable") {
      throw new Error(`VERDICTS: bad verdict ${JSON.stringify(verdict)} for ${file}`);
    }
    verdicts.set(file, verdict);
  }
  return verdicts;
}

const EDN_STRING = String.raw`"((?:[^"\\]|\\.)*)"`;
const KV_FIELDS = {
  process: /:process\s+(\d+)/,
  type: /:type\s+:(invoke|ok|fail|info)\b/,
  f: /:f\s+:(get|put|append)\b/,
  key: new RegExp(`:key\\s+${EDN_STRING}`),
  value: new RegExp(`:value\\s+(?:nil|${EDN_STRING})`),
};

function ednUnescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}

function kvField(line: string, field: keyof typeof KV_FIELDS): RegExpExecArray {
  const m = KV_FIELDS[field].exec(line);
  if (m === null) throw new Error(`kv history: no ${field} in ${line}`);
  return m;
}

/**
 * parseKvHistory reads EDN-like get/put/append lines such as
 * `{:process 0, :type :invoke, :f :get, :key "k", :value nil}`. An `:ok :get` observes its value
 * (nil, should it occur, is the empty string: the model's absent key); put and append observe
 * nothing. `:fail` means not executed (dropped), `:info` or a missing
 * completion is indeterminate.
 */
export function parseKvHistory(text: string): History<KvInput, KvOutput> {
  const rec = new Recorder<KvInput, KvOutput>();
  let time = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    time++;
    const process = Number(kvField(line, "process")[1]);
    const type = kvField(line, "type")[1] as "invoke" | OpStatus;
    const f = kvField(line, "f")[1] as KvInput["f"];
    const key = ednUnescape(kvField(line, "key")[1]!);
    const raw = kvField(line, "value")[1];
    const value = raw === undefined ? undefined : ednUnescape(raw);
    if (type === "invoke") {
      const input: KvInput = f === "get" ? { f, key } : { f, key, value: value ?? "" };
      rec.invoke(process, input, time);
    } else {
      rec.complete(process, type, type === "ok" && f === "get" ? (value ?? "") : undefined, time);
    }
  }
  return rec.finish();
}

/** Dataset is one recorded history with the verdict it must get. */
export interface Dataset<I, O> {
  readonly name: string;
  readonly history: History<I, O>;
  readonly verdict: Verdict;
}

/**
 * loadDatasets reads every file of `dir` listed in its VERDICTS file (files not listed there,
 * like etcd_095.log whose cluster never started, are skipped) and parses it with `parse`.
 */
export function loadDatasets<I, O>(
  dir: string,
  parse: (text: string) => History<I, O>,
): Dataset<I, O>[] {
  const verdicts = parseVerdicts(readFileSync(join(dir, "VERDICTS"), "utf8"));
  const files = new Set(readdirSync(dir));
  return [...verdicts].map(([name, verdict]) => {
    if (!files.has(name)) throw new Error(`${dir}: VERDICTS lists missing file ${name}`);
    return { name, verdict, history: parse(readFileSync(join(dir, name), "utf8")) };
  });
}
