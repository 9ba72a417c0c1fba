/**
 * Partition shapes (Jepsen's catalogue) for the nemesis driver, built on the harness's pure
 * helpers in ../harness/nemesis-net.ts. A shape is either disjoint `groups` (applied with
 * JepsenCluster.partition) or a list of one-way `cuts` (applied with heal() then cutOneWay()).
 */
import { bridgeCuts, isolateNode, majoritiesRingCuts, randomHalves } from "../harness/nemesis-net.js";
import type { Rng } from "./rng.js";

/** PartitionShape is what to cut: disjoint groups (symmetric), or a list of one-way cuts. */
export type PartitionShape =
  | { readonly kind: "groups"; readonly name: string; readonly groups: readonly (readonly string[])[] }
  | { readonly kind: "cuts"; readonly name: string; readonly cuts: readonly (readonly [from: string, to: string])[] };

/** PARTITION_NAMES are the shapes the partition nemesis picks from. */
export const PARTITION_NAMES = ["random-halves", "isolate-one", "isolate-leader", "bridge", "majorities-ring", "one-way"] as const;

/** PartitionName is one shape of PARTITION_NAMES. */
export type PartitionName = (typeof PARTITION_NAMES)[number];

/**
 * oneWay makes one node deaf or mute: either it receives from nobody (it still sends, so it keeps
 * disturbing the others with its terms), or nobody receives from it.
 */
export function oneWay(nodes: readonly string[], rng: Rng, target?: string): PartitionShape {
  const node = target ?? rng.pick(nodes);
  const deaf = rng.next() < 0.5;
  const cuts = nodes.filter((n) => n !== node).map((o): [string, string] => (deaf ? [o, node] : [node, o]));
  return { kind: "cuts", name: `one-way-${deaf ? "deaf" : "mute"}`, cuts };
}

/**
 * deafLeader cuts every link into the leader and none out of it: the leader keeps sending
 * heartbeats and appends, so its peers stay quiet until it steps down for lack of answers, and it
 * never hears whether its last writes committed. When the fault ends, the next leader may already
 * have compacted past them and catches it up with a snapshot. Without a known leader a random
 * node is made deaf.
 */
export function deafLeader(nodes: readonly string[], rng: Rng, leader: string | undefined): PartitionShape {
  const node = leader ?? rng.pick(nodes);
  return { kind: "cuts", name: leader ? "deaf-leader" : "deaf-node", cuts: nodes.filter((n) => n !== node).map((o): [string, string] => [o, node]) };
}

/**
 * pickPartition builds the named shape. isolate-leader falls back to a random node when there is
 * no leader; majorities-ring needs five nodes and falls back to random halves below that.
 */
export function pickPartition(name: PartitionName, nodes: readonly string[], rng: Rng, leader: string | undefined): PartitionShape {
  const r = () => rng.next();
  switch (name) {
    case "random-halves":
      return { kind: "groups", name, groups: randomHalves(nodes, r) };
    case "isolate-one":
      return { kind: "groups", name, groups: isolateNode(nodes, rng.pick(nodes)) };
    case "isolate-leader":
      return { kind: "groups", name, groups: isolateNode(nodes, leader ?? rng.pick(nodes)) };
    case "bridge": {
      // The bridge node is in neither group: a node not listed keeps all its links.
      const { sides, bridge } = bridgeCuts(nodes, r);
      return { kind: "groups", name, groups: sides.map((s) => s.filter((n) => n !== bridge)) };
    }
    case "majorities-ring":
      if (nodes.length < 5) return { kind: "groups", name: "random-halves", groups: randomHalves(nodes, r) };
      return { kind: "cuts", name, cuts: majoritiesRingCuts(nodes, r).cuts };
    case "one-way":
      return oneWay(nodes, rng, rng.next() < 0.5 ? leader : undefined);
  }
}

/** canReceive says whether `to` receives from `from` under a shape (for tests and reports). */
export function canReceive(shape: PartitionShape, from: string, to: string): boolean {
  if (from === to) return true;
  if (shape.kind === "cuts") return !shape.cuts.some(([f, t]) => f === from && t === to);
  const gf = shape.groups.findIndex((g) => g.includes(from));
  const gt = shape.groups.findIndex((g) => g.includes(to));
  return gf === -1 || gt === -1 || gf === gt;
}
