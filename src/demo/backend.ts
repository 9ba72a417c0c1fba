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

/** MasterView is what the backend needs of a master session. */
export interface MasterView {
  isMaster(): boolean;
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

  close(): Promise<void> {
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
      if (!res.headersSent) this.answer(res, isWrite, headerEpoch);
    });
  }

  private answer(res: ServerResponse, isWrite: boolean, headerEpoch: number | null): void {
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
