import { echo } from "../common/echo.js";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TlsFiles } from "../common/tls.js";

/**
 * TEST_CLOCK_OFFSET_MS_MAX bounds the test clock shift: a week. The clock nemesis jumps by up to
 * ±2 days, past every lease, session (1 h) and reap timeout, with room to spare; the bound only
 * keeps a typo from moving the clock by years.
 */
export const TEST_CLOCK_OFFSET_MS_MAX = 7 * 24 * 3_600_000;

/**
 * READY_APPLY_LAG_MAX is how far behind what it knows committed a node may apply and still be
 * ready (/readyz): "caught up". A second or so of writes at the throughput a node sustains; a node
 * further behind serves stale reads and watches late, and a load balancer should skip it.
 */
export const READY_APPLY_LAG_MAX = 1_000;

/**
 * readiness is /readyz's answer: running, knowing a leader, applying within READY_APPLY_LAG_MAX of
 * the commit index, and nothing else the node serves still starting (notServing: the balancing
 * endpoint's reason, see AdminSources.notServing).
 */
export function readiness(running: boolean, st: { leader: string; commit?: unknown; applied?: unknown }, notServing?: string): { ok: boolean; reason?: string } {
  if (!running) return { ok: false, reason: "node stopped" };
  if (st.leader === "") return { ok: false, reason: "no leader known" };
  const lag = Number(st.commit ?? 0) - Number(st.applied ?? 0);
  if (lag > READY_APPLY_LAG_MAX) return { ok: false, reason: `applied index ${lag} entries behind the commit index (limit ${READY_APPLY_LAG_MAX})` };
  if (notServing !== undefined) return { ok: false, reason: notServing };
  return { ok: true };
}

/** AdminRoute answers a request it knows (true) or leaves it to the next (false). */
export type AdminRoute = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

/** AdminSources are what the admin endpoint reports. */
export interface AdminSources {
  /** status is this node's view (Cluster.Status). */
  status(): { leader: string } & Record<string, unknown>;
  /** running is false once the node has stopped or failed. */
  running(): boolean;
  /**
   * notServing, when given, says why a part of the node that takes traffic is not serving yet (the
   * balancing endpoint before its workers listen, or while one restarts), undefined once it is.
   * /readyz answers 503 with it: the agent starts its workers after Raft and the client API, so a
   * node knows its leader before its endpoint listens.
   */
  notServing?: () => string | undefined;
  /** clock, when given, is shifted by POST /test/clock?offset_ms=N (a test-only control). */
  clock?: { setOffset(ms: number): void; readonly offset: number };
  /** metrics, when on, is served by GET /metrics in the Prometheus text format. */
  metrics?: { readonly contentType: string; text(): Promise<string> };
  /** routes are further GET handlers (the status page, its data and event stream), tried in order before 404. */
  routes?: readonly AdminRoute[];
  /** local, when the node runs a local agent, serves POST /reload and POST /services?name=file.json. */
  local?: LocalControl;
  /**
   * authorize, when access control is on, checks a request's Authorization header before any path
   * but the liveness and readiness checks (ADMIN_OPEN_PATHS); it returns the refusal (401 or 403
   * with the reason), or undefined to go on.
   */
  authorize?: (authorization: string | undefined, method: string, path: string) => { status: 401 | 403; error: string } | undefined;
  /** tls, when given, serves HTTPS with the node's certificate (taken again when the files change); clientAuth asks clients for a certificate of the CA. */
  tls?: { files: TlsFiles; clientAuth: boolean };
}

/** LocalControl is what the admin endpoint asks of the local agent (src/local's LocalAgent fits). */
export interface LocalControl {
  reload(): Promise<unknown>;
  /** writeDefinition validates and writes a definition file, then reloads; a bad one throws an error with `field` (nothing written). */
  writeDefinition(name: string, text: string): Promise<unknown>;
}

/** ADMIN_OPEN_PATHS answer without a token even with access control on: probes (Docker, load balancers) carry none, and they say only up or not. */
export const ADMIN_OPEN_PATHS: ReadonlySet<string> = new Set(["/health", "/healthz", "/readyz"]);

/** ADMIN_BODY_BYTES_MAX bounds a definition posted to /services: the local agent's definition file limit (1 MiB). */
export const ADMIN_BODY_BYTES_MAX = 1024 * 1024;

/**
 * AdminHttp serves the admin endpoint: GET /healthz (200 while the process is up), GET /readyz
 * (200 when this node runs, knows a leader, is caught up and its endpoint listens, see readiness; 503 otherwise, so a
 * load balancer or Docker healthcheck skips a node cut off from the cluster or far behind),
 * GET /health (the older check: running and a leader known), GET /status (this node's view as
 * JSON), and whatever its routes answer (the status page).
 */
export class AdminHttp {
  private readonly server: Server;

  constructor(private readonly sources: AdminSources) {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const tls = sources.tls;
    if (tls) {
      const https = createHttpsServer({ ...tls.files.secureContextOptions(), requestCert: tls.clientAuth, rejectUnauthorized: tls.clientAuth }, handler);
      // New connections use the new certificate; open ones carry on with theirs.
      tls.files.onChange(() => https.setSecureContext(tls.files.secureContextOptions()));
      this.server = https;
    } else {
      this.server = createServer(handler);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const refused = ADMIN_OPEN_PATHS.has(path) ? undefined : this.sources.authorize?.(req.headers.authorization, req.method ?? "GET", path);
    if (refused) {
      req.resume();
      res.writeHead(refused.status, { "content-type": "application/json", ...(refused.status === 401 ? { "www-authenticate": 'Bearer realm="raftmesh"' } : {}) });
      res.end(`${JSON.stringify({ error: refused.error })}\n`);
      return;
    }
    const clock = this.sources.clock;
    if (path === "/test/clock" && clock) {
      const raw = new URL(req.url ?? "/", "http://x").searchParams.get("offset_ms");
      if (req.method === "POST") {
        if (raw === null || !/^-?\d+$/.test(raw) || Math.abs(Number(raw)) > TEST_CLOCK_OFFSET_MS_MAX) {
          send(res, 400, { error: `offset_ms must be an integer within ±${TEST_CLOCK_OFFSET_MS_MAX}` });
          return;
        }
        clock.setOffset(Number(raw));
      }
      send(res, 200, { offsetMs: clock.offset });
    } else if ((path === "/reload" || path === "/services") && req.method === "POST") {
      void this.handleLocal(path, req, res);
    } else if (req.method !== "GET") {
      send(res, 405, { error: "only GET is served here" });
    } else if (path === "/health") {
      const status = this.sources.status();
      const running = this.sources.running();
      const ok = running && status.leader !== "";
      send(res, ok ? 200 : 503, { ok, leader: status.leader, reason: ok ? undefined : running ? "no leader known" : "node stopped" });
    } else if (path === "/healthz") {
      send(res, 200, { ok: true, running: this.sources.running() });
    } else if (path === "/readyz") {
      const status = this.sources.status();
      const r = readiness(this.sources.running(), status, this.sources.notServing?.());
      send(res, r.ok ? 200 : 503, { ...r, leader: status.leader, commit: status.commit, applied: status.applied });
    } else if (path === "/status") {
      send(res, 200, this.sources.status());
    } else if (path === "/metrics") {
      this.serveMetrics(res);
    } else if (this.sources.routes?.some((route) => route(req, res, path))) {
      // answered by a route
    } else {
      send(res, 404, { error: `no such path ${echo(path)}; try /health or /status` });
    }
  }

  private async handleLocal(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const local = this.sources.local;
    if (!local) {
      req.resume();
      send(res, 404, { error: "this node runs no local agent (set servicesDir / --services-dir)" });
      return;
    }
    try {
      if (path === "/reload") {
        req.resume();
        send(res, 200, await local.reload());
        return;
      }
      const name = new URL(req.url ?? "/", "http://x").searchParams.get("name") ?? "";
      const text = await readBody(req, ADMIN_BODY_BYTES_MAX);
      if (text === undefined) {
        send(res, 413, { error: `a definition is at most ${ADMIN_BODY_BYTES_MAX} bytes` });
        return;
      }
      send(res, 200, await local.writeDefinition(name, text));
    } catch (err) {
      const e = err as { field?: string; message?: string };
      if (typeof e.field === "string") send(res, 400, { error: e.message, field: e.field });
      else send(res, 500, { error: String(err) });
    }
  }

  /** serveMetrics answers GET /metrics: the node's series, or 404 naming the switch when metrics are off. */
  private serveMetrics(res: ServerResponse): void {
    const metrics = this.sources.metrics;
    if (!metrics) {
      send(res, 404, { error: "metrics are off on this node (configuration field metrics: false)" });
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(text);
      },
      (err: unknown) => send(res, 500, { error: `metrics failed: ${err instanceof Error ? err.message : String(err)}` }),
    );
  }

  /** listen binds "host:port" and returns the bound port. */
  listen(address: string): Promise<number> {
    const cut = address.lastIndexOf(":");
    const host = address.slice(0, cut).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(cut + 1));
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        const addr = this.server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** readBody reads a request body as UTF-8, or undefined past maxBytes. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      bytes += c.length;
      if (bytes <= maxBytes) chunks.push(c);
    });
    req.on("end", () => resolve(bytes > maxBytes ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(`${JSON.stringify(body)}\n`);
}
