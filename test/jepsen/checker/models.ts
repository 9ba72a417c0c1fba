/**
 * Models for the linearizability checker: a single register, and two key-value stores.
 */
import type { History } from "./history.js";
import { hashString, type Model } from "./model.js";

/** RegisterValue is what a register holds; null is "absent" (Jepsen's nil). */
export type RegisterValue = number | string;

/** RegisterInput is one register request. */
export type RegisterInput =
  | { readonly f: "read" }
  | { readonly f: "write"; readonly value: RegisterValue }
  | { readonly f: "cas"; readonly from: RegisterValue; readonly to: RegisterValue };

/**
 * RegisterOutput is what a register request observed: the value (or null) for a read, whether it
 * swapped for a cas. A write observes nothing, so its output is left undefined.
 */
export type RegisterOutput = RegisterValue | null | boolean;

function showValue(v: RegisterValue | null | undefined): string {
  if (v === undefined) return "?";
  return v === null ? "nil" : JSON.stringify(v);
}

/** showOutput renders an observed output, or "?" when nothing was observed. */
function showOutput(output: unknown): string {
  return output === undefined ? "?" : JSON.stringify(output);
}

/**
 * registerModel is one register that starts absent (null), with read, write and
 * compare-and-set. A cas on an absent register fails (null never equals a `from` value).
 */
export const registerModel: Model<RegisterValue | null, RegisterInput, RegisterOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case "read":
        return { ok: output === undefined || output === state, state };
      case "write":
        return { ok: true, state: input.value };
      case "cas": {
        const swaps = state === input.from;
        return { ok: output === undefined || output === swaps, state: swaps ? input.to : state };
      }
    }
  },
  // A cas that reported false changed nothing; one that swapped a value for itself neither.
  readOnly: (input, output) =>
    input.f === "read" ||
    (input.f === "cas" && (output === false || (output === true && input.from === input.to))),
  equal: (a, b) => a === b,
  hash: (s) => (s === null ? 0 : typeof s === "number" ? s | 0 : hashString(s)),
  describeOperation(input, output) {
    switch (input.f) {
      case "read":
        return `read() = ${output === undefined ? "?" : showValue(output as RegisterValue | null)}`;
      case "write":
        return `write(${showValue(input.value)})`;
      case "cas":
        return `cas(${showValue(input.from)} -> ${showValue(input.to)}) = ${output ?? "?"}`;
    }
  },
  describeState: (s) => showValue(s),
};

/**
 * partitionByKey splits a history into one sub-history per key, in order of each key's first
 * appearance (so reports come out in the same order on every run). Operations on different keys
 * of a map never constrain each other, so a history is linearizable iff each key's part is
 * (linearizability is local: Herlihy & Wing, 1990).
 */
export function partitionByKey<I extends { readonly key: string }, O>(
  history: History<I, O>,
): History<I, O>[] {
  const byKey = new Map<string, (typeof history)[number][]>();
  for (const op of history) {
    let part = byKey.get(op.input.key);
    if (part === undefined) byKey.set(op.input.key, (part = []));
    part.push(op);
  }
  return [...byKey.values()];
}

/** KvInput is one request to the get/put/append store (Porcupine's kv test data). */
export type KvInput =
  | { readonly f: "get"; readonly key: string }
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | { readonly f: "append"; readonly key: string; readonly value: string };

/** KvOutput is the value a get observed; put and append observe nothing (undefined). */
export type KvOutput = string;

/**
 * kvAppendModel is a map of string keys to strings, where an absent key reads as "", with get,
 * put and append. It always partitions by key, so its state is the value of one key only.
 */
export const kvAppendModel: Model<string, KvInput, KvOutput> = {
  init: () => "",
  step(state, input, output) {
    switch (input.f) {
      case "get":
        return { ok: output === undefined || output === state, state };
      case "put":
        return { ok: true, state: input.value };
      case "append":
        return { ok: true, state: state + input.value };
    }
  },
  readOnly: (input) => input.f === "get",
  partition: partitionByKey,
  equal: (a, b) => a === b,
  hash: hashString,
  describeOperation(input, output) {
    switch (input.f) {
      case "get":
        return `get(${JSON.stringify(input.key)}) = ${showOutput(output)}`;
      case "put":
        return `put(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)})`;
      case "append":
        return `append(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)})`;
    }
  },
  describeState: (s) => JSON.stringify(s),
};

/**
 * MeshKvInput is one request to the raftmesh KV store. `expected: null` in a cas means "only if
 * the key is absent".
 */
export type MeshKvInput =
  | { readonly f: "get"; readonly key: string }
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | {
      readonly f: "cas";
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    };

/**
 * MeshKvOutput is what a raftmesh KV request observed: the value or null (absent) for a get,
 * whether it swapped for a cas. A put observes nothing (undefined).
 */
export type MeshKvOutput = string | null | boolean;

/**
 * meshKvModel is the raftmesh KV store: get returns the value or null, put sets, and
 * cas(key, expected, value) sets only if the current value equals expected and says whether it
 * did. A cas that answered `false` is a completed operation (status ok, or fail with output
 * false): it observed the value was not `expected`. It partitions by key, so its state is the
 * value of one key only.
 */
export const meshKvModel: Model<string | null, MeshKvInput, MeshKvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case "get":
        return { ok: output === undefined || output === state, state };
      case "put":
        return { ok: true, state: input.value };
      case "cas": {
        const swaps = state === input.expected;
        return { ok: output === undefined || output === swaps, state: swaps ? input.value : state };
      }
    }
  },
  readOnly: (input, output) =>
    input.f === "get" ||
    (input.f === "cas" &&
      (output === false || (output === true && input.expected === input.value))),
  partition: partitionByKey,
  equal: (a, b) => a === b,
  hash: (s) => (s === null ? 0x5bd1e995 : hashString(s)),
  describeOperation(input, output) {
    const key = JSON.stringify(input.key);
    switch (input.f) {
      case "get":
        return `get(${key}) = ${showOutput(output)}`;
      case "put":
        return `put(${key}, ${JSON.stringify(input.value)})`;
      case "cas":
        return (
          `cas(${key}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)})` +
          ` = ${showOutput(output)}`
        );
    }
  },
  describeState: (s) => JSON.stringify(s),
};
