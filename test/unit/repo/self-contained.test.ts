import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const SCANNED = ["src", "test", "bin", "cluster", ".ci"];
const CODE = /\.(ts|js|mjs|cjs|sh)$|^run$/;

// A user's fresh clone has no sibling folders: nothing that runs or tests may read beside the
// repository (the shared design folder exists only next to the developers' checkout).
const OUTSIDE: [RegExp, string][] = [
  [/\.\.\/+shared\b/, "a relative path into the sibling design folder"],
  [/["']\.\.["']\s*,\s*["']shared["']/, "a path joined into the sibling design folder"],
  [/\bshared\/testdata\b/, "the shared test data"],
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === "node_modules" || name === "fixtures") return [];
    return statSync(p).isDirectory() ? files(p) : CODE.test(name) ? [p] : [];
  });
}

/** offences lists each line of text that reaches outside the repository. */
function offences(file: string, text: string): string[] {
  const found: string[] = [];
  text.split("\n").forEach((line, i) => {
    for (const [re, what] of OUTSIDE) if (re.test(line)) found.push(`${file}:${i + 1}: ${what}`);
  });
  return found;
}

describe("repo: self-contained", () => {
  it("repo: no code or test reads outside the repository", () => {
    const all = SCANNED.flatMap((d) => {
      try {
        return files(join(ROOT, d));
      } catch {
        return [];
      }
    });
    expect(all.length).toBeGreaterThan(50);
    const found = all.flatMap((f) => offences(relative(ROOT, f), readFileSync(f, "utf8")));
    expect(found).toEqual([]);
  });

  it("repo: the scan catches a path outside the repository", () => {
    // Built from parts, so this file does not itself contain what it forbids.
    const folder = "shared";
    const sibling = ["..", folder];
    expect(offences("x.ts", `const d = path.resolve(root, "${sibling.join('", "')}", "testdata");`)).toHaveLength(1);
    expect(offences("x.ts", `readFileSync("${sibling.join("/")}/DESIGN.md")`)).toHaveLength(1);
    expect(offences("x.ts", 'const d = join(root, "test", "fixtures");')).toHaveLength(0);
  });
});
