/**
 * Webhook delivery of alerts in the Alertmanager webhook payload (version 4), so receivers
 * written for Alertmanager work unchanged: one POST per firing or resolved alert, to every
 * configured URL, each URL with its own bounded queue and one delivery in flight (so a receiver
 * sees an alert's firing before its resolution). A failed POST is retried with exponential
 * backoff; a full queue drops its oldest notification. Failures are logged and counted and never
 * reach the node: enqueue returns at once.
 */
import type { Logger } from "../common/logger.js";
import type { Alert } from "./alerts.js";
import { WebhookError } from "./errors.js";

/**
 * WEBHOOK_QUEUE_MAX bounds the notifications waiting for one URL. A dead receiver must not make
 * the node hold alerts without end; 256 is hours of a flapping cluster's alerts at the rules'
 * for-durations, and the oldest go first (the newest state of an alert is the one that matters).
 */
export const WEBHOOK_QUEUE_MAX = 256;
/** WEBHOOK_ATTEMPTS_MAX: a notification is tried this often (1 + 4 retries, about 8 s of backoff) before it is given up and counted as failed. */
export const WEBHOOK_ATTEMPTS_MAX = 5;
/** WEBHOOK_BACKOFF_BASE_MS doubles per retry up to WEBHOOK_BACKOFF_MAX_MS: a receiver that restarts is caught in seconds without being hammered. */
export const WEBHOOK_BACKOFF_BASE_MS = 500;
export const WEBHOOK_BACKOFF_MAX_MS = 8_000;
/** WEBHOOK_TIMEOUT_MS bounds one POST, so a receiver that hangs holds its queue no longer than this per attempt. */
export const WEBHOOK_TIMEOUT_MS = 5_000;

/** AlertmanagerPayload is the Alertmanager webhook body (version "4"). */
export interface AlertmanagerPayload {
  readonly version: "4";
  readonly groupKey: string;
  readonly truncatedAlerts: number;
  readonly status: "firing" | "resolved";
  readonly receiver: string;
  readonly groupLabels: Record<string, string>;
  readonly commonLabels: Record<string, string>;
  readonly commonAnnotations: Record<string, string>;
  readonly externalURL: string;
  readonly alerts: {
    readonly status: "firing" | "resolved";
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
    readonly startsAt: string;
    readonly endsAt: string;
    readonly generatorURL: string;
    readonly fingerprint: string;
  }[];
}

/** ZERO_TIME is how Alertmanager writes the end of an alert still firing. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/** payloadOf is the webhook body for one alert. */
export function payloadOf(alert: Alert, externalURL: string): AlertmanagerPayload {
  const groupLabels = { alertname: alert.name };
  const labelText = Object.keys(alert.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(alert.labels[k])}`)
    .join(",");
  return {
    version: "4",
    groupKey: `{}:{alertname=${JSON.stringify(alert.name)}}/{${labelText}}`,
    truncatedAlerts: 0,
    status: alert.status,
    receiver: "raftmesh",
    groupLabels,
    commonLabels: { ...alert.labels },
    commonAnnotations: { ...alert.annotations },
    externalURL,
    alerts: [
      {
        status: alert.status,
        labels: { ...alert.labels },
        annotations: { ...alert.annotations },
        startsAt: new Date(alert.startsAt).toISOString(),
        endsAt: alert.endsAt > 0 ? new Date(alert.endsAt).toISOString() : ZERO_TIME,
        generatorURL: externalURL,
        fingerprint: alert.fingerprint,
      },
    ],
  };
}

/** WebhookStats count what happened to notifications, over every URL. */
export interface WebhookStats {
  sent: number;
  retries: number;
  failed: number;
  dropped: number;
}

/** WebhookOptions configure the sender; the timing fields are for tests. */
export interface WebhookOptions {
  readonly urls: readonly string[];
  readonly logger: Logger;
  readonly queueMax?: number;
  readonly backoffBaseMs?: number;
  readonly timeoutMs?: number;
}

interface Target {
  readonly url: string;
  readonly queue: AlertmanagerPayload[];
  busy: boolean;
}

/** WebhookSender delivers payloads to every URL; see the module comment. */
export class WebhookSender {
  readonly stats: WebhookStats = { sent: 0, retries: 0, failed: 0, dropped: 0 };
  private readonly targets: Target[];
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: WebhookOptions) {
    this.targets = opts.urls.map((url) => ({ url, queue: [], busy: false }));
  }

  /** enqueue queues a payload for every URL and returns at once. */
  enqueue(p: AlertmanagerPayload): void {
    if (this.closed) return;
    const max = this.opts.queueMax ?? WEBHOOK_QUEUE_MAX;
    for (const t of this.targets) {
      t.queue.push(p);
      if (t.queue.length > max) {
        const lost = t.queue.shift();
        this.stats.dropped++;
        this.opts.logger.warn({ url: t.url, dropped: this.stats.dropped, alert: lost?.groupKey }, `webhook queue full (${max}): dropped the oldest notification`);
      }
      void this.drain(t);
    }
  }

  /** pending is how many notifications wait, over every URL (in flight included). */
  pending(): number {
    return this.targets.reduce((n, t) => n + t.queue.length, 0);
  }

  /** close stops delivering; what is queued is dropped. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async drain(t: Target): Promise<void> {
    if (t.busy) return;
    t.busy = true;
    try {
      while (!this.closed && t.queue.length > 0) {
        const p = t.queue[0] as AlertmanagerPayload;
        await this.deliver(t.url, p);
        // The head may have been dropped while this one was in flight (a full queue drops the oldest).
        if (t.queue[0] === p) t.queue.shift();
      }
    } finally {
      t.busy = false;
    }
  }

  private async deliver(url: string, p: AlertmanagerPayload): Promise<void> {
    const base = this.opts.backoffBaseMs ?? WEBHOOK_BACKOFF_BASE_MS;
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS_MAX && !this.closed; attempt++) {
      try {
        await post(url, p, this.opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS);
        this.stats.sent++;
        return;
      } catch (err) {
        const e = err as WebhookError;
        const permanent = e instanceof WebhookError && e.status >= 400 && e.status < 500 && e.status !== 429;
        if (permanent || attempt === WEBHOOK_ATTEMPTS_MAX) {
          this.stats.failed++;
          this.opts.logger.error({ url, err: e.message, attempt, alert: p.groupKey, failed: this.stats.failed }, "webhook delivery failed; notification given up");
          return;
        }
        this.stats.retries++;
        this.opts.logger.warn({ url, err: e.message, attempt }, "webhook delivery failed; retrying");
        await this.sleep(Math.min(WEBHOOK_BACKOFF_MAX_MS, base * 2 ** (attempt - 1)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      t.unref();
      this.timers.add(t);
    });
  }
}

async function post(url: string, body: AlertmanagerPayload, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new WebhookError(url, 0, (err as Error).message);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new WebhookError(url, res.status, `answered ${res.status}`);
}
