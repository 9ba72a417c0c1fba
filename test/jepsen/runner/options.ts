/**
 * The runner's command line, parsed by a pure function so it is tested without a cluster.
 * Bad usage is a UsageError (the runner exits 2).
 */
import { parseArgs } from "node:util";
import { SNAPSHOT_ENTRIES_RANGE } from "../../../src/config/schema.js";
import { CLUSTER_KINDS, type ClusterKind } from "./cluster-factory.js";
import { DEFAULT_NEMESES, NEMESIS_FAMILIES, type NemesisFamily } from "./nemesis.js";
import { PARTITION_NAMES, type PartitionName } from "./partitions.js";

/** WORKLOAD_NAMES are the values of --workload. */
export const WORKLOAD_NAMES = ["register", "set", "lease", "watch", "session", "master"] as const;
/** UNSAFE_SWITCHES are the node's test-only switches accepted by --unsafe (see src/agent/unsafe.ts). */
export const UNSAFE_SWITCHES = ["stale-reads", "early-ack", "unconfirmed-lease-ack", "fast-lease-clock", "zero-demotion-margin", "ignore-lost-renewals", "slow-clock"] as const;
/** INSTANCE_UNSAFE_SWITCHES go to the master workload's backends (src/demo/main.ts), not to the nodes. */
export const INSTANCE_UNSAFE_SWITCHES = ["zero-demotion-margin", "ignore-lost-renewals", "slow-clock"] as const;
/** CLIENT_MODES are the values of --clients (see RunOptions.clients). */
export const CLIENT_MODES = ["roaming", "pinned"] as const;

/** RunOptions are everything a run needs, with units in the names. */
export interface RunOptions {
  readonly workload: (typeof WORKLOAD_NAMES)[number];
  readonly nemesis: readonly NemesisFamily[];
  /** partitions are the shapes the partition nemesis picks from (all of PARTITION_NAMES by default). */
  readonly partitions: readonly PartitionName[];
  /**
   * clients: roaming clients (the default) reach every node and move to the next after a failure;
   * pinned clients reach only their own node, so a partition cuts them off together with it (the
   * lease workload's instances keep heartbeating through an isolated old leader).
   */
  readonly clients: (typeof CLIENT_MODES)[number];
  readonly timeLimitMs: number;
  readonly seed: number;
  readonly cluster: ClusterKind;
  readonly concurrency: number;
  readonly rateHz: number;
  readonly opTimeoutMs: number;
  /** snapshotEntries is every agent's RAFTMESH_SNAPSHOT_ENTRIES; undefined leaves the agent's default. */
  readonly snapshotEntries: number | undefined;
  readonly warmupMs: number;
  readonly recoveryMs: number;
  readonly faultHoldMs: number;
  readonly faultRestMs: number;
  readonly checkBudgetMs: number;
  readonly unsafe: readonly (typeof UNSAFE_SWITCHES)[number][];
  readonly unsafeBlindRetry: boolean;
  readonly runsDir: string;
  readonly help: boolean;
}

/** UsageError is bad command-line usage (exit status 2). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** USAGE is printed by --help and after a usage error. */
export const USAGE = `usage: npm run jepsen -- [options]
  --workload register|set|lease|watch|session|master   (default register)
  --nemesis partition,kill,pause,membership,clock,deaf-leader,isolate-master,pause-master|none   fault families (default partition,kill,pause)
  --partitions NAME[,NAME]   shapes the partition nemesis picks from (default all: ${PARTITION_NAMES.join(", ")})
  --clients roaming|pinned   roaming (default): clients reach every node and move on after a failure;
                        pinned: each client reaches only its own node and is cut off with it (lease workload)
  --time-limit S        seconds of faults (default 60)
  --seed N              seed of every random choice (default: random, printed)
  --cluster netns|loopback   netns: real harness (default); loopback: runner development only
  --concurrency N       client processes (default 10)
  --rate HZ             operations per second, all processes together (default 50)
  --op-timeout-ms MS    deadline of every client call (default 1000; 8000 lets late answers arrive)
  --snapshot-entries N  every node snapshots every N applied entries (100 to 10000000; default: the agent's 10000)
  --warmup-ms MS        load without faults before the first fault (default 3000)
  --recovery-ms MS      load without faults after the heal (default 10000)
  --fault-hold-ms MS    how long a fault lasts, +-50% (default 4000)
  --fault-rest-ms MS    rest between faults, +-50% (default 2000)
  --check-budget-ms MS  linearizability search budget per key (default 30000)
  --unsafe NAME[,NAME]  negative control in the node: ${UNSAFE_SWITCHES.join(", ")}
                        (${INSTANCE_UNSAFE_SWITCHES.join(", ")}: in the master workload's backends)
  --unsafe-blind-retry  negative control in the client: retry timed-out writes blindly
  --runs-dir DIR        where run folders go (default runs)`;

function intFlag(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name}: "${raw}" is not a whole number`);
  const v = Number(raw);
  if (v < min || v > max) throw new UsageError(`--${name}: ${v} is outside [${min}, ${max}]`);
  return v;
}

function oneOf<T extends string>(raw: string, name: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new UsageError(`--${name}: "${raw}" is not one of ${allowed.join(", ")}`);
  return raw as T;
}

function listOf<T extends string>(raw: string, name: string, allowed: readonly T[]): T[] {
  return [...new Set(raw.split(",").map((s) => s.trim()).filter(Boolean))].map((s) => oneOf(s, name, allowed));
}

/** parseRunOptions parses argv (without node and script); randomSeed is used when --seed is absent. */
export function parseRunOptions(argv: readonly string[], randomSeed: number): RunOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        workload: { type: "string" },
        nemesis: { type: "string" },
        partitions: { type: "string" },
        clients: { type: "string" },
        "time-limit": { type: "string" },
        seed: { type: "string" },
        cluster: { type: "string" },
        concurrency: { type: "string" },
        rate: { type: "string" },
        "op-timeout-ms": { type: "string" },
        "snapshot-entries": { type: "string" },
        "warmup-ms": { type: "string" },
        "recovery-ms": { type: "string" },
        "fault-hold-ms": { type: "string" },
        "fault-rest-ms": { type: "string" },
        "check-budget-ms": { type: "string" },
        unsafe: { type: "string" },
        "unsafe-blind-retry": { type: "boolean" },
        "runs-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const workload = oneOf(str("workload") ?? "register", "workload", WORKLOAD_NAMES);
  const nemesisRaw = str("nemesis") ?? DEFAULT_NEMESES.join(",");
  const unsafeBlindRetry = values["unsafe-blind-retry"] === true;
  if (unsafeBlindRetry && workload !== "register") throw new UsageError("--unsafe-blind-retry applies to the register workload only");
  const clients = oneOf(str("clients") ?? "roaming", "clients", CLIENT_MODES);
  if (clients === "pinned" && workload !== "lease") throw new UsageError("--clients pinned applies to the lease workload only");
  const unsafeRaw = str("unsafe") === undefined ? [] : listOf(str("unsafe") as string, "unsafe", UNSAFE_SWITCHES);
  if (workload !== "master" && unsafeRaw.some((u) => (INSTANCE_UNSAFE_SWITCHES as readonly string[]).includes(u))) throw new UsageError(`--unsafe ${INSTANCE_UNSAFE_SWITCHES.join("/")} apply to the master workload only`);
  const partitions = str("partitions") === undefined ? [...PARTITION_NAMES] : listOf(str("partitions") as string, "partitions", PARTITION_NAMES);
  if (partitions.length === 0) throw new UsageError("--partitions: name at least one shape");
  return {
    workload,
    nemesis: nemesisRaw === "none" ? [] : listOf(nemesisRaw, "nemesis", NEMESIS_FAMILIES),
    partitions,
    clients,
    timeLimitMs: intFlag(str("time-limit"), "time-limit", 60, 1, 86_400) * 1_000,
    seed: intFlag(str("seed"), "seed", randomSeed, 0, 4_294_967_295),
    cluster: oneOf(str("cluster") ?? "netns", "cluster", CLUSTER_KINDS),
    concurrency: intFlag(str("concurrency"), "concurrency", 10, 1, 200),
    rateHz: intFlag(str("rate"), "rate", 50, 1, 10_000),
    opTimeoutMs: intFlag(str("op-timeout-ms"), "op-timeout-ms", 1_000, 50, 60_000),
    snapshotEntries: str("snapshot-entries") === undefined ? undefined : intFlag(str("snapshot-entries"), "snapshot-entries", 0, ...SNAPSHOT_ENTRIES_RANGE),
    warmupMs: intFlag(str("warmup-ms"), "warmup-ms", 3_000, 0, 600_000),
    recoveryMs: intFlag(str("recovery-ms"), "recovery-ms", 10_000, 0, 600_000),
    faultHoldMs: intFlag(str("fault-hold-ms"), "fault-hold-ms", 4_000, 100, 600_000),
    faultRestMs: intFlag(str("fault-rest-ms"), "fault-rest-ms", 2_000, 0, 600_000),
    checkBudgetMs: intFlag(str("check-budget-ms"), "check-budget-ms", 30_000, 100, 3_600_000),
    unsafe: unsafeRaw,
    unsafeBlindRetry,
    runsDir: str("runs-dir") ?? "runs",
    help: values.help === true,
  };
}
