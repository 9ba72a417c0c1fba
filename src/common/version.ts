import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** PACKAGE_SEARCH_DEPTH_MAX bounds the walk up from this module to package.json (src/common and dist/common are 2 below it). */
const PACKAGE_SEARCH_DEPTH_MAX = 5;

let cached: string | undefined;

/** packageVersion is raftmesh's version from its package.json ("unknown" if it cannot be found). */
export function packageVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  cached = "unknown";
  for (let depth = 0; depth <= PACKAGE_SEARCH_DEPTH_MAX; depth++) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "raftmesh" && pkg.version) {
        cached = pkg.version;
        break;
      }
    }
    dir = dirname(dir);
  }
  return cached;
}
