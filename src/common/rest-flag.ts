/**
 * The process's "at rest" V8 setting (src/agent/idle-heap.ts decides when): V8's
 * --optimize-for-size, under which its memory reducer collects at its next timer. Kept here, in
 * one place, because the flag is process-wide and has a second effect: V8 implies
 * --max-semi-space-size=1 with it, and an isolate created meanwhile — a balancing worker started
 * again after a crash — keeps that 1 MB semi-space for its whole life, whatever its resourceLimits
 * say (measured: a new worker's new space 2 MiB instead of 8). So:
 *  - code that creates an isolate holds the setting off until the isolate exists (holdRestOff);
 *  - clearing the setting puts the semi-space flag back to what the process started with.
 */
import { setFlagsFromString } from "node:v8";

let resting = false;
let holds = 0;
let applied = false;
let setFlags: (flags: string) => void = setFlagsFromString;

/**
 * startingSemiSpaceMb is --max-semi-space-size as the process was started (its arguments or
 * NODE_OPTIONS), 0 when it was not given: V8's own sizing.
 */
export function startingSemiSpaceMb(args: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]): number {
  let mb = 0;
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(args[i] as string);
    if (!m) continue;
    const v = m[1] ?? args[i + 1];
    if (v !== undefined && /^\d+$/.test(v)) mb = Number(v);
  }
  return mb;
}

const STARTING_SEMI_SPACE_MB = startingSemiSpaceMb();

function apply(): void {
  const on = resting && holds === 0;
  if (on === applied) return;
  applied = on;
  if (on) {
    setFlags("--optimize-for-size");
  } else {
    setFlags("--no-optimize-for-size");
    setFlags(`--max-semi-space-size=${STARTING_SEMI_SPACE_MB}`);
  }
}

/** setResting turns the setting on (the process rests) or off; a hold keeps it off meanwhile. */
export function setResting(on: boolean): void {
  resting = on;
  apply();
}

/** restFlagApplied says whether V8's flag is set right now. */
export function restFlagApplied(): boolean {
  return applied;
}

/**
 * holdRestOff keeps the setting off until the returned release is called (once; more calls do
 * nothing): for the time it takes a new isolate to size its heap.
 */
export function holdRestOff(): () => void {
  holds++;
  apply();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holds--;
    apply();
  };
}

/** setRestFlagSetter replaces V8's setter (tests); it returns the previous one. */
export function setRestFlagSetter(f: (flags: string) => void): (flags: string) => void {
  const prev = setFlags;
  setFlags = f;
  return prev;
}
