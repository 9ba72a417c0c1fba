/**
 * Network partitions for the Jepsen harness. A cut is a directed link [from, to]: `to` drops
 * every packet whose source is `from`'s address. Cuts are nftables rules inside the receiving
 * node's namespace (table `inet rmj`, chain `input`, `ip saddr <addr> drop`), so a partitioned
 * peer sees silence, never a fast error, exactly as a real partition behaves.
 *
 * The first half of this file is pure: it turns Jepsen's partition catalogue (random halves,
 * isolate one, bridge, majorities ring) into groups or cut lists. The second half applies cuts.
 */
import { nodeAddress, nsName, run } from "./netns.js";

/** Link is a directed cut: packets from link[0] are dropped when they arrive at link[1]. */
export type Link = readonly [from: string, to: string];
/** Groups is a partition: nodes in different groups cannot hear each other. */
export type Groups = readonly (readonly string[])[];
/** Rng returns a float in [0, 1); pass a seeded one so a run replays. */
export type Rng = () => number;

/** NFT_TABLE is the table the harness owns in every node's namespace. */
export const NFT_TABLE = "rmj";

/** shuffle returns a Fisher–Yates shuffled copy of xs. */
export function shuffle<T>(xs: readonly T[], rng: Rng): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** majority is the smallest number of nodes that is more than half of n. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** groupCuts is every directed link between nodes of different groups (both directions). */
export function groupCuts(groups: Groups): Link[] {
  const cuts: Link[] = [];
  groups.forEach((a, i) => {
    groups.forEach((b, j) => {
      if (i === j) return;
      for (const from of a) for (const to of b) if (from !== to) cuts.push([from, to]);
    });
  });
  return cuts;
}

/** randomHalves splits the nodes at random into a minority and a majority (Jepsen's partition-random-halves). */
export function randomHalves(nodes: readonly string[], rng: Rng): string[][] {
  const s = shuffle(nodes, rng);
  const cut = Math.floor(nodes.length / 2);
  return [s.slice(0, cut), s.slice(cut)];
}

/** isolateNode cuts one given node (e.g. the leader) off from all the others. */
export function isolateNode(nodes: readonly string[], node: string): string[][] {
  if (!nodes.includes(node)) throw new Error(`${node} is not one of ${nodes.join(",")}`);
  return [[node], nodes.filter((n) => n !== node)];
}

/** isolateOne cuts a random node off from all the others (Jepsen's partition-random-node). */
export function isolateOne(nodes: readonly string[], rng: Rng): string[][] {
  return isolateNode(nodes, shuffle(nodes, rng)[0] as string);
}

/**
 * bridgeCuts splits the nodes at random into two halves that share one node (Jepsen's
 * partition-majorities-bridge): the halves cannot hear each other, the bridge node hears
 * everyone. Returns the cuts and which node bridges.
 */
export function bridgeCuts(nodes: readonly string[], rng: Rng): { cuts: Link[]; bridge: string; sides: string[][] } {
  if (nodes.length < 3) throw new Error("a bridge needs at least 3 nodes");
  const s = shuffle(nodes, rng);
  const mid = Math.floor((s.length - 1) / 2);
  const bridge = s[mid] as string;
  const sides = [s.slice(0, mid), s.slice(mid + 1)];
  return { cuts: groupCuts(sides), bridge, sides: [[...(sides[0] as string[]), bridge], [bridge, ...(sides[1] as string[])]] };
}

/**
 * majoritiesRingCuts places the nodes on a random ring and lets each hear only its nearest
 * neighbours, so every node sees a majority (itself included) but no two nodes see the same one
 * (Jepsen's majorities-ring). Links are symmetric. With 5 nodes each sees itself and its 2
 * neighbours; for even sizes the window rounds up, so views overlap more but stay distinct from 6 on.
 */
export function majoritiesRingCuts(nodes: readonly string[], rng: Rng): { cuts: Link[]; ring: string[]; views: Map<string, string[]> } {
  const n = nodes.length;
  if (n < 5) throw new Error("a majorities ring needs at least 5 nodes (with fewer every node would see every other)");
  const ring = shuffle(nodes, rng);
  const reach = Math.ceil((majority(n) - 1) / 2);
  const views = new Map<string, string[]>();
  ring.forEach((node, i) => {
    const view: string[] = [];
    for (let d = -reach; d <= reach; d++) view.push(ring[(i + d + n) % n] as string);
    views.set(node, view);
  });
  const cuts: Link[] = [];
  for (const to of ring) for (const from of ring) if (!views.get(to)?.includes(from)) cuts.push([from, to]);
  return { cuts, ring, views };
}

/** linkKey names a directed link for set membership. */
export function linkKey([from, to]: Link): string {
  return `${from}>${to}`;
}

/**
 * rulesetFor is the nft script that atomically replaces node `to`'s table with one dropping
 * packets from every `from` it is cut from. `add` then `delete` makes the delete succeed whether
 * or not the table exists; nft applies the whole script as one transaction.
 */
export function rulesetFor(to: string, cuts: readonly Link[]): string {
  const sources = [...new Set(cuts.filter(([, t]) => t === to).map(([from]) => nodeAddress(from)))].sort();
  const rules = sources.map((addr) => `    ip saddr ${addr} drop\n`).join("");
  return (
    `add table inet ${NFT_TABLE}\n` +
    `delete table inet ${NFT_TABLE}\n` +
    `table inet ${NFT_TABLE} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n${rules}  }\n}\n`
  );
}

/** applyCuts rewrites the table of every node in `targets` to hold exactly its cuts from `cuts`. */
export async function applyCuts(targets: readonly string[], cuts: readonly Link[]): Promise<void> {
  await Promise.all(targets.map((to) => run("ip", ["netns", "exec", nsName(to), "nft", "-f", "-"], rulesetFor(to, cuts))));
}

/** listRules returns the `ip saddr ... drop` rules currently in a node's table (for checks and reports). */
export async function listRules(node: string): Promise<string[]> {
  const out = await run("ip", ["netns", "exec", nsName(node), "nft", "list", "table", "inet", NFT_TABLE]).catch(() => "");
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("ip saddr"));
}

/**
 * NetNemesis keeps the current set of cuts and applies changes to the namespaces that need them.
 * Methods must not run concurrently with each other (the runner's nemesis is one sequential loop).
 */
export class NetNemesis {
  private current = new Map<string, Link>();

  constructor(private readonly nodes: readonly string[]) {}

  /** cuts returns the directed links currently cut. */
  get cuts(): Link[] {
    return [...this.current.values()];
  }

  /** partition replaces every cut with the ones between groups. */
  partition(groups: Groups): Promise<void> {
    for (const g of groups) for (const n of g) if (!this.nodes.includes(n)) throw new Error(`unknown node ${n}`);
    return this.replace(groupCuts(groups));
  }

  /** replace makes `links` the whole set of cuts (for bridge, ring and any custom topology). */
  async replace(links: readonly Link[]): Promise<void> {
    const before = new Set(this.cuts.map(([, to]) => to));
    this.current = new Map(links.map((l) => [linkKey(l), l]));
    const touched = this.nodes.filter((n) => before.has(n) || links.some(([, to]) => to === n));
    await applyCuts(touched, this.cuts);
  }

  /** cutOneWay adds one directed cut to the current ones. */
  async cutOneWay(from: string, to: string): Promise<void> {
    if (!this.nodes.includes(from) || !this.nodes.includes(to) || from === to) throw new Error(`bad link ${from}>${to}`);
    const link: Link = [from, to];
    this.current.set(linkKey(link), link);
    await applyCuts([to], this.cuts);
  }

  /** heal removes every cut from every node (all of them, in case a table was left by hand). */
  async heal(): Promise<void> {
    this.current.clear();
    await applyCuts(this.nodes, []);
  }
}
