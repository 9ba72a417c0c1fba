/**
 * buildRegistry wires a node's registry: the state machine, the feed of its applied changes, and
 * the watch hub following that feed. The agent builds it so, and tests that must see the registry
 * as a node does build it through here too.
 */
import { eventBytes } from "../api/watch-stream.js";
import { RegistryFeed } from "../registry/events.js";
import { RegistryStateMachine } from "../registry/state-machine.js";
import { WatchHub } from "../registry/watch-hub.js";

/** buildRegistry is the registry state machine with its feed and the watch hub following every applied change. */
export function buildRegistry(): { machine: RegistryStateMachine; feed: RegistryFeed; hub: WatchHub } {
  const feed = new RegistryFeed();
  const machine = new RegistryStateMachine(feed.hooks());
  const hub = new WatchHub({ eventsSince: (i, max) => machine.eventsSince(i, max), get applied() { return machine.applied; } }, {}, eventBytes);
  // The hub and the lease driver (the agent's buildLeases) each take applied events in memory,
  // synchronously, and neither reads the other: the order they subscribe in does not matter.
  feed.on("changes", (events) => hub.publish(events));
  feed.on("reset", (index) => hub.reset(index));
  return { machine, feed, hub };
}
