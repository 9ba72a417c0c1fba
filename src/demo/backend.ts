/**
 * The demo backend: a small HTTP service that runs a master session and shows what fencing means
 * to a backend. It answers reads as master or standby and writes only as master, and it refuses
 * (409, JSON body) every request whose `x-raftmesh-epoch` is older than the newest epoch it has
 * seen, from a request or from the cluster: a client or proxy that still believes in a deposed
 * master is turned away by the backend itself, whatever the network did.
 *
 * Routes: GET /status (role and epochs), GET /read, POST /write. Every accepted write and every
 * change of role goes to the optional `record` callback with the host's monotonic time, which is
 * what the failover tests judge.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BadEpochHeader } from "./errors.js";

/** EPOCH_HEADER carries the epoch the sender believes current (the fencing token). */
export const EPOCH_HEADER = "x-raftmesh-epoch";
/** WRITE_BODY_BYTES_MAX bounds a write's body: the demo stores nothing, it only counts writes. */
export const WRITE_BODY_BYTES_MAX = 64 * 1024;

/**
 * PROMOTION_WAIT_MS_MAX bounds how long a write that the endpoint sent to this instance as master
 * of an epoch it is not master of (yet) waits for the session to be promoted before it is refused.
 * In a failover the endpoint's table names the new master at about the moment the new master's
 * session sends the heartbeat whose answer promotes it: 30-160 ms on a loaded 2-core machine (the
 * crash failover bench, test/bench/failover/crash.ts). 500 ms covers that with room, as the
 * endpoint's own wait for a new master does (MASTER_WAIT_MS_MAX, src/balancer/limits.ts), and
 * stays far below a client's timeout.
 */
export const PROMOTION_WAIT_MS_MAX = 500;

/** MasterView is what the backend needs of a master session. */
export interface MasterView {
  isMaster(): boolean;
  /** heartbeatNow asks the cluster for this instance's role at once (MasterSession.heartbeatNow). */
  heartbeatNow?(): void;
  /** epoch is the epoch this instance is master of, 0 when it is not master. */
  readonly epoch: number;
  /** newestEpoch is the newest epoch the session heard of. */
  readonly newestEpoch: number;
}

/** BackendRecord is one thing the backend did, stamped with the host's monotonic time (ms). */
export type BackendRecord =
  | { readonly type: "write"; readonly t: number; readonly epoch: number; readonly seq: number; readonly headerEpoch: number | null }
  | { readonly type: "reject"; readonly t: number; readonly reason: string; readonly headerEpoch: number | null; readonly newest: number };

/** Rejection is the 409 body: why, the epoch the request carried and the newest the backend knows. */
export interface Rejection {
  readonly error: "stale-epoch" | "not-master" | "epoch-mismatch";
  readonly id: string;
  readonly requestEpoch: number | null;
  readonly newestEpoch: number;
  readonly epoch: number;
}

/** DemoBackendOptions configure a backend. */
export interface DemoBackendOptions {
  readonly id: string;
  readonly session: MasterView;
  /** now is the host's monotonic clock in ms (the stamp of every record). */
  readonly now: () => number;
  readonly record?: (r: BackendRecord) => void;
}

/** hostMonotonicMs is CLOCK_MONOTONIC in ms: the same clock in every process of the host. */
export function hostMonotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** parseEpochHeader reads the header: absent → null; otherwise a non-negative safe integer. */
export function parseEpochHeader(raw: string | string[] | undefined): number | null {
  if (raw === undefined) return null;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || !/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new BadEpochHeader(`${EPOCH_HEADER}: "${String(v)}" is not a non-negative integer`);
  return Number(v);
}

/** DemoBackend: see the module comment. */
export class DemoBackend {
  private readonly server: Server;
  private newestFromRequests = 0;
  private seq = 0;
  /** promotionWaits: the writes waiting for this instance's promotion (see awaitPromotion). */
  private readonly promotionWaits = new Set<() => void>();

  constructor(private readonly opts: DemoBackendOptions) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  /** newestEpoch is the newest epoch seen from the cluster or any request. */
  get newestEpoch(): number {
    return Math.max(this.newestFromRequests, this.opts.session.newestEpoch);
  }

  /** writes is the count of accepted writes. */
  get writes(): number {
    return this.seq;
  }

  /** listen binds host:port (0: any free port) and resolves with the port. */
  listen(port: number, host = "127.0.0.1"): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  /** roleChanged wakes the writes waiting for a promotion (call it when the session was promoted). */
  roleChanged(): void {
    for (const wake of [...this.promotionWaits]) wake();
  }

  close(): Promise<void> {
    for (const wake of [...this.promotionWaits]) wake();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let headerEpoch: number | null;
    try {
      headerEpoch = parseEpochHeader(req.headers[EPOCH_HEADER]);
    } catch (err) {
      if (!(err instanceof BadEpochHeader)) throw err;
      send(res, 400, { error: "bad-request", message: (err as Error).message });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/status") {
      send(res, 200, this.status());
      return;
    }
    const isWrite = req.method === "POST" && path === "/write";
    if (!isWrite && !(req.method === "GET" && path === "/read")) {
      send(res, 404, { error: "not-found", message: `${req.method} ${path}` });
      return;
    }
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > WRITE_BODY_BYTES_MAX) {
        send(res, 413, { error: "too-large", message: `body over ${WRITE_BODY_BYTES_MAX} bytes` });
        req.destroy();
      }
    });
    // The decision is taken when the whole request has arrived, in one turn with the answer.
    req.on("end", () => {
      if (!res.headersSent) this.answer(res, isWrite, headerEpoch, false);
    });
  }

  private answer(res: ServerResponse, isWrite: boolean, headerEpoch: number | null, waited: boolean): void {
    const newest = this.newestEpoch;
    if (headerEpoch !== null && headerEpoch < newest) {
      this.reject(res, "stale-epoch", headerEpoch, newest);
      return;
    }
    if (headerEpoch !== null) this.newestFromRequests = Math.max(this.newestFromRequests, headerEpoch);
    if (!isWrite) {
      send(res, 200, { writes: this.seq, ...this.status() });
      return;
    }
    // The endpoint sent a write to this instance as master of an epoch it is not master of: the
    // cluster has promoted it and its session has not heard yet (the endpoint's table and the
    // session's answer both follow the same failover entry). It asks at once and waits, bounded,
    // instead of refusing a write it is about to be allowed; the decision below is still taken
    // from the session alone, in one turn with the answer.
    if (isWrite && !waited && headerEpoch !== null && headerEpoch > 0 && !this.opts.session.isMaster()) {
      this.awaitPromotion(() => {
        if (!res.destroyed && !res.headersSent) this.answer(res, isWrite, headerEpoch, true);
      });
      return;
    }
    const t = this.opts.now();
    if (!this.opts.session.isMaster()) {
      this.reject(res, "not-master", headerEpoch, this.newestEpoch);
      return;
    }
    const epoch = this.opts.session.epoch;
    // A request for a newer epoch than ours was meant for the master of that epoch.
    if (headerEpoch !== null && headerEpoch !== epoch) {
      this.reject(res, "epoch-mismatch", headerEpoch, this.newestEpoch);
      return;
    }
    const seq = ++this.seq;
    this.opts.record?.({ type: "write", t, epoch, seq, headerEpoch });
    send(res, 200, { id: this.opts.id, epoch, seq });
  }

  /** awaitPromotion runs then() once the session was promoted (roleChanged) or after PROMOTION_WAIT_MS_MAX, whichever comes first. */
  private awaitPromotion(then: () => void): void {
    const wake = () => {
      if (!this.promotionWaits.delete(wake)) return;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(wake, PROMOTION_WAIT_MS_MAX);
    this.promotionWaits.add(wake);
    this.opts.session.heartbeatNow?.();
  }

  private reject(res: ServerResponse, error: Rejection["error"], requestEpoch: number | null, newestEpoch: number): void {
    this.opts.record?.({ type: "reject", t: this.opts.now(), reason: error, headerEpoch: requestEpoch, newest: newestEpoch });
    const body: Rejection = { error, id: this.opts.id, requestEpoch, newestEpoch, epoch: this.opts.session.epoch };
    send(res, 409, body);
  }

  private status() {
    const master = this.opts.session.isMaster();
    return { id: this.opts.id, role: master ? "master" : "standby", epoch: this.opts.session.epoch, newestEpoch: this.newestEpoch };
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
