import { ConfChangeType, decodeConfChange, type Entry, EntryKind, type LogIndex } from "../raft/index.js";
import type { StateMachine } from "./state-machine.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Entry data of a normal entry starts with one tag byte saying whose command it is, so the
 * cluster's own records (member addresses) and the application's commands share one log.
 */
const TAG_MEMBER_ADDRESS = 0x01;
const TAG_APP = 0x02;

/** CLUSTER_SNAPSHOT_VERSION is the format of snapshot(): bump it when the layout changes. */
export const CLUSTER_SNAPSHOT_VERSION = 1;

/** MemberAddress is where a member serves its peer and client APIs, as the cluster has recorded it. */
export interface MemberAddress {
  readonly id: string;
  readonly peer: string;
  readonly api: string;
}

/** encodeMemberAddress makes the entry data that records a member's addresses. */
export function encodeMemberAddress(addr: MemberAddress): Uint8Array {
  return tagged(TAG_MEMBER_ADDRESS, encoder.encode(JSON.stringify({ id: addr.id, peer: addr.peer, api: addr.api })));
}

/** encodeAppCommand wraps an application command as entry data. */
export function encodeAppCommand(data: Uint8Array): Uint8Array {
  return tagged(TAG_APP, data);
}

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

const EMPTY = new Uint8Array(0);

/**
 * ClusterStateMachine replicates the member address book next to the application's state
 * machine: every node learns where a new member listens from the log, so a member added at run
 * time needs no configuration change anywhere else. The application machine still sees every
 * index (records of the address book reach it as empty entries), so its applied index has no gaps.
 */
export class ClusterStateMachine implements StateMachine {
  applied: LogIndex = 0;
  private addresses = new Map<string, MemberAddress>();
  /**
   * removed are members whose removal was applied and who were not added back since. The host
   * closes its connection to them, which also drops any message still queued for them: a node
   * that comes back empty under the same id must not receive heartbeats meant for its old self.
   */
  private removed = new Set<string>();

  constructor(
    readonly app: StateMachine,
    private readonly onAddressesChanged: (addresses: ReadonlyMap<string, MemberAddress>) => void = () => {},
  ) {}

  /** address is what the log recorded for a member, if anything. */
  address(id: string): MemberAddress | undefined {
    return this.addresses.get(id);
  }

  /** isRemoved says whether the member was removed and not added back since. */
  isRemoved(id: string): boolean {
    return this.removed.has(id);
  }

  /** allAddresses is the whole recorded address book. */
  allAddresses(): ReadonlyMap<string, MemberAddress> {
    return this.addresses;
  }

  apply(entry: Entry): unknown {
    this.applied = entry.index;
    if (entry.kind === EntryKind.ConfChange) {
      const cc = decodeConfChange(entry.data);
      this.app.apply(entry);
      // A removed member's address goes with it; adding it again records the address again.
      if (cc.type === ConfChangeType.Remove) {
        this.addresses.delete(cc.node);
        this.removed.add(cc.node);
        this.onAddressesChanged(this.addresses);
      } else if (this.removed.delete(cc.node)) {
        this.onAddressesChanged(this.addresses);
      }
      return undefined;
    }
    const tag = entry.data[0];
    if (tag === TAG_MEMBER_ADDRESS) {
      this.app.apply({ ...entry, data: EMPTY });
      const addr = parseAddress(entry.data.subarray(1));
      // A record no node would write is skipped the same way everywhere.
      if (!addr) return undefined;
      this.addresses.set(addr.id, addr);
      // Recording an address is the first step of adding a member (again): it is reachable from here on.
      this.removed.delete(addr.id);
      this.onAddressesChanged(this.addresses);
      return addr;
    }
    if (tag === TAG_APP) return this.app.apply({ ...entry, data: entry.data.subarray(1) });
    // Leader no-ops (empty) and data without a known tag reach the application as empty entries.
    return this.app.apply({ ...entry, data: EMPTY });
  }

  snapshot(): Uint8Array {
    const app = Buffer.from(this.app.snapshot()).toString("base64");
    return encoder.encode(
      JSON.stringify({
        version: CLUSTER_SNAPSHOT_VERSION,
        applied: this.applied,
        addresses: [...this.addresses.values()],
        removed: [...this.removed],
        app,
      }),
    );
  }

  restore(data: Uint8Array): void {
    const s = JSON.parse(decoder.decode(data)) as { version: number; applied: number; addresses: MemberAddress[]; removed?: string[]; app: string };
    if (s.version !== CLUSTER_SNAPSHOT_VERSION) throw new Error(`cluster snapshot version ${s.version} is not supported`);
    this.app.restore(Buffer.from(s.app, "base64"));
    this.applied = s.applied;
    this.addresses = new Map(s.addresses.map((a) => [a.id, a]));
    this.removed = new Set(s.removed ?? []);
    this.onAddressesChanged(this.addresses);
  }
}

function parseAddress(body: Uint8Array): MemberAddress | undefined {
  try {
    const v = JSON.parse(decoder.decode(body)) as Partial<MemberAddress>;
    if (typeof v.id !== "string" || typeof v.peer !== "string" || typeof v.api !== "string") return undefined;
    return { id: v.id, peer: v.peer, api: v.api };
  } catch {
    return undefined;
  }
}
