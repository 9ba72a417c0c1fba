/**
 * The demo backend's command line: registers an instance of a master-slave service, runs its
 * master session and serves the demo HTTP API.
 *
 *   tsx src/demo/main.ts --endpoints 127.0.0.1:7201 --service db --id db-1 --listen 127.0.0.1:8081
 *     [--address HOST] [--ttl-ms 3000] [--margin-ms N] [--priority N] [--adopt] [--log FILE]
 *
 * Prints one JSON line {"ready":true,"port":N} once it listens. --log appends one JSON line per
 * event (promoted, demoted, answer, write, reject), stamped with the host's monotonic clock, and
 * written synchronously so that a killed process leaves every line it acted on.
 *
 * RAFTMESH_TEST_UNSAFE (negative controls of the failover suite, never for real use):
 * zero-demotion-margin (stand down only at the full TTL), ignore-lost-renewals (stay master
 * until an answer says otherwise) and slow-clock (the session's clock runs at SLOW_CLOCK_RATE).
 */
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { clientHeartbeat, MasterSession, nudgeOnMasterEvents, RaftmeshClient, type SessionClock } from "../client/index.js";
import { type BackendRecord, DemoBackend, hostMonotonicMs } from "./backend.js";
import { DemoUsageError } from "./errors.js";

/** DEMO_UNSAFE_SWITCHES are the demo's RAFTMESH_TEST_UNSAFE names. */
export const DEMO_UNSAFE_SWITCHES = ["zero-demotion-margin", "ignore-lost-renewals", "slow-clock"] as const;
/**
 * SLOW_CLOCK_RATE is the slow-clock control's rate: the session's clock runs at half the host's,
 * fifty times past the assumed bound (SELF_DEMOTION_CLOCK_RATE_BOUND), so the session stands down
 * long after the cluster has promoted another instance.
 */
export const SLOW_CLOCK_RATE = 0.5;

/** DemoArgs are the parsed command line. */
export interface DemoArgs {
  readonly endpoints: string[];
  readonly service: string;
  readonly id: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly address: string;
  readonly ttlMs: number;
  readonly marginMs: number | undefined;
  readonly priority: number | undefined;
  readonly adopt: boolean;
  readonly log: string | undefined;
  readonly unsafe: readonly (typeof DEMO_UNSAFE_SWITCHES)[number][];
}

function whole(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new DemoUsageError(`--${flag}: "${raw}" is not a whole number`);
  return Number(raw);
}

/** parseDemoArgs parses argv (without node and script) and the environment. */
export function parseDemoArgs(argv: readonly string[], env: Record<string, string | undefined>): DemoArgs {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        endpoints: { type: "string" },
        service: { type: "string" },
        id: { type: "string" },
        listen: { type: "string" },
        address: { type: "string" },
        "ttl-ms": { type: "string" },
        "margin-ms": { type: "string" },
        priority: { type: "string" },
        adopt: { type: "boolean" },
        log: { type: "string" },
      },
    }).values;
  } catch (err) {
    throw new DemoUsageError((err as Error).message);
  }
  const need = (k: string) => {
    const s = v[k];
    if (typeof s !== "string" || s === "") throw new DemoUsageError(`--${k} is required`);
    return s;
  };
  const listen = need("listen");
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m) throw new DemoUsageError(`--listen: "${listen}" is not host:port`);
  const unsafe = (env.RAFTMESH_TEST_UNSAFE ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (!(DEMO_UNSAFE_SWITCHES as readonly string[]).includes(s)) throw new DemoUsageError(`RAFTMESH_TEST_UNSAFE: unknown switch "${s}" (known: ${DEMO_UNSAFE_SWITCHES.join(", ")})`);
      return s as (typeof DEMO_UNSAFE_SWITCHES)[number];
    });
  return {
    endpoints: need("endpoints").split(",").filter(Boolean),
    service: need("service"),
    id: need("id"),
    listenHost: m[1] as string,
    listenPort: Number(m[2]),
    address: (v.address as string | undefined) ?? (m[1] as string),
    ttlMs: whole(v["ttl-ms"] as string | undefined, "ttl-ms") ?? 3_000,
    marginMs: unsafe.includes("zero-demotion-margin") ? 0 : whole(v["margin-ms"] as string | undefined, "margin-ms"),
    priority: whole(v.priority as string | undefined, "priority"),
    adopt: v.adopt === true,
    log: v.log as string | undefined,
    unsafe,
  };
}

/**
 * hostClock is the session clock on CLOCK_MONOTONIC, so its times compare across processes; at a
 * rate below 1 (the slow-clock control) it runs slower than the host's. toHost converts one of
 * its times back to host time for the log.
 */
export function hostClock(rate = 1): SessionClock & { toHost(t: number): number } {
  const origin = hostMonotonicMs();
  return {
    now: () => origin + (hostMonotonicMs() - origin) * rate,
    setTimeout: (fn, ms) => setTimeout(fn, ms / rate),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    toHost: (t) => origin + (t - origin) / rate,
  };
}

/** REGISTER_ATTEMPTS bounds the start-up registration (the cluster may still be electing). */
const REGISTER_ATTEMPTS = 60;

async function main(): Promise<number> {
  let args: DemoArgs;
  try {
    args = parseDemoArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof DemoUsageError)) throw err;
    console.error(err.message);
    return 2;
  }
  const log = (line: object) => {
    if (args.log) appendFileSync(args.log, `${JSON.stringify(line)}\n`);
  };
  // RAFTMESH_TOKEN: a write token for the demo's service, when the cluster runs with access control.
  const client = new RaftmeshClient(args.endpoints, { deadlineMs: Math.max(1_000, Math.floor(args.ttlMs / 3)), token: process.env.RAFTMESH_TOKEN || undefined });
  let session: MasterSession | undefined;
  const backend = new DemoBackend({
    id: args.id,
    now: hostMonotonicMs,
    session: {
      isMaster: () => session?.isMaster() === true,
      heartbeatNow: () => session?.heartbeatNow(),
      get epoch() {
        return session?.epoch ?? 0;
      },
      get newestEpoch() {
        return session?.newestEpoch ?? 0;
      },
    },
    record: (r: BackendRecord) => log({ id: args.id, ...r }),
  });
  const port = await backend.listen(args.listenPort, args.listenHost);
  if (!args.adopt) {
    for (let i = 0; ; i++) {
      try {
        await client.register({ id: args.id, service: args.service, address: args.address, port, ttlMs: args.ttlMs, ...(args.priority === undefined ? {} : { priority: args.priority }) });
        break;
      } catch (err) {
        if (i + 1 >= REGISTER_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  const clock = hostClock(args.unsafe.includes("slow-clock") ? SLOW_CLOCK_RATE : 1);
  session = new MasterSession(clientHeartbeat(client), {
    service: args.service,
    id: args.id,
    ttlMs: args.ttlMs,
    clock,
    ...(args.marginMs === undefined ? {} : { marginMs: args.marginMs }),
    unsafeIgnoreLostRenewals: args.unsafe.includes("ignore-lost-renewals"),
    onPromoted: (epoch) => {
      log({ id: args.id, type: "promoted", t: hostMonotonicMs(), epoch });
      backend.roleChanged();
    },
    onDemoted: (reason, epoch) => log({ id: args.id, type: "demoted", t: hostMonotonicMs(), epoch, reason, deadline: session && Number.isFinite(session.deadline) ? clock.toHost(session.deadline) : null }),
    onAnswer: (a, sentAt) => log({ id: args.id, type: "answer", t: hostMonotonicMs(), sentAt: clock.toHost(sentAt), role: a.role, epoch: a.epoch }),
  });
  session.start();
  const stopNudges = nudgeOnMasterEvents(client, session, args.service);
  console.log(JSON.stringify({ ready: true, port, unsafe: args.unsafe }));
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  stopNudges();
  session.stop();
  await backend.close();
  client.close();
  return 0;
}

if (process.argv[1]?.endsWith("/demo/main.ts") || process.argv[1]?.endsWith("/demo/main.js")) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
