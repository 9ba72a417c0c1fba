#!/usr/bin/env node
/**
 * The raftmesh command: `raftmesh agent` runs a node; the other commands talk to a cluster
 * through its client API. Exit status: 0 done, 1 the cluster answered with an error, 2 bad usage
 * or configuration.
 */
import { ConfigError } from "../config/index.js";
import { RaftmeshError, TlsError } from "../client/index.js";
import { aclCommand } from "./acl-commands.js";
import { agentHelp, runAgent } from "./agent-command.js";
import { takeTlsFlags, UsageError } from "./args.js";
import { membersCommand, statusCommand, transferLeaderCommand } from "./cluster-commands.js";
import { eventsCommand } from "./events-command.js";
import { kvCommand } from "./kv-commands.js";
import { reloadCommand } from "./local-commands.js";
import { maintCommand } from "./maint-command.js";
import { runCommand } from "./run-command.js";
import { tlsCommand } from "./tls-command.js";
import { deregisterCommand, failoverCommand, heartbeatCommand, instancesCommand, registerCommand, servicesCommand, watchCommand } from "./registry-commands.js";

const HELP = `raftmesh: a service registry and mesh node on Raft

usage: raftmesh <command> [flags]

  agent                          run a node (raftmesh agent --help lists its settings)
  status [--json]                every member's role, leader, term, commit and applied index
  members [list] [--json]        the configuration with addresses
  members add <id> --peer h:p [--api h:p] [--voter] [--force]
                                 add a node (as a learner unless --voter)
  members promote <id> [--force] make a caught-up learner a voter
  members remove <id> [--force]  remove a voter or learner (--force: even if too few live
                                 voters would remain for a quorum; disaster recovery only)
  transfer-leader [id]           hand leadership to id (or the most up-to-date voter)
  register <service> <id> --address h --port n [--tags a,b] [--meta k=v,...] [--weight n]
           [--priority n] [--zone z] [--ttl ms] [--deregister-after ms]
  deregister <service> <id>
  heartbeat <service> <id> [--status passing|warning|critical] [--note text] [--position n]
  failover <service> [--to id]     switch a master-slave service's master over (to id, or the
                                 best eligible standby) in one entry
  maint <service> <id> on|off [--reason text]
                                 drain an instance (no new requests; in-flight ones finish)
                                 or return it to rotation, without stopping it
  run --service s --id i [--port n] [--address h] [--ttl ms] [--node h:p] [--log-dir d]
      [--grace-ms n] [--user u] [--cwd d] -- command [args...]
                                 run a process, restart it when it exits (backoff, crash-loop
                                 limit) and keep its instance registered: critical at once on
                                 an exit, passing once its port accepts connections again
  services [--json]                every service with instance counts by health
  services register -f file.json [--name n.json]
                                 validate a service definition and write it into the node's
                                 services directory (--admin), which reloads
  reload                         the node (--admin) reads its services directory again
  instances <service> [--passing] [--json]
  watch [--service s] [--prefix p] [--from index] [--json]
  events [--follow] [--json] [--kind k,...] [--from seq]
                                 one node's events (leader elected, failovers, health...)
  tls init --dir d --nodes n1,n2,n3 [--hosts h,...] [--days n] [--client name]
                                 a development CA and per-node certificates (PEM)
  kv get <key> [--stale] | put <key> <value> | del <key> [--prefix] | ls [prefix]
     | cas <key> <value> <expected mod index>
  acl bootstrap                  create the first admin token (once per cluster) and print its secret
  acl token create --name n --rule ROLE[:service=s|:key=p] [--rule ...]
                                 a token (ROLE read, write or admin; s a name or prefix*; p a
                                 key prefix); its secret is printed once
  acl token list | acl token delete <accessor>

Client commands take --endpoints host:port,... (or RAFTMESH_ENDPOINTS; default 127.0.0.1:7201-7203),
and for a cluster with TLS --ca file (RAFTMESH_CA), with --cert file --key file (RAFTMESH_CERT,
RAFTMESH_KEY) when it asks clients for a certificate, and --tls-server-name (RAFTMESH_TLS_SERVER_NAME)
when the endpoints' host names are not in the nodes' certificates. With access control on, every
client and local agent command takes --token secret (or RAFTMESH_TOKEN).
Local agent commands (reload, services register) take --admin host:port (or RAFTMESH_ADMIN;
default 127.0.0.1:7400): the node whose services directory they change.`;

/**
 * grpc-js passes the endpoint's host as the TLS server name even when it is an IP address, which
 * Node ignores (the certificate is still checked against the IP) but warns about once per process
 * as DEP0123: that line would land in every command's and node's stderr with TLS on, so it alone
 * is dropped.
 */
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === "DEP0123") return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const out = (s: string) => process.stdout.write(`${s}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...all] = argv;
  // The agent reads its own TLS settings (--tls-ca ...); every other command is a client.
  const rest = command === "agent" || command === "tls" ? all : takeTlsFlags(all, process.env);
  if (!command || command === "help" || command === "--help" || command === "-h") {
    out(HELP);
    return command ? 0 : 2;
  }
  // `run` passes everything after "--" to its command: a --help there is the command's.
  const flags = command === "run" && rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (flags.includes("--help") || flags.includes("-h")) {
    out(command === "agent" ? agentHelp() : HELP);
    return 0;
  }
  switch (command) {
    case "agent":
      await runAgent(rest);
      return -1;
    case "status":
      return statusCommand(rest, out);
    case "members":
      return membersCommand(rest, out);
    case "transfer-leader":
      return transferLeaderCommand(rest, out);
    case "kv":
      return kvCommand(rest, out);
    case "register":
      return registerCommand(rest, out);
    case "deregister":
      return deregisterCommand(rest, out);
    case "heartbeat":
      return heartbeatCommand(rest, out);
    case "services":
      return servicesCommand(rest, out);
    case "instances":
      return instancesCommand(rest, out);
    case "watch":
      return watchCommand(rest, out);
    case "failover":
      return failoverCommand(rest, out);
    case "reload":
      return reloadCommand(rest, out);
    case "maint":
      return maintCommand(rest, out);
    case "run":
      return runCommand(rest, out);
    case "events":
      return eventsCommand(rest, out);
    case "tls":
      return tlsCommand(rest, out);
    case "acl":
      return aclCommand(rest, out);
    default:
      throw new UsageError(`unknown command "${command}"; run raftmesh help`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // The agent keeps running; every other command is done.
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof TlsError) {
      process.stderr.write(`raftmesh: TLS ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`raftmesh: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof RaftmeshError) {
      process.stderr.write(`raftmesh: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`raftmesh: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
