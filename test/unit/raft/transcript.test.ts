import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CommandResult, formatScript, parseScript, runScript } from "./transcript/interpreter.js";

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
    } else if (i < n && (j >= m || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out.push(`- ${want[i++]}`);
    } else {
      out.push(`+ ${got[j++]}`);
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

  it.skipIf(UPDATE)("raft: transcript files are in canonical form (parsing and formatting gives them back unchanged)", () => {
    for (const file of files) {
      const text = readFileSync(join(DIR, file), "utf8");
      const items = parseScript(text);
      const expected = items.flatMap((it) => (it.kind === "cmd" ? [it.expected ?? []] : []));
      expect(formatScript(items, expected), file).toBe(text);
    }
  });

  it("raft: the interpreter fills in a missing expected output and reports errors with their line", () => {
    const { items, results } = runScript("add-nodes 1\n\n# comment\nstatus 1\n");
    expect(formatScript(
      items,
      results.map((r) => r.output),
    )).toBe(
      "add-nodes 1\n----\nn1: follower term=1 vote=none lead=none commit=1 applied=1 last=1 voters=(n1) learners=()\n\n" +
        "# comment\nstatus 1\n----\nn1: follower term=1 vote=none lead=none commit=1 applied=1 last=1 voters=(n1) learners=()\n",
    );
    expect(mismatches("x.txt", results)).toEqual([
      "x.txt:1: add-nodes 1: no expected output (run with UPDATE=1)",
      "x.txt:4: status 1: no expected output (run with UPDATE=1)",
    ]);
    expect(() => runScript("add-nodes 1\n----\nok\n\nfrobnicate 1\n")).toThrow(/line 5: frobnicate 1: .*unknown command/);
  });

  it("raft: a mismatch is reported as a line diff under the command", () => {
    const { results } = runScript("add-nodes 1\n----\nn1: leader\n");
    const report = mismatches("x.txt", results);
    expect(report[0]).toBe("x.txt:1: add-nodes 1  (- expected, + produced)");
    expect(report).toContain("- n1: leader");
    expect(report.some((l) => l.startsWith("+ n1: follower term=1"))).toBe(true);
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
