/**
 * The node's TLS: its files loaded and watched, the credentials each port and each outgoing
 * channel uses, and the warning a node without TLS gives when it listens beyond loopback.
 */
import type { PeerCertificate } from "node:tls";
import type { ChannelCredentials, ServerCredentials } from "@grpc/grpc-js";
import type { BalancerTlsFiles } from "../balancer/index.js";
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

/**
 * loadBalancerTls opens the files the balancing endpoint follows: its listener's own certificate
 * (balancerTlsCert/Key) or the node's, the upstream CA (balancerUpstreamCa) or the cluster CA, and
 * the node's certificate as the client certificate for instances that ask for one. close() stops
 * watching the files it opened itself (the node's are the node's to close).
 */
export function loadBalancerTls(config: AgentConfig, node: NodeTls | undefined, logger: Logger): { readonly files: BalancerTlsFiles; readonly own: { readonly name: string; readonly files: TlsFiles }[]; close(): void } {
  const opened: TlsFiles[] = [];
  const open = (paths: { ca: string; cert?: string; key?: string }, fields: { ca: string; cert: string; key: string }) => {
    const f = new TlsFiles(paths, {
      fields,
      onReload: (m) => logger.info({ notAfter: m.notAfterMs === undefined ? undefined : new Date(m.notAfterMs).toISOString(), files: paths }, "balancer TLS files changed: new connections use them"),
      onError: (err) => logger.error({ err }, "balancer TLS files changed but cannot be used: the previous ones stay in use"),
    });
    opened.push(f);
    return f;
  };
  const fields = { ca: "balancerUpstreamCa", cert: "balancerTlsCert", key: "balancerTlsKey" };
  const ownListener = config.balancerTlsCert !== "" ? open({ ca: "", cert: config.balancerTlsCert, key: config.balancerTlsKey }, fields) : undefined;
  const listener = config.balancerTls ? (ownListener ?? node?.files) : undefined;
  const upstreamCa = config.balancerUpstreamCa !== "" ? open({ ca: config.balancerUpstreamCa }, fields) : node?.files;
  return {
    files: { listener, upstreamCa, identity: node?.files },
    own: ownListener ? [{ name: "balancer", files: ownListener }] : [],
    close: () => {
      for (const f of opened) f.close();
    },
  };
}

/** CERT_EXPIRY_WARN_MS: 14 days, the warning of cluster/prometheus/alerts.yml: time to renew before clients and peers start failing handshakes. */
export const CERT_EXPIRY_WARN_MS = 14 * 86_400_000;
/** CERT_EXPIRY_CHECK_MS: a certificate nears expiry with no file changing, so it is looked at hourly too (the window is days long). */
export const CERT_EXPIRY_CHECK_MS = 3_600_000;
/** CERT_EXPIRY_REPEAT_MS: a certificate still near expiry is warned of again once a day (one line a day stays readable). */
export const CERT_EXPIRY_REPEAT_MS = 86_400_000;

/** ExpiryWarning is what watchCertificateExpiry reports: which certificate, and when it expires. */
export interface ExpiryWarning {
  readonly name: string;
  readonly file: string;
  readonly notAfterMs: number;
  readonly leftMs: number;
}

/**
 * watchCertificateExpiry warns (a log line and `warn`, which the agent turns into a
 * tls-cert-expiring event) when a loaded certificate expires within CERT_EXPIRY_WARN_MS: at start,
 * at each reload, and hourly; again once a day while it stays near, at once for a new certificate
 * that is near too. The node itself says so, with or without a Prometheus scraping it.
 */
export function watchCertificateExpiry(
  sets: readonly { readonly name: string; readonly files: TlsFiles }[],
  logger: Logger,
  warn: (w: ExpiryWarning) => void,
  nowMs: () => number = Date.now,
): { readonly check: () => void; readonly stop: () => void } {
  const last = new Map<string, { notAfterMs: number; atMs: number }>();
  const check = () => {
    const now = nowMs();
    for (const { name, files } of sets) {
      const notAfterMs = files.material.notAfterMs;
      if (notAfterMs === undefined || notAfterMs - now >= CERT_EXPIRY_WARN_MS) continue;
      const prev = last.get(name);
      if (prev && prev.notAfterMs === notAfterMs && now - prev.atMs < CERT_EXPIRY_REPEAT_MS) continue;
      last.set(name, { notAfterMs, atMs: now });
      const w: ExpiryWarning = { name, file: files.paths.cert ?? "", notAfterMs, leftMs: notAfterMs - now };
      logger.warn({ certificate: name, file: w.file, notAfter: new Date(notAfterMs).toISOString(), daysLeft: Math.floor(w.leftMs / 86_400_000) }, `TLS certificate ${w.file} (${name}) expires within 14 days: renew it (the node takes new files without a restart)`);
      warn(w);
    }
  };
  check();
  const offs = sets.map(({ files }) => files.onChange(check));
  const timer = setInterval(check, CERT_EXPIRY_CHECK_MS);
  timer.unref();
  return {
    check,
    stop: () => {
      clearInterval(timer);
      for (const off of offs) off();
    },
  };
}
