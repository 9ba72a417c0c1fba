/**
 * Pure statistics for benchmark samples: median, nearest-rank percentiles, a latency summary and a
 * fixed-width text table. No I/O and no clocks, so it is tested synchronously.
 */

/** LatencySummary is what a benchmark reports about a set of latencies; every figure is in milliseconds, NaN when count is 0. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** sortedCopy returns the samples as an ascending Float64Array, leaving the input untouched. */
function sortedCopy(samples: ArrayLike<number>): Float64Array {
  // Float64Array.sort compares numerically, unlike Array.prototype.sort without a comparator.
  return Float64Array.from(samples).sort();
}

/** percentileOfSorted is percentile for samples already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside [0, 100]`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[rank - 1] as number;
}

/** percentile returns the nearest-rank p-th percentile (0 ≤ p ≤ 100) of the samples, NaN when there are none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sortedCopy(samples), p);
}

/**
 * median returns the middle sample, or the mean of the two middle samples when the count is even;
 * NaN when there are none. Unlike the nearest-rank p50 it does not lean low on an even count,
 * which matters for a handful of failover rounds.
 */
export function median(samples: ArrayLike<number>): number {
  const sorted = sortedCopy(samples);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  if (n % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** summarizeLatencies returns count, nearest-rank p50 and p99, and the maximum of latencies given in milliseconds. */
export function summarizeLatencies(latenciesMs: ArrayLike<number>): LatencySummary {
  const sorted = sortedCopy(latenciesMs);
  const n = sorted.length;
  return {
    count: n,
    p50Ms: percentileOfSorted(sorted, 50),
    p99Ms: percentileOfSorted(sorted, 99),
    maxMs: n === 0 ? Number.NaN : (sorted[n - 1] as number),
  };
}

/** Cell is one table cell: numbers are right-aligned, strings left-aligned. */
export type Cell = string | number;

/** COLUMN_GAP separates table columns; two spaces keep columns apart without a border. */
const COLUMN_GAP = "  ";

/**
 * formatTable renders a header and rows as fixed-width text, one line per row, columns as wide as
 * their widest cell. Rows shorter than the header are padded with empty cells; a longer row is a
 * programmer error and throws.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  for (const row of rows) {
    if (row.length > header.length) throw new RangeError(`row has ${row.length} cells but the header has ${header.length}`);
  }
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => cellText(r[col]).length)));
  // A header sits right-aligned over a numeric column so the label lines up with the figures.
  const numeric = header.map((_, col) => typeof rows[0]?.[col] === "number");
  const line = (cells: readonly Cell[]) =>
    widths
      .map((w, col) => {
        const cell = cells[col];
        const text = cellText(cell);
        return typeof cell === "number" || (cells === header && numeric[col]) ? text.padStart(w) : text.padEnd(w);
      })
      .join(COLUMN_GAP)
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join(COLUMN_GAP);
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** cellText renders a cell; NaN shows as "-" because it means "no samples". */
function cellText(cell: Cell | undefined): string {
  if (cell === undefined) return "";
  if (typeof cell === "number" && Number.isNaN(cell)) return "-";
  return String(cell);
}
