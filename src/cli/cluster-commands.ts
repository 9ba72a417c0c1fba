import type { MemberMsg, NodeStatusMsg } from "../common/messages.js";
import { RaftmeshClient } from "../client/index.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";
import { table } from "./table.js";

/** STATUS_DEADLINE_MS: a node that does not answer status within this is shown as unreachable. */
const STATUS_DEADLINE_MS = 2_000;

interface NodeRow {
  readonly id: string;
  readonly api: string;
  readonly learner: boolean;
  readonly status?: NodeStatusMsg;
  readonly error?: string;
}

/** status: every member's own view (role, leader, term, commit, applied), as a table or JSON. */
export async function statusCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parse(argv, { endpoints: { type: "string" }, json: { type: "boolean" } });
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), { ...clientTls(), deadlineMs: STATUS_DEADLINE_MS });
  try {
    const members = await client.members();
    const rows: NodeRow[] = await Promise.all(
      members.members.map(async (m: MemberMsg) => {
        const api = m.api || "";
        if (!api) return { id: m.id, api, learner: m.learner, error: "no known address" };
        try {
          return { id: m.id, api, learner: m.learner, status: await client.status({ endpoint: api }) };
        } catch (err) {
          return { id: m.id, api, learner: m.learner, error: (err as Error).message };
        }
      }),
    );
    const leader = rows.find((r) => r.status?.role === "leader")?.id ?? members.leader;
    if (values.json) {
      out(JSON.stringify({ leader, members: rows }, null, 2));
    } else {
      out(
        table(
          ["ID", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "API", "STATE"],
          rows.map((r) => {
            const s = r.status;
            if (!s) return [r.id, r.learner ? "learner" : "voter", "", "", "", "", r.api, `unreachable: ${r.error ?? ""}`];
            return [r.id, s.role, s.leader, String(s.term), String(s.commit), String(s.applied), r.api, "ok"];
          }),
        ),
      );
      out(`leader: ${leader || "none known"}`);
    }
    return rows.every((r) => r.status) ? 0 : 1;
  } finally {
    client.close();
  }
}

/** members list|add|remove|promote. */
export async function membersCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, {
    endpoints: { type: "string" },
    json: { type: "boolean" },
    peer: { type: "string" },
    api: { type: "string" },
    voter: { type: "boolean" },
    force: { type: "boolean" },
  });
  const [sub = "list", id, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), clientTls());
  try {
    let members: MemberMsg[];
    switch (sub) {
      case "list":
        members = (await client.members()).members;
        break;
      case "add": {
        if (!id) throw new UsageError("usage: raftmesh members add <id> --peer host:port [--api host:port] [--voter] [--force]");
        if (typeof values.peer !== "string") throw new UsageError("members add: --peer host:port is required");
        const api = typeof values.api === "string" ? values.api : undefined;
        members = (await client.addMember({ id, peer: values.peer, api, learner: !values.voter, force: values.force === true })).members;
        break;
      }
      case "remove":
      case "promote": {
        if (!id) throw new UsageError(`usage: raftmesh members ${sub} <id> [--force]`);
        const opts = { force: values.force === true };
        members = (sub === "remove" ? await client.removeMember(id, opts) : await client.promoteMember(id, opts)).members;
        break;
      }
      default:
        throw new UsageError(`unknown members command "${sub}" (list, add, remove, promote)`);
    }
    if (values.json) out(JSON.stringify(members, null, 2));
    else out(table(["ID", "KIND", "PEER", "API", "MATCH"], members.map((m) => [m.id, m.learner ? "learner" : "voter", m.peer, m.api, String(m.match)])));
    return 0;
  } finally {
    client.close();
  }
}

/** transfer-leader [id]: hand leadership to id, or to the most up-to-date other voter. */
export async function transferLeaderCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" } });
  if (positionals.length > 1) throw new UsageError("usage: raftmesh transfer-leader [id]");
  const client = new RaftmeshClient(endpointsOf(values.endpoints, process.env), { ...clientTls(), deadlineMs: 10_000 });
  try {
    const res = await client.transferLeader(positionals[0] ?? "");
    out(`leader: ${res.leader} (term ${res.term})`);
    return 0;
  } finally {
    client.close();
  }
}
