import type { Rng } from "./rng.js";

/** FaultWeights are the relative odds of each fault when one is injected. */
export interface FaultWeights {
  crash: number;
  crashLeader: number;
  pauseLeader: number;
  partition: number;
  heal: number;
  transfer: number;
  membership: number;
}

/** FaultProfile is the character of one seed's fault phase. */
export interface FaultProfile {
  readonly name: "calm" | "storm" | "chaos";
  /** faultRate is the chance per tick that a fault is injected. */
  readonly faultRate: number;
  readonly weights: FaultWeights;
  readonly downTicksMax: number;
  readonly pauseTicksMax: number;
  readonly writeRate: number;
  readonly readRate: number;
  /** messageBytesMax of 1 sends one entry per append, so a batch can be half replicated. */
  readonly messageBytesMax: number;
  readonly inflightMessagesMax: number;
}

const BASE_WEIGHTS: FaultWeights = {
  crash: 25,
  crashLeader: 10,
  pauseLeader: 10,
  partition: 20,
  heal: 15,
  transfer: 10,
  membership: 10,
};

/**
 * pickProfile draws a profile. Calm seeds have a fault every 40-200 ticks, like a bad day in
 * production. Storms have one every 7-20 ticks. Chaos seeds crash and pause leaders every few
 * ticks while clients write on every tick and appends carry one entry: the conditions under which
 * entries of several terms are half replicated when leaders change (Raft paper, figure 8).
 */
export function pickProfile(rng: Rng): FaultProfile {
  const roll = rng.next();
  if (roll < 0.4) {
    return {
      name: "calm",
      faultRate: 0.005 + rng.next() * 0.02,
      weights: BASE_WEIGHTS,
      downTicksMax: 100,
      pauseTicksMax: 60,
      writeRate: 0.25,
      readRate: 0.1,
      messageBytesMax: rng.chance(0.5) ? 1 : 64 + rng.nextInt(512),
      inflightMessagesMax: 8,
    };
  }
  if (roll < 0.8) {
    return {
      name: "storm",
      faultRate: 0.05 + rng.next() * 0.1,
      weights: BASE_WEIGHTS,
      downTicksMax: 30,
      pauseTicksMax: 40,
      writeRate: 0.5,
      readRate: 0.3,
      messageBytesMax: rng.chance(0.5) ? 1 : 64 + rng.nextInt(512),
      inflightMessagesMax: 8,
    };
  }
  return {
    name: "chaos",
    faultRate: 0.15 + rng.next() * 0.15,
    weights: { ...BASE_WEIGHTS, crash: 15, crashLeader: 30, pauseLeader: 20, membership: 0, transfer: 5 },
    downTicksMax: 12,
    pauseTicksMax: 25,
    writeRate: 1,
    readRate: 0.5,
    messageBytesMax: 1,
    inflightMessagesMax: 1 + rng.nextInt(2),
  };
}
