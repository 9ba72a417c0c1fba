/** BalancerError is the base of the balancing endpoint's expected failures. */
export class BalancerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BalancerError";
  }
}

/** ListenError is thrown by startBalancer when a listener cannot bind (port in use, bad address). */
export class ListenError extends BalancerError {
  constructor(
    readonly listener: string,
    options?: { cause?: unknown },
  ) {
    super(`balancer listener ${listener} could not listen`, options);
    this.name = "ListenError";
  }
}

/** WorkerExitError says a balancer worker thread ended without being asked to. */
export class WorkerExitError extends BalancerError {
  constructor(
    readonly worker: number,
    readonly code: number,
  ) {
    super(`balancer worker ${worker} exited with code ${code}`);
    this.name = "WorkerExitError";
  }
}

/** TryTimeout ends a try that got no response headers within the per-try timeout. */
export class TryTimeout extends BalancerError {
  constructor() {
    super("per-try timeout");
    this.name = "TryTimeout";
  }
}

/**
 * AnswerCut resets a client's h2c stream whose answer had started when its upstream failed: a
 * reset (RST_STREAM), so the client cannot take a truncated answer for a whole one.
 */
export class AnswerCut extends BalancerError {
  constructor() {
    super("the upstream stream failed after the answer started");
    this.name = "AnswerCut";
  }
}
