import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** PROTO_SEARCH_DEPTH_MAX bounds the walk up to the proto/ directory: src/x and dist/x are 2 levels below it, dist/src/x 3. */
const PROTO_SEARCH_DEPTH_MAX = 6;

/**
 * findProtoDir walks up from the calling module to the package's proto/ directory, identified by
 * a file it must contain, so the same code runs from src/ (tsx), dist/ and an installed package.
 */
export function findProtoDir(moduleUrl: string, mustContain: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (let depth = 0; depth <= PROTO_SEARCH_DEPTH_MAX; depth++) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, mustContain))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find proto/${mustContain} above ${fileURLToPath(moduleUrl)}`);
}
