/**
 * freePorts gives a test ports for servers it starts later (an agent process listens seconds after
 * the ports were chosen). Asking the kernel for port 0 and closing the listener is not safe for
 * that: the kernel hands the same ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by
 * default) to every outgoing connection and every other listen(0) on the machine, so in a full
 * test run, with thousands of connections a minute, a chosen port can be taken before the agent
 * binds it, and the agent then exits (EADDRINUSE) and its cluster never elects.
 *
 * So ports come from below the ephemeral range (PORT_RANGE_FIRST..PORT_RANGE_LAST), which the
 * kernel never picks by itself, and each vitest worker (VITEST_POOL_ID, within its lane of
 * `npm test`: RAFTMESH_TEST_LANE, test/lanes.ts) owns its own slice, so two test files running side
 * by side never choose the same port. Within a slice a cursor moves on
 * with every port handed out, so a port is reused only after the whole slice went round; each
 * candidate is still bound once to skip a port something else on the machine holds.
 */
import { connect, createServer } from "node:net";

/** PORT_RANGE_FIRST..PORT_RANGE_LAST are the ports tests choose from: below Linux's default ephemeral range, above the well-known and registered services most machines run. */
export const PORT_RANGE_FIRST = 20_000;
export const PORT_RANGE_LAST = 32_767;
/** PORT_SLICES is how many workers get a slice of their own (vitest numbers its workers from 1); more workers than this share slices by id modulo. */
export const PORT_SLICES = 8;
/** LANE_SLICES is how many slices each lane of `npm test` starts apart: lane L's worker W takes slice L * LANE_SLICES + W - 1. */
const LANE_SLICES = 4;
/** FREE_PORTS_MAX bounds one request; a 5-node cluster takes 20. */
const FREE_PORTS_MAX = 64;

const SLICE_SIZE = Math.floor((PORT_RANGE_LAST - PORT_RANGE_FIRST + 1) / PORT_SLICES);

/** sliceIndex is this worker's slice: from its lane and vitest pool id, or the process id for a script run outside vitest. */
function sliceIndex(): number {
  const pool = Number(process.env.VITEST_POOL_ID);
  const lane = Number(process.env.RAFTMESH_TEST_LANE ?? 0);
  if (!Number.isInteger(pool) || pool < 1) return process.pid % PORT_SLICES;
  return ((Number.isInteger(lane) && lane > 0 ? lane * LANE_SLICES : 0) + pool - 1) % PORT_SLICES;
}

// The cursor starts at a random place in the slice, so a test file that runs again right after
// (in the same worker) does not meet its predecessor's ports still in TIME_WAIT or held by a process
// that is exiting.
let cursor = Math.floor(Math.random() * SLICE_SIZE);

/** bindable says whether a listener can bind 127.0.0.1:port right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** freePorts resolves to n distinct ports of this worker's slice that were bindable a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  if (!Number.isInteger(n) || n < 1 || n > FREE_PORTS_MAX) throw new RangeError(`port count ${n} is outside [1, ${FREE_PORTS_MAX}]`);
  const base = PORT_RANGE_FIRST + sliceIndex() * SLICE_SIZE;
  const ports: number[] = [];
  for (let tried = 0; tried < SLICE_SIZE && ports.length < n; tried++) {
    const port = base + (cursor % SLICE_SIZE);
    cursor = (cursor + 1) % SLICE_SIZE;
    if (await bindable(port)) ports.push(port);
  }
  if (ports.length < n) throw new Error(`only ${ports.length} of ${n} ports free in ${base}..${base + SLICE_SIZE - 1}`);
  return ports;
}

/** acceptsConnection resolves true when a TCP connection to 127.0.0.1:port opens, false when it is refused. */
export function acceptsConnection(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
