import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CommandResult, formatScript, runScript } from "./transcript/interpreter.js";

/**
 * Runs every transcript in ./transcript and compares each command's output with the output written
 * under it. With UPDATE=1 the files are rewritten with the produced output instead, so that a
 * change of behaviour shows up as a diff to review.
 */

const DIR = join(import.meta.dirname, "transcript");
const UPDATE = process.env.UPDATE === "1";
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".txt"))
  .sort();

/** lineDiff is a small LCS diff: lines only in `want` get "-", only in `got` get "+". */
function lineDiff(want: readonly string[], got: readonly string[]): string[] {
  const n = want.length;
  const m = got.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const row = lcs[i] ?? [];
      row[j] = want[i] === got[j] ? (lcs[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && want[i] === got[j]) {
      out.push(`  ${want[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || (lcs[i]?.[j + 1] ?? 0) >= (lcs[i + 1]?.[j] ?? 0))) {
      out.push(`+ ${got[j++]}`);
    } else {
      out.push(`- ${want[i++]}`);
    }
  }
  return out;
}

function mismatches(file: string, results: readonly CommandResult[]): string[] {
  const report: string[] = [];
  for (const { item, output } of results) {
    const want = item.expected;
    if (want === undefined) {
      report.push(`${file}:${item.lineNo}: ${item.line}: no expected output (run with UPDATE=1)`);
      continue;
    }
    if (want.join("\n") === output.join("\n")) continue;
    report.push(`${file}:${item.lineNo}: ${item.line}  (- expected, + produced)`, ...lineDiff(want, output), "");
  }
  return report;
}

describe("raft: transcripts", () => {
  it("raft: the transcript directory holds scripts", () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  for (const file of files) {
    it(`raft: transcript ${file} shows the expected behaviour`, () => {
      const path = join(DIR, file);
      const text = readFileSync(path, "utf8");
      const { items, results } = runScript(text);
      if (UPDATE) {
        writeFileSync(
          path,
          formatScript(
            items,
            results.map((r) => r.output),
          ),
        );
        return;
      }
      const report = mismatches(file, results);
      if (report.length > 0) {
        throw new Error(`transcript ${file} differs (regenerate with UPDATE=1 and review the diff):\n${report.join("\n")}`);
      }
    });
  }
});
