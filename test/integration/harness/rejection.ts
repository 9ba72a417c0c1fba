import { expect } from "vitest";
import { RaftmeshError } from "../../../src/client/index.js";

/** rejection awaits a call that must fail and returns its RaftmeshError (the test fails if it succeeds). */
export async function rejection(p: Promise<unknown>): Promise<RaftmeshError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RaftmeshError);
    return err as RaftmeshError;
  }
  throw new Error("expected the call to fail");
}
