/**
 * The node's TLS: its files loaded and watched, the credentials each port and each outgoing
 * channel uses, and the warning a node without TLS gives when it listens beyond loopback.
 */
import type { PeerCertificate } from "node:tls";
import type { ChannelCredentials, ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "../common/logger.js";
import { certificateMembers, channelCredentials, serverCredentials, TlsFiles } from "../common/tls.js";
import type { AgentConfig } from "../config/index.js";

/** NodeTls is what the agent hands its servers and clients when TLS is on. */
export interface NodeTls {
  readonly files: TlsFiles;
  /** clientAuth: API and admin clients must present a certificate of the CA. */
  readonly clientAuth: boolean;
  /** api serves the client API. */
  readonly api: ServerCredentials;
  /** members dials other members' client APIs (forwarding, status): the server must present a member certificate. */
  readonly members: ChannelCredentials;
  /** paths are the PEM files, for the local agent's SDK client. */
  readonly paths: { ca: string; cert: string; key: string };
}

/** loadNodeTls reads the node's TLS files (undefined when TLS is off) and logs each reload or unusable change. */
export function loadNodeTls(config: AgentConfig, logger: Logger): NodeTls | undefined {
  if (config.tlsCa === "") return undefined;
  const paths = { ca: config.tlsCa, cert: config.tlsCert, key: config.tlsKey };
  const files = new TlsFiles(paths, {
    fields: { ca: "tlsCa", cert: "tlsCert", key: "tlsKey" },
    onReload: (m) => logger.info({ notAfter: m.notAfterMs === undefined ? undefined : new Date(m.notAfterMs).toISOString(), members: m.members }, "TLS files changed: new connections use the new certificate"),
    onError: (err) => logger.error({ err }, "TLS files changed but cannot be used: the previous certificate stays in use"),
  });
  const members = channelCredentials(files, anyMember);
  return { files, clientAuth: config.tlsClientAuth, api: serverCredentials(files, config.tlsClientAuth), members, paths };
}

/** anyMember accepts a server certificate that names a member: forwarded calls and status go only to members, whatever address they are recorded at. */
function anyMember(cert: PeerCertificate): Error | undefined {
  return certificateMembers(cert).length > 0 ? undefined : new Error("the server's certificate names no raftmesh member");
}

/** isLoopback tells whether a listen address's host is loopback only. */
export function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * warnPlaintext logs, loudly, each port a node without TLS opens beyond loopback: anyone who
 * reaches it can claim to be a member or a client (README: Transport security).
 */
export function warnPlaintext(config: AgentConfig, logger: Logger): string[] {
  if (config.tlsCa !== "") return [];
  const open = (
    [
      ["peerListen", config.peerListen],
      ["apiListen", config.apiListen],
      ["adminListen", config.adminListen],
    ] as const
  ).filter(([, a]) => !isLoopback(a));
  if (open.length === 0) return [];
  const ports = open.map(([k, a]) => `${k}=${a}`);
  logger.warn(
    { ports },
    `PLAINTEXT on a non-loopback address (${ports.join(", ")}): peers and clients are not authenticated and anyone who reaches these ports can act as a member; set tlsCa, tlsCert and tlsKey (raftmesh tls init)`,
  );
  return ports;
}
