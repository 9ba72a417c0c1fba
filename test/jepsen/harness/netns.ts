/**
 * The Jepsen harness's network: one Linux bridge in the root namespace and, per node nK, a
 * network namespace `rmj-nK` joined to it by a veth pair. Node nK is 10.77.0.1K; the bridge is
 * 10.77.0.1, so the harness (root namespace) reaches every node directly on the subnet without IP
 * forwarding. Hostnames n1..nN resolve through /etc/netns/rmj-nK/hosts, which `ip netns exec`
 * bind-mounts over /etc/hosts. Every command is bounded by a timeout.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** BRIDGE is the root-namespace bridge every node's veth is attached to. */
export const BRIDGE = "rmj0";
/** BRIDGE_ADDRESS is the root namespace's address on the node subnet (also the nodes' default route). */
export const BRIDGE_ADDRESS = "10.77.0.1";
/** SUBNET_PREFIX is the prefix every node address starts with; node nK is SUBNET_PREFIX + "1" + K. */
const SUBNET_PREFIX = "10.77.0.";
/** NS_PREFIX prefixes every namespace name; cleanup removes every namespace that starts with it. */
export const NS_PREFIX = "rmj-";
/** VETH_PREFIX prefixes the root side of every veth pair. */
const VETH_PREFIX = "rmjv";
/** NETNS_ETC is where `ip netns exec` looks for per-namespace files such as hosts. */
const NETNS_ETC = "/etc/netns";
/** NODES_MAX: addresses are 10.77.0.1K and veth names rmjvK, so K is one digit. */
export const NODES_MAX = 9;
/** COMMAND_TIMEOUT_MS bounds one ip/nft invocation; they take milliseconds unless something hangs. */
export const COMMAND_TIMEOUT_MS = 10_000;

/** nodeIndex is K of node "nK", checked against NODES_MAX. */
export function nodeIndex(node: string): number {
  const m = /^n([1-9])$/.exec(node);
  if (!m) throw new Error(`node ids must be n1..n${NODES_MAX}, got ${JSON.stringify(node)}`);
  return Number(m[1]);
}

/** nodeNames is n1..nSize. */
export function nodeNames(size: number): string[] {
  if (!Number.isInteger(size) || size < 1 || size > NODES_MAX) throw new Error(`cluster size must be 1..${NODES_MAX}, got ${size}`);
  return Array.from({ length: size }, (_, i) => `n${i + 1}`);
}

/** nodeAddress is node nK's IPv4 address, 10.77.0.1K. */
export function nodeAddress(node: string): string {
  return `${SUBNET_PREFIX}1${nodeIndex(node)}`;
}

/** nsName is node nK's namespace, rmj-nK. */
export function nsName(node: string): string {
  nodeIndex(node);
  return `${NS_PREFIX}${node}`;
}

/** run executes a command (no shell) with optional stdin and a timeout; it rejects with stderr on failure. */
export function run(cmd: string, args: readonly string[], input?: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** runSync is run for the exit path, where no event loop turn is left; it returns undefined on failure. */
function runSync(cmd: string, args: readonly string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { timeout: COMMAND_TIMEOUT_MS, killSignal: "SIGKILL", stdio: ["ignore", "pipe", "pipe"] }).toString();
  } catch {
    return undefined;
  }
}

/** hostsFile is the /etc/hosts every namespace sees: localhost plus n1..nN. */
export function hostsFile(nodes: readonly string[]): string {
  const lines = ["127.0.0.1 localhost", "::1 localhost", ...nodes.map((n) => `${nodeAddress(n)} ${n}`)];
  return `${lines.join("\n")}\n`;
}

/** setupNetwork removes leftovers of an earlier run, then creates the bridge, namespaces, veths and hosts files. */
export async function setupNetwork(nodes: readonly string[]): Promise<void> {
  teardownNetworkSync();
  const ip = (...args: string[]) => run("ip", args);
  await ip("link", "add", BRIDGE, "type", "bridge");
  await ip("addr", "add", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE);
  await ip("link", "set", BRIDGE, "up");
  const hosts = hostsFile(nodes);
  for (const node of nodes) {
    const ns = nsName(node);
    const veth = `${VETH_PREFIX}${nodeIndex(node)}`;
    const peer = `${veth}p`;
    mkdirSync(join(NETNS_ETC, ns), { recursive: true });
    writeFileSync(join(NETNS_ETC, ns, "hosts"), hosts);
    await ip("netns", "add", ns);
    await ip("link", "add", veth, "type", "veth", "peer", "name", peer);
    await ip("link", "set", veth, "master", BRIDGE);
    await ip("link", "set", veth, "up");
    await ip("link", "set", peer, "netns", ns);
    const inNs = (...args: string[]) => ip("-n", ns, ...args);
    await inNs("link", "set", peer, "name", "eth0");
    await inNs("addr", "add", `${nodeAddress(node)}/24`, "dev", "eth0");
    await inNs("link", "set", "eth0", "up");
    await inNs("link", "set", "lo", "up");
    await inNs("route", "add", "default", "via", BRIDGE_ADDRESS);
  }
}

/** leftoverNamespaces lists every namespace this harness may have made (any run, any size). */
function leftoverNamespaces(): string[] {
  const out = runSync("ip", ["netns", "list"]) ?? "";
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.startsWith(NS_PREFIX));
}

/**
 * teardownNetworkSync removes every rmj-* namespace (after SIGKILLing the processes still inside
 * it, which would otherwise keep it alive unnamed), the rmjv* veths, the bridge and the
 * /etc/netns/rmj-* directories. It is synchronous so it also works from an exit handler, and it
 * is idempotent: missing pieces are skipped.
 */
export function teardownNetworkSync(): void {
  for (const ns of leftoverNamespaces()) {
    const pids = (runSync("ip", ["netns", "pids", ns]) ?? "").split("\n").filter((p) => /^\d+$/.test(p.trim()));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    runSync("ip", ["netns", "del", ns]);
  }
  const links = runSync("ip", ["-o", "link", "show"]) ?? "";
  for (const m of links.matchAll(/^\d+:\s+([^:@\s]+)/gm)) {
    const name = m[1] as string;
    if (name.startsWith(VETH_PREFIX)) runSync("ip", ["link", "del", name]);
  }
  runSync("ip", ["link", "del", BRIDGE]);
  let dirs: string[] = [];
  try {
    dirs = readdirSync(NETNS_ETC).filter((d) => d.startsWith(NS_PREFIX));
  } catch {
    // No /etc/netns at all.
  }
  for (const d of dirs) rmSync(join(NETNS_ETC, d), { recursive: true, force: true });
}

/** leftovers describes what teardown should have removed and did not (empty when clean). */
export function leftovers(): string[] {
  const found = leftoverNamespaces().map((n) => `namespace ${n}`);
  const links = runSync("ip", ["-o", "link", "show"]) ?? "";
  for (const m of links.matchAll(/^\d+:\s+([^:@\s]+)/gm)) {
    const name = m[1] as string;
    if (name.startsWith(VETH_PREFIX) || name === BRIDGE) found.push(`link ${name}`);
  }
  try {
    for (const d of readdirSync(NETNS_ETC)) if (d.startsWith(NS_PREFIX)) found.push(`dir ${join(NETNS_ETC, d)}`);
  } catch {
    // No /etc/netns at all.
  }
  return found;
}

/** PROBE_PORT is a port no agent uses, for the connectivity probe. */
const PROBE_PORT = 7999;

/**
 * verifyNetwork proves the plumbing before any agent runs: inside `server`'s namespace a Node
 * process listens on PROBE_PORT; the root namespace connects by address and `client`'s namespace
 * connects by hostname (so Node's resolver reads the namespace's hosts file). It throws on failure.
 */
export async function verifyNetwork(server: string, client: string): Promise<void> {
  const listen = `const s=require("net").createServer(c=>c.end("ok"));s.listen(${PROBE_PORT},"0.0.0.0",()=>console.log("up"));setTimeout(()=>process.exit(0),5000);`;
  const connect = (host: string) =>
    `require("dns").lookup(${JSON.stringify(host)},{family:4},(e,a)=>{if(e)throw e;const c=require("net").connect(${PROBE_PORT},a);` +
    `c.setTimeout(2000,()=>{console.error("timeout "+a);process.exit(2)});c.on("data",d=>{console.log(a+" "+d);process.exit(0)});c.on("error",e=>{console.error(e.message);process.exit(3)})});`;
  const srv = spawn("ip", ["netns", "exec", nsName(server), process.execPath, "-e", listen], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("probe listener did not start within 5 s")), 5_000);
      srv.stdout?.once("data", () => {
        clearTimeout(timer);
        resolve();
      });
      srv.once("exit", () => reject(new Error("probe listener exited early")));
    });
    await run(process.execPath, ["-e", connect(nodeAddress(server))]);
    await run("ip", ["netns", "exec", nsName(client), process.execPath, "-e", connect(server)]);
  } finally {
    srv.kill("SIGKILL");
  }
}
