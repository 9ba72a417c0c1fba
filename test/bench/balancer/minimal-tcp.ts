/**
 * Bench baseline: the smallest TCP proxy Node's public socket API allows, with nothing of the
 * endpoint around it (no routing, no table, no limits, no stats): each client connection is piped
 * to the next of the given backends, round-robin. Its requests per CPU-second are the floor of a
 * Node TCP proxy on this machine; bench.ts measures it beside the endpoint's TCP listener and
 * HAProxy, so the endpoint's ratio can be read against what Node itself allows.
 * Args: <port> <backend port>...
 */
import { connect, createServer } from "node:net";

const [port, ...backends] = process.argv.slice(2).map(Number);
let next = 0;
createServer({ noDelay: true }, (client) => {
  const up = connect({ host: "127.0.0.1", port: backends[next++ % backends.length]!, noDelay: true });
  client.pipe(up).pipe(client);
  client.on("error", () => up.destroy());
  up.on("error", () => client.destroy());
}).listen(port, "127.0.0.1", () => process.stdout.write("ready\n"));
