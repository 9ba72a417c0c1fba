/**
 * The local agent's view of a supervised process: the shape of src/local/supervisor.ts's
 * Supervisor, so the agent composes the real one (`superviseWith`) and the local agent needs
 * nothing else from it.
 */
import type { Emitter } from "../common/emitter.js";
import type { ProcessSpec } from "./types.js";

/** ProcessEvent is what a supervisor reports (src/local/supervisor.ts's SupervisorEvent). */
export type ProcessEvent =
  | { kind: "started"; pid: number; processToken?: string }
  | { kind: "exited"; code: number | null; signal: string | null; restartInMs: number | null; processToken?: string }
  | { kind: "crash-loop"; restarts: number; windowMs: number };

/** SupervisedProcess is one supervised process (only `on` of its emitter is used, so a supervisor whose events carry more fits). */
export interface SupervisedProcess {
  readonly events: Pick<Emitter<{ event: ProcessEvent }>, "on">;
  start(): void;
  stop(): Promise<void>;
  readonly running: boolean;
}

/** Supervise builds (does not start) the supervisor of one definition's process; name is "service-id" (it names the log files). */
export type Supervise = (name: string, spec: ProcessSpec) => SupervisedProcess;
