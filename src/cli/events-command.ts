import { type MeshEventMsg, RaftmeshClient } from "../client/index.js";
import { clientTls, endpointsOf, parse, UsageError } from "./args.js";

/** EVENTS_RESUME_PAUSE_MS: a broken --follow stream resumes from its last seq after this pause. */
const EVENTS_RESUME_PAUSE_MS = 500;
/** CODE_OUT_OF_RANGE and CODE_INVALID_ARGUMENT end the command; other errors are a broken stream. */
const CODE_OUT_OF_RANGE = 11;
const CODE_INVALID_ARGUMENT = 3;

const USAGE = "usage: raftmesh events [--follow] [--json] [--kind k,...] [--from seq] (one node's events: the first --endpoints)";

/** describeEvent is one line of `raftmesh events`. */
export function describeEvent(e: MeshEventMsg): string {
  const when = new Date(e.atMs).toISOString();
  const where = e.local ? `local@${e.node}` : `index ${e.index}`;
  return `${when} #${e.seq} ${e.kind.padEnd(22)} ${where.padEnd(14)} ${e.message}`;
}

/**
 * events [--follow] [--json] [--kind k,...] [--from seq]: one node's recent events (its ring), and
 * with --follow new ones as they happen. A follow stream that breaks (node restart) or is ended for
 * lagging resumes from the last seq seen; a seq the node no longer holds (its ring moved on, or it
 * restarted) starts again from what it holds.
 */
export async function eventsCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(argv, { endpoints: { type: "string" }, follow: { type: "boolean" }, json: { type: "boolean" }, kind: { type: "string" }, from: { type: "string" } });
  if (positionals.length > 0) throw new UsageError(USAGE);
  const fromRaw = typeof values.from === "string" ? values.from : "0";
  if (!/^\d+$/.test(fromRaw) || !Number.isSafeInteger(Number(fromRaw))) throw new UsageError(`--from: must be a seq (a whole number), got "${fromRaw}"`);
  const kinds = typeof values.kind === "string" && values.kind !== "" ? values.kind.split(",") : [];
  const endpoint = endpointsOf(values.endpoints, process.env)[0] as string;
  const client = new RaftmeshClient([endpoint], clientTls());
  let from = Number(fromRaw);
  const follow = values.follow === true;
  return new Promise<number>((resolve) => {
    const start = () =>
      client.events(
        { fromSeq: from, follow, kinds },
        {
          onEvent: (e) => {
            out(values.json ? JSON.stringify(e) : describeEvent(e));
            from = e.seq;
          },
          onEnd: (err) => {
            if (!err && !follow) {
              client.close();
              return resolve(0);
            }
            if (err && (err.code === CODE_INVALID_ARGUMENT || (err.code === CODE_OUT_OF_RANGE && from === 0) || !follow)) {
              process.stderr.write(`raftmesh: ${err.message}\n`);
              client.close();
              return resolve(1);
            }
            // Resume from the last seq; one the node no longer holds (it restarted or the ring moved on) starts over from what it holds.
            if (err?.code === CODE_OUT_OF_RANGE) from = 0;
            setTimeout(start, EVENTS_RESUME_PAUSE_MS);
          },
        },
      );
    start();
  });
}
