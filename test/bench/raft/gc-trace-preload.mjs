// Preloaded into agents by test/bench/raft/gc-promotion.ts (NODE_OPTIONS=--import, since
// --trace-gc-nvp is not allowed there): V8 prints one line per collection to stdout, which the
// cluster harness writes to the node's log.
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--trace-gc-nvp");
