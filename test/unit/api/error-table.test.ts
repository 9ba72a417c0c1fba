/**
 * The error table as a test: every error class exported by any module's errors.ts either has its
 * row in ERROR_TABLE (src/api/errors.ts) or belongs to a module whose errors never reach a client
 * API handler. Adding a class without deciding its answer fails here.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ERROR_TABLE, type ErrorClass, toStatus } from "../../../src/api/errors.js";
import { METADATA_FINAL, METADATA_NOT_APPLIED } from "../../../src/common/metadata.js";
import {
  RefusedExhaustedError,
  RefusedInvalidError,
  RefusedNotFoundError,
  RefusedPreconditionError,
  HeartbeatNotRecordedError,
  renewError,
  resultError,
  StaleSessionError,
  UnknownInstanceError,
} from "../../../src/registry/errors.js";

const SRC = join(import.meta.dirname, "..", "..", "..", "src");

/** OFF_THE_API: modules whose errors never reach a handler (the API may not import them), with why. */
const OFF_THE_API: Readonly<Record<string, string>> = {
  storage: "storage failures stop the node (RaftNode's failure event); callers then see NodeStoppedError",
  transport: "peer-to-peer only: a failed send is a lost Raft message, retried by the core",
  agent: "start-up refusals, reported by the process before any API listens",
  cli: "the command line's own usage errors",
  client: "the client SDK's view of a status it received",
  balancer: "the data plane answers HTTP/TCP clients itself (JSON 4xx/5xx), never through the gRPC API",
  demo: "demo applications of the SDK, outside the node",
  local: "the node's local agent is a client of the API: its definition and supervisor errors stay in the process that runs it (the log, the admin endpoint's 400 with the field)",
  events: "Events/Watch maps its own errors to codes (src/events/service.ts statusOf, test/unit/events/service.test.ts); webhook failures are logged and counted, never answered",
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** errorModules loads every src/<module>/errors.ts and lists its exported error classes. */
async function errorModules(): Promise<Map<string, [string, ErrorClass][]>> {
  const out = new Map<string, [string, ErrorClass][]>();
  for (const module of readdirSync(SRC)) {
    const path = join(SRC, module, "errors.ts");
    if (!statSync(join(SRC, module)).isDirectory() || !files(join(SRC, module)).includes(path)) continue;
    const exported = (await import(path)) as Record<string, unknown>;
    const classes = Object.entries(exported).filter(
      (e): e is [string, ErrorClass] => typeof e[1] === "function" && (e[1] as { prototype?: unknown }).prototype instanceof Error,
    );
    out.set(module, classes);
  }
  return out;
}

const answer = (err: Error) => {
  const st = toStatus(err);
  return { code: status[st.code as status], notApplied: (st.metadata?.get(METADATA_NOT_APPLIED).length ?? 0) > 0, details: st.details };
};

describe("api: error table", () => {
  it("errors: every exported error class of every errors.ts has a row, or its module never reaches the API", async () => {
    const modules = await errorModules();
    expect(modules.size).toBeGreaterThanOrEqual(9);
    const missing: string[] = [];
    for (const [module, classes] of modules) {
      expect(classes.length, module).toBeGreaterThan(0);
      if (OFF_THE_API[module] !== undefined) continue;
      for (const [name, cls] of classes) if (!ERROR_TABLE.has(cls)) missing.push(`${module}/errors.ts: ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it("errors: the check catches a class without a row", () => {
    class PlantedError extends Error {}
    expect(ERROR_TABLE.has(PlantedError)).toBe(false);
    // An unknown class answers INTERNAL, never not-applied.
    expect(answer(new PlantedError("x"))).toEqual({ code: "INTERNAL", notApplied: false, details: "internal error: x" });
  });

  it("errors: error classes live only in their module's errors.ts", () => {
    const outside = files(SRC)
      .filter((f) => !f.endsWith(`${sep}errors.ts`))
      .filter((f) => /\bclass\s+\w+\s+extends\s+\w*Error\b/.test(readFileSync(f, "utf8")))
      .map((f) => relative(SRC, f));
    expect(outside).toEqual([]);
  });

  it("errors: a refused command result becomes its typed error, answered through the table", () => {
    const refused = (code: "not-found" | "failed-precondition" | "resource-exhausted" | "invalid-argument" | "stale-session") =>
      resultError({ ok: false, index: 4, code, message: "m" });
    expect(refused("not-found")).toBeInstanceOf(RefusedNotFoundError);
    expect(refused("failed-precondition")).toBeInstanceOf(RefusedPreconditionError);
    expect(refused("resource-exhausted")).toBeInstanceOf(RefusedExhaustedError);
    expect(refused("invalid-argument")).toBeInstanceOf(RefusedInvalidError);
    expect(refused("stale-session")).toBeInstanceOf(StaleSessionError);
    expect(answer(refused("not-found"))).toEqual({ code: "NOT_FOUND", notApplied: true, details: "m" });
    expect(answer(refused("failed-precondition"))).toEqual({ code: "FAILED_PRECONDITION", notApplied: true, details: "m" });
    expect(answer(refused("resource-exhausted"))).toEqual({ code: "RESOURCE_EXHAUSTED", notApplied: false, details: "m" });
    expect(answer(refused("invalid-argument"))).toEqual({ code: "INVALID_ARGUMENT", notApplied: true, details: "request: m" });
    expect(answer(refused("stale-session")).code).toBe("DEADLINE_EXCEEDED");
    expect(answer(refused("stale-session")).notApplied).toBe(false);
    // Only the stale session is final: resending it with its seq gets the same answer.
    const final = (e: Error) => (toStatus(e).metadata?.get(METADATA_FINAL).length ?? 0) > 0;
    expect(final(refused("stale-session"))).toBe(true);
    for (const code of ["not-found", "failed-precondition", "resource-exhausted", "invalid-argument"] as const) expect(final(refused(code))).toBe(false);
  });

  it("errors: a heartbeat the leader did not acknowledge names why", () => {
    expect(renewError("not-found", "web", "a")).toBeInstanceOf(UnknownInstanceError);
    expect(renewError(undefined, "web", "a")).toBeInstanceOf(UnknownInstanceError);
    expect(renewError("unconfirmed", "web", "a")).toBeInstanceOf(HeartbeatNotRecordedError);
    expect(answer(renewError("not-found", "web", "a"))).toEqual({ code: "NOT_FOUND", notApplied: true, details: "instance a of service web is not registered" });
    expect(answer(renewError("unconfirmed", "web", "a"))).toEqual({ code: "UNAVAILABLE", notApplied: true, details: "the heartbeat was not recorded (unconfirmed); send it again" });
  });
});
