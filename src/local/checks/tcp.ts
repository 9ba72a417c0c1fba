import { connect } from "node:net";
import type { CheckResult, TcpProbe } from "../types.js";

/** tcpCheck opens one connection: accepted is passing, refused or not within the timeout critical. */
export function tcpCheck(p: TcpProbe, signal: AbortSignal): Promise<CheckResult> {
  const target = `${p.host}:${p.port}`;
  return new Promise((resolve) => {
    const socket = connect({ host: p.host, port: p.port, signal });
    socket.once("connect", () => {
      socket.destroy();
      resolve({ status: "passing", note: `TCP connect ${target}: success` });
    });
    socket.once("error", (err) => resolve({ status: "critical", note: `TCP connect ${target}: ${signal.aborted ? "timed out" : err.message}` }));
  });
}
