/** A real HTTP webhook receiver on loopback that keeps every JSON body it was posted (the alert tests' Alertmanager stand-in). */
import { createServer, type Server } from "node:http";

/** Received is one POST: its body and when it arrived. */
export interface Received {
  readonly at: number;
  readonly body: {
    version: string;
    status: string;
    groupKey: string;
    externalURL: string;
    groupLabels: Record<string, string>;
    commonLabels: Record<string, string>;
    alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string; fingerprint: string }[];
  };
}

/** WebhookReceiver listens on 127.0.0.1; answer lets a test make it fail. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  /** answer is the status code the next POSTs get (200 unless a test changes it). */
  answer = 200;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    let self: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const code = self?.answer ?? 200;
        if (code === 200) self?.received.push({ at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        res.writeHead(code).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    self = new WebhookReceiver(server, `http://127.0.0.1:${port}/hook`);
    return self;
  }

  /** alerts lists received alerts with the payload status they came in. */
  alerts(): { at: number; status: string; name: string; labels: Record<string, string>; fingerprint: string; externalURL: string }[] {
    return this.received.flatMap((r) => r.body.alerts.map((a) => ({ at: r.at, status: a.status, name: a.labels.alertname ?? "", labels: a.labels, fingerprint: a.fingerprint, externalURL: r.body.externalURL })));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
