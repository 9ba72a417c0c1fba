/**
 * Giving a grown heap back at rest. V8 shrinks an idle heap through its memory reducer, which
 * starts its collections only once it finds the allocation rate low, or 100 s after the last full
 * collection whatever the rate (its watchdog). A leader at rest still allocates ~0.5 MB/s
 * (heartbeats, ticks, leases), which V8 counts as high beside a 100,000-instance heap, so after a
 * load it kept 60-100 MiB of garbage for minutes (README "Benchmarks": 351-372 MB at 30 s).
 *
 * The node can tell rest better than an allocation rate: its whole process (every thread) has
 * used less than REST_CPU_SHARE_MAX of one core for REST_CHECKS checks in a row. Then it sets V8's
 * --optimize-for-size, under which the reducer treats the isolate as one in the background and
 * collects at its next timer (within ~8 s, incrementally: no long pause), and V8 sizes the heap
 * closely after those collections. The first check at WORK_CPU_SHARE_MIN or more clears the flag, so
 * under load V8 sizes and compiles as it always does. The flag is process-wide (the balancing
 * workers' isolates too), which is why the test is the whole process's CPU: a node whose control
 * plane rests while its endpoint proxies is not at rest.
 *
 * Like --heap-growing-percent (heap.ts) this changes a V8 flag at run time, which V8 reads where it
 * decides (the reducer's timer, each heap limit computation); src/common/rest-flag.ts applies it
 * and keeps it off while a new isolate sizes its heap (the flag implies a 1 MB semi-space). Measured in
 * test/bench/registry/agent-memory.ts and tested in test/integration/process/idle-heap.test.ts.
 */
import type { Logger } from "../common/logger.js";
import { setResting } from "../common/rest-flag.js";

/** IDLE_CHECK_MS: how often the node looks at its CPU to tell rest from work. */
export const IDLE_CHECK_MS = 2_000;
/** REST_CPU_SHARE_MAX: a check below this share of one core (all threads together) is quiet. */
export const REST_CPU_SHARE_MAX = 0.1;
/** REST_CHECKS: quiet checks in a row before the node counts as at rest (4 s at IDLE_CHECK_MS). */
export const REST_CHECKS = 2;
/** WORK_CPU_SHARE_MIN: a check at or above this share ends rest; between the two the state holds, so a node near the line does not flip at every check. */
export const WORK_CPU_SHARE_MIN = 0.2;

export type RestState = "rest" | "work";

/** RestDetector tells rest from work from CPU use per check; pure, so its rules are tested alone. */
export class RestDetector {
  private quiet = 0;
  private state: RestState = "work";

  constructor(
    private readonly rules = { restShareMax: REST_CPU_SHARE_MAX, workShareMin: WORK_CPU_SHARE_MIN, restChecks: REST_CHECKS },
  ) {}

  get current(): RestState {
    return this.state;
  }

  /** observe takes one check (CPU seconds of the process over elapsed seconds) and returns the new state when it changes. */
  observe(cpuSeconds: number, elapsedSeconds: number): RestState | undefined {
    if (!(elapsedSeconds > 0)) return undefined;
    const share = cpuSeconds / elapsedSeconds;
    if (this.state === "work") {
      this.quiet = share < this.rules.restShareMax ? this.quiet + 1 : 0;
      if (this.quiet < this.rules.restChecks) return undefined;
      this.state = "rest";
      return "rest";
    }
    if (share < this.rules.workShareMin) return undefined;
    this.quiet = 0;
    this.state = "work";
    return "work";
  }
}

/** IdleHeapOptions: what the controller uses, each replaceable for a test. */
export interface IdleHeapOptions {
  readonly logger?: Pick<Logger, "debug">;
  readonly checkMs?: number;
  readonly detector?: RestDetector;
  /** cpuMicros: the process's CPU time so far (user + system, every thread). */
  readonly cpuMicros?: () => number;
  /** apply: puts a new state in force (default: V8's flag, through src/common/rest-flag.ts). */
  readonly apply?: (state: RestState) => void;
  /** now: a monotonic clock in ms. */
  readonly now?: () => number;
}

/** IdleHeap is the running controller: stop() ends the checks and leaves V8's flag cleared. */
export interface IdleHeap {
  readonly state: () => RestState;
  stop(): void;
}

/** startIdleHeap checks the process's CPU every checkMs and sets V8's --optimize-for-size while it rests. */
export function startIdleHeap(opts: IdleHeapOptions = {}): IdleHeap {
  const checkMs = opts.checkMs ?? IDLE_CHECK_MS;
  const detector = opts.detector ?? new RestDetector();
  const cpuMicros = opts.cpuMicros ?? (() => {
    const u = process.cpuUsage();
    return u.user + u.system;
  });
  const apply = opts.apply ?? ((state: RestState) => setResting(state === "rest"));
  const now = opts.now ?? (() => performance.now());
  let lastCpu = cpuMicros();
  let lastAt = now();
  const timer = setInterval(() => {
    const cpu = cpuMicros();
    const at = now();
    const next = detector.observe((cpu - lastCpu) / 1e6, (at - lastAt) / 1e3);
    lastCpu = cpu;
    lastAt = at;
    if (next === undefined) return;
    apply(next);
    opts.logger?.debug({ state: next }, next === "rest" ? "at rest: V8 may give the heap back now" : "working: V8 sizes the heap for speed again");
  }, checkMs);
  // The checks never keep a stopping process alive.
  timer.unref();
  return {
    state: () => detector.current,
    stop() {
      clearInterval(timer);
      if (detector.current === "rest") apply("work");
    },
  };
}
