/**
 * Compact instance records. A registry of 100,000 instances holds 100,000 of them on every node,
 * so their layout is most of its memory (test/bench/registry/heap-parts.ts):
 * - built by one object literal generated from the field table (INSTANCE_FIELDS), so V8 gives all
 *   fields in-object slots of one shape: ~150 bytes less per instance than adding the fields one
 *   by one to `{}` (a property array grown in steps beside the object);
 * - repeated strings (service names, zones, tags, metadata keys and common values, notes) are
 *   interned, so 100,000 instances of 1,000 services hold one copy of each instead of one per
 *   instance as each decoded entry and snapshot row makes them;
 * - equal tag lists are one frozen array, and metadata objects are built with interned keys and
 *   values (sorted, as copyRecord does), since records are immutable (a change replaces the record).
 * Interning changes no value, so the state, its snapshot bytes and every answer stay the same.
 */
import { INSTANCE_FIELDS, sortedKeys } from "./fields.js";
import type { Instance, InstanceSpec } from "./types.js";

/**
 * INTERNED_STRINGS_MAX bounds the pool: strings past it are kept as they come (unique values such
 * as build ids would otherwise grow it without end). 65,536 strings of at most INTERN_CHARS_MAX
 * characters cost at most ~6 MB, and the repeated values of a registry (services, zones, tags,
 * metadata keys) are far fewer.
 */
export const INTERNED_STRINGS_MAX = 65_536;
/** INTERN_CHARS_MAX: longer strings are rarely repeated (addresses, notes); they are kept as they come. */
export const INTERN_CHARS_MAX = 64;
/** TAG_LISTS_MAX bounds the shared tag lists, as INTERNED_STRINGS_MAX bounds the strings. */
export const TAG_LISTS_MAX = 16_384;

/** StringPool interns strings up to a bound; past it, strings are returned as they are. */
export class StringPool {
  private readonly pool = new Map<string, string>();
  private readonly tagLists = new Map<string, readonly string[]>();

  constructor(
    private readonly stringsMax = INTERNED_STRINGS_MAX,
    private readonly tagListsMax = TAG_LISTS_MAX,
  ) {}

  get size(): number {
    return this.pool.size;
  }

  intern(s: string): string {
    if (s.length > INTERN_CHARS_MAX) return s;
    const held = this.pool.get(s);
    if (held !== undefined) return held;
    if (this.pool.size < this.stringsMax) this.pool.set(s, s);
    return s;
  }

  /** tags returns the shared frozen list equal to `tags` (a fresh copy past the bound). */
  tags(tags: readonly string[]): readonly string[] {
    if (tags.length === 0) return EMPTY_TAGS;
    const key = tags.join("\u0000");
    const held = this.tagLists.get(key);
    if (held !== undefined) return held;
    const list = Object.freeze(tags.map((t) => this.intern(t)));
    if (this.tagLists.size < this.tagListsMax) this.tagLists.set(key, list);
    return list;
  }

  /**
   * metadata copies a map with its keys sorted (as copyRecord does) and its keys and values
   * interned, into an ordinary object: a null-prototype one (Object.create(null)) is a dictionary
   * in V8, several times larger. A map holding a "__proto__" key keeps the null prototype, where
   * that key is an ordinary one.
   */
  metadata(m: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const keys = sortedKeys(m);
    const out: Record<string, string> = keys.includes("__proto__") ? Object.create(null) : {};
    for (const k of keys) out[this.intern(k)] = this.intern(m[k]!);
    return out;
  }
}

const EMPTY_TAGS: readonly string[] = Object.freeze([]);

/** buildInstance is one object literal holding every INSTANCE_FIELDS field, in the table's order. */
const buildInstance = new Function("o", `return { ${INSTANCE_FIELDS.map((f) => `${JSON.stringify(f.name)}: o[${JSON.stringify(f.name)}]`).join(", ")} };`) as (
  o: Instance,
) => Instance;

/** buildInstanceFrom is buildInstance reading the values by position (INSTANCE_FIELDS order) from an array. */
const buildInstanceFrom = new Function("v", `return { ${INSTANCE_FIELDS.map((f, k) => `${JSON.stringify(f.name)}: v[${k}]`).join(", ")} };`) as (
  values: readonly unknown[],
) => Instance;

/** InstanceState is what the registry adds to a registration's spec to make an instance. */
export type InstanceState = Omit<Instance, keyof InstanceSpec>;

/** buildInstanceOf is buildInstance reading the spec fields (part "spec") from `spec` and the others from `state`. */
const buildInstanceOf = new Function(
  "spec",
  "state",
  `return { ${INSTANCE_FIELDS.map((f) => `${JSON.stringify(f.name)}: ${f.part === "spec" ? "spec" : "state"}[${JSON.stringify(f.name)}]`).join(", ")} };`,
) as (spec: InstanceSpec, state: InstanceState) => Instance;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * shareValues replaces, in place, the fields of a record just built by one of the literals above
 * with their shared copies (same shape: a string for a string, a list for a list). Tags and
 * metadata are copied (shared) as copyRecord would copy them.
 */
function shareValues(c: Mutable<Instance>, pool: StringPool): Instance {
  c.service = pool.intern(c.service);
  c.zone = pool.intern(c.zone);
  c.note = pool.intern(c.note);
  c.maintenanceReason = pool.intern(c.maintenanceReason);
  c.tags = pool.tags(c.tags);
  c.metadata = pool.metadata(c.metadata);
  return c;
}

/**
 * compactInstance is the record to store for `i`: the same values in the compact layout, repeated
 * strings shared. Not `buildInstance({ ...i, service: … })`: that spread built a second 20-field
 * object per instance, a tenth of a learner's restore.
 */
export function compactInstance(i: Instance, pool: StringPool): Instance {
  return shareValues(buildInstance(i), pool);
}

/**
 * compactInstanceOf is compactInstance of `{ ...spec, ...state }` without building that merge:
 * that 20-field spread of the decoded spec allocated ~3.6 KB per registration (V8's sampling heap
 * profiler, 100,000 registrations in one process: 370 of the 475 MB allocated), on every node.
 */
export function compactInstanceOf(spec: InstanceSpec, state: InstanceState, pool: StringPool): Instance {
  return shareValues(buildInstanceOf(spec, state), pool);
}

/** compactInstanceFrom is compactInstance of the record whose values, in INSTANCE_FIELDS order, are `values` (a snapshot row once checked). */
export function compactInstanceFrom(values: readonly unknown[], pool: StringPool): Instance {
  return shareValues(buildInstanceFrom(values), pool);
}

/** instanceFrom is the record whose values, in INSTANCE_FIELDS order, are `values`, nothing shared. */
export function instanceFrom(values: readonly unknown[]): Instance {
  return buildInstanceFrom(values);
}
