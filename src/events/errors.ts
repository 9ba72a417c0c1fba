/** EventsError is the base of the event stream's expected failures. */
export class EventsError extends Error {}

/** EventsCompactedError: from_seq is older than the oldest event the ring still holds. */
export class EventsCompactedError extends EventsError {
  constructor(
    readonly fromSeq: number,
    readonly oldest: number,
  ) {
    super(`from_seq ${fromSeq} is older than this node's oldest event (seq ${oldest}); watch from 0 for everything it holds`);
    this.name = "EventsCompactedError";
  }
}

/** EventsLaggingError ends a follower with more than the bound of events waiting for it. */
export class EventsLaggingError extends EventsError {
  constructor(
    readonly lastSent: number,
    readonly limit: number,
  ) {
    super(`this follower fell ${limit} events behind (EVENT_FOLLOWER_QUEUE_MAX); resume with from_seq ${lastSent}`);
    this.name = "EventsLaggingError";
  }
}

/** EventsArgumentError is a bad request field, named. */
export class EventsArgumentError extends EventsError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "EventsArgumentError";
  }
}

/** WebhookError is one failed delivery (status or network error), kept for the log. */
export class WebhookError extends EventsError {
  constructor(
    readonly url: string,
    readonly status: number,
    reason: string,
  ) {
    super(`webhook ${url}: ${reason}`);
    this.name = "WebhookError";
  }
}
