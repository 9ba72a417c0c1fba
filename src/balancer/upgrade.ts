/**
 * Upgrade passthrough (WebSocket and the like): the request head is written to a picked instance
 * as received (Connection and Upgrade kept, x-forwarded-for added), then bytes flow both ways
 * untouched until either side closes.
 */
import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import { rawError } from "./responses.js";
import type { RouteTable } from "./route-table.js";
import { routeOf } from "./routing.js";

/** handleUpgrade tunnels one upgrade request to an instance of its service. */
export function handleUpgrade(routes: RouteTable, req: IncomingMessage, client: Duplex, head: Buffer): void {
  const target = routeOf(req.url ?? "/", req.headers.host);
  const route = target ? routes.get(target.service) : undefined;
  if (!target || !route) {
    client.end(rawError(404, "unknown-service", "no service of this name is registered"));
    return;
  }
  const ep = route.mode === "master-slave" ? route.master : route.balancer.pick({}, performance.now());
  if (!ep) {
    client.end(rawError(503, "no-healthy-instance", "the service has no healthy instance"));
    return;
  }
  const up: Socket = connect({ host: ep.address, port: ep.port });
  let lines = `${req.method} ${target.path} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
  lines += `x-forwarded-for: ${req.socket.remoteAddress ?? ""}\r\n`;
  if (route.master) lines += `x-raftmesh-epoch: ${route.epochHeader}\r\n`;
  up.write(`${lines}\r\n`);
  if (head.length > 0) up.write(head);
  up.once("error", () => {
    if (client.writable && (client as Socket).bytesWritten === 0) client.end(rawError(502, "upstream-failed", "the instance could not be reached"));
    else client.destroy();
  });
  client.once("error", () => up.destroy());
  client.once("close", () => up.destroy());
  up.once("close", () => client.destroy());
  up.pipe(client);
  client.pipe(up);
}
