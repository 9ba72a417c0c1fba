/**
 * Endpoints in id order. The feed sends a service's endpoints sorted by id (`<`, the registry's
 * order), so a patch finds each endpoint it changes by binary search instead of walking the table.
 */

/** idSearch is where id is, or goes, in items sorted by idOf (`<`): the first index whose id is not below it. */
export function idSearch<T>(items: readonly T[], id: string, idOf: (item: T) => string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (idOf(items[mid] as T) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** sortedById says whether items are in strictly ascending id order (`<`): sorted, and no id twice. */
export function sortedById<T>(items: readonly T[], idOf: (item: T) => string): boolean {
  for (let i = 1; i < items.length; i++) if (!(idOf(items[i - 1] as T) < idOf(items[i] as T))) return false;
  return true;
}

/** compareIds orders ids as idSearch and sortedById do. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** PatchSteps say how a patch changes one list in id order (the table's endpoints, a balancer's states). */
export interface PatchSteps<T, P> {
  readonly idOf: (item: T) => string;
  /** removed hears of each item a removal took out. */
  readonly removed?: (item: T) => void;
  /** replace gives the item for a put whose id is in the list already. */
  readonly replace: (item: T, put: P) => T;
  /** create gives the item for a put whose id is not. */
  readonly create: (put: P) => T;
}

/**
 * patchInOrder applies a patch to items in id order, in place: the ids in `removed` go, then each
 * put replaces the item of its id or goes in at its place, so the list stays in order. Both the
 * worker's table and its balancer's states take a patch through it, so they stay in step.
 */
export function patchInOrder<T, P extends { readonly id: string }>(
  items: T[],
  change: { readonly put: readonly P[]; readonly removed: readonly string[] },
  steps: PatchSteps<T, P>,
): void {
  for (const id of change.removed) {
    const at = idSearch(items, id, steps.idOf);
    const item = items[at];
    if (item === undefined || steps.idOf(item) !== id) continue;
    items.splice(at, 1);
    steps.removed?.(item);
  }
  for (const p of change.put) {
    const at = idSearch(items, p.id, steps.idOf);
    const item = items[at];
    if (item !== undefined && steps.idOf(item) === p.id) items[at] = steps.replace(item, p);
    else items.splice(at, 0, steps.create(p));
  }
}
