/**
 * Upgrade passthrough (WebSocket and the like): the request head is written to a picked instance
 * as received (Connection and Upgrade kept, x-forwarded-for added, the /svc/<service> prefix
 * stripped), then bytes flow both ways untouched until either side closes.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { SecureContext } from "node:tls";
import { LineKind, type RequestHead } from "./h1/head-parser.js";
import { rawError } from "./responses.js";
import type { RouteTable } from "./route-table.js";
import { routeOf, SVC_PREFIX } from "./routing.js";
import { dialTls, upstreamTlsOf } from "./tls.js";

/** handleUpgrade tunnels one upgrade request (head: buf[0, head.end); bytes after it are the client's first tunnel bytes); tlsContext dials services with upstreamTls. */
export function handleUpgrade(routes: RouteTable, client: Socket, buf: Buffer, head: RequestHead, remote: string, tlsContext?: () => SecureContext): void {
  const target = routeOf(head.target, head.target.startsWith(SVC_PREFIX) ? undefined : head.host);
  const route = target ? routes.get(target.service) : undefined;
  client.on("error", () => {});
  if (!target || !route) {
    client.end(rawError(404, "unknown-service", "no service of this name is registered"));
    return;
  }
  const ep = route.mode === "master-slave" ? route.master : route.balancer.pick({}, performance.now());
  if (!ep) {
    client.end(rawError(503, "no-healthy-instance", "the service has no healthy instance"));
    return;
  }
  const tls = tlsContext && upstreamTlsOf(route.table.config);
  const up: Socket = tls ? dialTls(ep.address, ep.port, tlsContext(), tls, ["http/1.1"]) : connect({ host: ep.address, port: ep.port, noDelay: true });
  let lines = `${head.method} ${target.path} HTTP/1.1\r\n`;
  const l = head.lines;
  for (let i = 0; i < l.length; i += 3) {
    const kind = l[i + 2]!;
    if (kind === LineKind.ForwardedFor || (kind === LineKind.Epoch && route.master)) continue;
    lines += `${buf.toString("latin1", l[i]!, l[i + 1]!)}\r\n`;
  }
  lines += `x-forwarded-for: ${head.forwardedFor !== undefined ? `${head.forwardedFor}, ${remote}` : remote}\r\n`;
  if (route.master) lines += `x-raftmesh-epoch: ${route.epochHeader}\r\n`;
  up.write(Buffer.from(`${lines}\r\n`, "latin1"));
  if (buf.length > head.end) up.write(buf.subarray(head.end));
  up.once("error", () => {
    if (client.writable && client.bytesWritten === 0) client.end(rawError(502, "upstream-failed", "the instance could not be reached"));
    else client.destroy();
  });
  client.once("close", () => up.destroy());
  up.once("close", () => client.destroy());
  up.pipe(client);
  client.pipe(up);
}
