/** The shapes of the local agent: a service definition, its checks, and a check's outcome. */

import type { InstanceInput } from "../client/index.js";
import type { ProcessSpec } from "./supervisor.js";

/** CheckStatus is a check's verdict, in the registry's health words. */
export type CheckStatus = "passing" | "warning" | "critical";

/** STATUS_RANK orders statuses from best to worst; an instance reports its worst check. */
export const STATUS_RANK: Readonly<Record<CheckStatus, number>> = { passing: 0, warning: 1, critical: 2 };

/** CheckResult is one run of a check: its status and a short note saying why. */
export interface CheckResult {
  readonly status: CheckStatus;
  readonly note: string;
}

/** Timing is when a check runs and how its results are damped (HAProxy's rise and fall). */
export interface Timing {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** rise: this many better results in a row before the check's status improves. */
  readonly rise: number;
  /** fall: this many worse results in a row before the check's status worsens. */
  readonly fall: number;
  /** jitterMs: each wait is intervalMs plus a random share of up to jitterMs, so checks do not align. */
  readonly jitterMs: number;
}

/** HttpProbe: 2xx passing, 429 warning, anything else (or no answer, or the body without `body`) critical. */
export interface HttpProbe {
  readonly kind: "http";
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** body, when not empty, must occur in the answer's first HTTP_BODY_BYTES_MAX bytes. */
  readonly body: string;
}

/** TcpProbe: a connection accepted within the timeout is passing, else critical. */
export interface TcpProbe {
  readonly kind: "tcp";
  readonly host: string;
  readonly port: number;
}

/** GrpcProbe: grpc.health.v1.Health/Check of `service` ("" for the server as a whole); SERVING is passing, else critical. */
export interface GrpcProbe {
  readonly kind: "grpc";
  readonly host: string;
  readonly port: number;
  readonly service: string;
}

/** ScriptProbe: the command runs without a shell; exit 0 passing, 1 warning, anything else critical; its output is the note. */
export interface ScriptProbe {
  readonly kind: "script";
  readonly args: readonly string[];
}

/** Probe is what a check does once. */
export type Probe = HttpProbe | TcpProbe | GrpcProbe | ScriptProbe;

/** CheckSpec is one check of a definition. */
export interface CheckSpec {
  /** name identifies the check in logs and notes (default: its kind and index). */
  readonly name: string;
  readonly probe: Probe;
  readonly timing: Timing;
}

/** ProcessSpec is a process a definition runs under the node's supervisor: the supervisor's own type. */
export type { ProcessSpec };

/**
 * InstanceDef is the registry instance a definition registers: the SDK's InstanceInput with every
 * field a definition file gives filled in (definitions.ts sets the defaults). A definition has no
 * deregisterCriticalAfterMs: a local instance is removed with its definition.
 */
export type InstanceDef = Required<Omit<InstanceInput, "deregisterCriticalAfterMs">>;

/** Definition is one local service instance: what to register, how to check it, what to run. */
export interface Definition {
  /** file is the definition file it came from (for logs and errors). */
  readonly file: string;
  readonly instance: InstanceDef;
  readonly checks: readonly CheckSpec[];
  readonly process?: ProcessSpec;
}

/** definitionKey is "service/id", a definition's identity across reloads. */
export function definitionKey(d: { readonly instance: { readonly service: string; readonly id: string } }): string {
  return `${d.instance.service}/${d.instance.id}`;
}
