import type { Logger } from "../common/logger.js";
import type { Alert, AlertEngine, AlertView } from "./alerts.js";
import { payloadOf, type WebhookSender } from "./webhook.js";

/** AlertingOptions wire the rules to their receivers. */
export interface AlertingOptions {
  readonly engine: AlertEngine;
  readonly sender: WebhookSender;
  /** externalURL is the payload's externalURL and generatorURL (this node's status page). */
  readonly externalURL: string;
  /** leads says whether this node leads now (only the leader sends cluster alerts). */
  readonly leads: () => boolean;
  readonly logger: Logger;
}

/**
 * Alerting runs the rules on a node: tick() evaluates them and sends what fired or resolved —
 * node alerts always, cluster alerts only while this node leads (see alerts.ts) — and
 * leadershipChanged() makes a new leader send the cluster alerts firing in its own state, since
 * the old leader may have died before it could send their resolution or their firing.
 */
export class Alerting {
  private leading = false;

  constructor(private readonly opts: AlertingOptions) {}

  tick(view: AlertView, nowMs: number): Alert[] {
    const changed = this.opts.engine.evaluate(view, nowMs);
    for (const a of changed) {
      this.opts.logger.info({ alert: a.name, status: a.status, labels: a.labels, fingerprint: a.fingerprint }, `alert ${a.name} ${a.status}`);
      if (a.scope === "node" || this.opts.leads()) this.opts.sender.enqueue(payloadOf(a, this.opts.externalURL));
    }
    return changed;
  }

  /** leadershipChanged hears this node's leadership; on taking over it sends the cluster alerts firing here. */
  leadershipChanged(leads: boolean): void {
    const took = leads && !this.leading;
    this.leading = leads;
    if (!took) return;
    for (const a of this.opts.engine.active()) if (a.scope === "cluster") this.opts.sender.enqueue(payloadOf(a, this.opts.externalURL));
  }

  active(): Alert[] {
    return this.opts.engine.active();
  }
}
