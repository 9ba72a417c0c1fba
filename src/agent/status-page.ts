/**
 * The status page's routes on the admin port: GET / (the page), /ui/* (its CSS and JS, plain
 * files from web/status/ in the repository, no build step), /status/overview (its data as JSON)
 * and /events/stream (the node's events as server-sent events).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AdminRoute } from "./admin-http.js";
import type { Monitoring } from "./monitoring.js";

/** WEB_SEARCH_DEPTH_MAX bounds the walk up to web/status: src/agent and dist/agent are 2 levels below the root, dist/src/agent 3. */
const WEB_SEARCH_DEPTH_MAX = 6;

/** STATUS_FILES are the page's files and their content types; nothing else is served from disk. */
const STATUS_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/ui/status.css": { file: "status.css", type: "text/css; charset=utf-8" },
  "/ui/status.js": { file: "status.js", type: "text/javascript; charset=utf-8" },
};

/** findWebDir walks up from this module to web/status (it runs from src/ with tsx and from dist/). */
export function findWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth <= WEB_SEARCH_DEPTH_MAX; depth++) {
    const candidate = join(dir, "web", "status");
    if (existsSync(join(candidate, "index.html"))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find web/status/index.html above ${fileURLToPath(import.meta.url)}`);
}

/** statusPageRoutes are the admin routes of the page, reading its files once. */
export function statusPageRoutes(monitoring: Monitoring): AdminRoute[] {
  const dir = findWebDir();
  const files = new Map(Object.entries(STATUS_FILES).map(([path, f]) => [path, { body: readFileSync(join(dir, f.file)), type: f.type }]));
  return [
    (_req, res, path) => {
      const f = files.get(path);
      if (!f) return false;
      res.writeHead(200, { "content-type": f.type, "cache-control": "no-cache" });
      res.end(f.body);
      return true;
    },
    (_req, res, path) => {
      if (path !== "/status/overview") return false;
      monitoring.overview().then(
        (o) => {
          res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache" });
          res.end(`${JSON.stringify(o)}\n`);
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(`${JSON.stringify({ error: err.message })}\n`);
        },
      );
      return true;
    },
    (req, res, path) => {
      if (path !== "/events/stream") return false;
      monitoring.streamEvents(req, res);
      return true;
    },
  ];
}
