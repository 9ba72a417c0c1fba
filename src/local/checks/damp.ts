import { type CheckResult, type CheckStatus, STATUS_RANK } from "../types.js";

/**
 * Damped is a check's reported state. Invariant: candidate is undefined exactly when streak is 0;
 * candidate is never the reported status.
 */
export interface Damped {
  /** status is undefined until the first result. */
  readonly status: CheckStatus | undefined;
  readonly note: string;
  /** candidate is the status the last `streak` results agree on, differing from status. */
  readonly candidate: CheckStatus | undefined;
  readonly streak: number;
}

/** DAMPED_INITIAL is a check that has not run yet. */
export const DAMPED_INITIAL: Damped = { status: undefined, note: "", candidate: undefined, streak: 0 };

/**
 * damp applies HAProxy's rise and fall to one result: the first result counts at once (there is
 * nothing to damp against); after that the status improves after `rise` better results in a row
 * and worsens after `fall` worse ones in a row, each counted for the one status they agree on. A
 * result equal to the status resets the streak and refreshes the note.
 */
export function damp(s: Damped, r: CheckResult, rise: number, fall: number): Damped {
  if (s.status === undefined || r.status === s.status) return { status: r.status, note: r.note, candidate: undefined, streak: 0 };
  const streak = s.candidate === r.status ? s.streak + 1 : 1;
  const needed = STATUS_RANK[r.status] < STATUS_RANK[s.status] ? rise : fall;
  if (streak >= needed) return { status: r.status, note: r.note, candidate: undefined, streak: 0 };
  return { status: s.status, note: s.note, candidate: r.status, streak };
}

/**
 * dampDown is the state of a check whose target is known to be gone (its supervised process
 * exited): critical at once, whatever fall says, so the restarted process must earn `rise` passing
 * results again before the check reports it passing. Without it a check with fall > 1 that had not
 * yet fallen would still say passing, and the instance would turn passing the moment the process
 * was started again, before it listened.
 */
export function dampDown(note: string): Damped {
  return { status: "critical", note, candidate: undefined, streak: 0 };
}
