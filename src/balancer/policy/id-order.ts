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
