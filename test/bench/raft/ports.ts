/**
 * freePorts asks the kernel for distinct free TCP ports on 127.0.0.1. The listeners are closed
 * before the ports are used, so another process could take one in between; on a benchmark machine
 * that race is rare, and a taken port makes the server fail to start loudly rather than misbehave.
 */
import { createServer, type Server } from "node:net";

/** FREE_PORTS_MAX bounds one request; a 3-member cluster needs 6. */
const FREE_PORTS_MAX = 64;

/** freePorts resolves to count distinct ports that were free a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1 || count > FREE_PORTS_MAX) throw new RangeError(`port count ${count} is outside [1, ${FREE_PORTS_MAX}]`);
  // All listeners stay open until every port is known, so the kernel cannot hand out one port twice.
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(await listen(server));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("listener has no TCP address"));
      else resolve(address.port);
    });
  });
}
