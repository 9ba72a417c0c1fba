/** Webhook delivery against a real HTTP receiver on loopback: retries with backoff, no retry of a refusal, a bounded queue that drops the oldest, and an enqueue that never waits. */
import { afterEach, describe, expect, it } from "vitest";
import { AlertEngine, ALERT_DEFAULTS } from "../../../src/events/alerts.js";
import { payloadOf, WEBHOOK_ATTEMPTS_MAX, WEBHOOK_QUEUE_MAX, WebhookSender } from "../../../src/events/webhook.js";
import { waitFor } from "../../integration/harness/process-cluster.js";
import { WebhookReceiver } from "../../integration/harness/webhook-receiver.js";

const logs: { level: string; msg: string }[] = [];
const logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (_o: object, msg: string) => logs.push({ level: "warn", msg }),
  error: (_o: object, msg: string) => logs.push({ level: "error", msg }),
  fatal: () => {},
  child: () => logger,
} as unknown as import("../../../src/common/logger.js").Logger;

/** alertPayload is a real firing NoLeader alert from the rules, as a payload. */
function alertPayload(n = 0) {
  const [a] = new AlertEngine({ ...ALERT_DEFAULTS, noLeaderMs: 0 }, { cluster: "c", node: `n${n}` }).evaluate({ leader: "", unreachable: new Set(), services: [] }, 1_000);
  return payloadOf(a!, "http://127.0.0.1:7400/");
}

let receiver: WebhookReceiver | undefined;
let sender: WebhookSender | undefined;
afterEach(async () => {
  sender?.close();
  await receiver?.close();
  logs.length = 0;
});

describe("webhook sender", () => {
  it("posts the Alertmanager payload (version 4) and retries a failing receiver with backoff until it answers", async () => {
    receiver = await WebhookReceiver.start();
    receiver.answer = 503;
    sender = new WebhookSender({ urls: [receiver.url], logger, backoffBaseMs: 20 });
    sender.enqueue(alertPayload());
    // enqueue returned before any answer: the notification waits in the queue, nothing was counted yet.
    expect(sender.pending()).toBe(1);
    expect(sender.stats).toEqual({ sent: 0, retries: 0, failed: 0, dropped: 0 });
    await waitFor("two failed attempts", () => sender!.stats.retries >= 2);
    receiver.answer = 200;
    await waitFor("delivered", () => receiver!.received.length === 1);
    const body = receiver.received[0]!.body;
    expect(body).toMatchObject({ version: "4", status: "firing", groupLabels: { alertname: "NoLeader" }, commonLabels: { alertname: "NoLeader", node: "n0" }, externalURL: "http://127.0.0.1:7400/" });
    expect(body.alerts[0]).toMatchObject({ status: "firing", startsAt: new Date(1_000).toISOString(), endsAt: "0001-01-01T00:00:00Z" });
    expect(body.alerts[0]?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(sender.stats).toMatchObject({ sent: 1, failed: 0 });
    expect(logs.some((l) => l.level === "warn" && /retrying/.test(l.msg))).toBe(true);
  });

  it(`gives up after ${WEBHOOK_ATTEMPTS_MAX} attempts, and at once on a 4xx refusal, logging and counting it`, async () => {
    receiver = await WebhookReceiver.start();
    receiver.answer = 500;
    sender = new WebhookSender({ urls: [receiver.url], logger, backoffBaseMs: 5 });
    sender.enqueue(alertPayload());
    await waitFor("given up", () => sender!.stats.failed === 1);
    expect(sender.stats.retries).toBe(WEBHOOK_ATTEMPTS_MAX - 1);
    receiver.answer = 400;
    sender.enqueue(alertPayload());
    await waitFor("refused", () => sender!.stats.failed === 2);
    expect(sender.stats.retries).toBe(WEBHOOK_ATTEMPTS_MAX - 1);
    expect(logs.filter((l) => l.level === "error")).toHaveLength(2);
  });

  it(`holds at most WEBHOOK_QUEUE_MAX (${WEBHOOK_QUEUE_MAX}) per URL and drops the oldest past it, counting each`, async () => {
    sender = new WebhookSender({ urls: ["http://127.0.0.1:9/unreachable"], logger, backoffBaseMs: 60_000 });
    for (let i = 0; i < WEBHOOK_QUEUE_MAX; i++) sender.enqueue(alertPayload(i));
    expect(sender.pending()).toBe(WEBHOOK_QUEUE_MAX);
    expect(sender.stats.dropped).toBe(0);
    sender.enqueue(alertPayload(WEBHOOK_QUEUE_MAX));
    expect(sender.pending()).toBe(WEBHOOK_QUEUE_MAX);
    expect(sender.stats.dropped).toBe(1);
    expect(logs.some((l) => /queue full/.test(l.msg))).toBe(true);
  });

  it("delivers to every URL in order, firing before resolved", async () => {
    receiver = await WebhookReceiver.start();
    const other = await WebhookReceiver.start();
    try {
      sender = new WebhookSender({ urls: [receiver.url, other.url], logger });
      const e = new AlertEngine({ ...ALERT_DEFAULTS, noLeaderMs: 0 }, { cluster: "c", node: "n1" });
      const [fired] = e.evaluate({ leader: "", unreachable: new Set(), services: [] }, 0);
      const [resolved] = e.evaluate({ leader: "n1", unreachable: new Set(), services: [] }, 10);
      sender.enqueue(payloadOf(fired!, "x"));
      sender.enqueue(payloadOf(resolved!, "x"));
      await waitFor("both at both", () => receiver!.received.length === 2 && other.received.length === 2);
      for (const r of [receiver, other]) expect(r.received.map((x) => x.body.status)).toEqual(["firing", "resolved"]);
    } finally {
      await other.close();
    }
  });
});
