import { describe, expect, it } from "vitest";
import { EarlyAckWriter } from "../../../src/agent/unsafe.js";
import { decodeCommand } from "../../../src/registry/codec.js";
import { RefusedNotFoundError, WriteTimeoutError } from "../../../src/registry/errors.js";
import { ProposingWriter } from "../../../src/registry/writer.js";

const soon = () => new Date(Date.now() + 1_000);

describe("registry: write path", () => {
  it("writer: stamps the command with cluster time, in the registry envelope, and returns the applied result", async () => {
    const sent: Uint8Array[] = [];
    const writer = new ProposingWriter(
      {
        proposeApp: async (data) => {
          sent.push(data);
          return { ok: true, index: 5 };
        },
      },
      { now: () => 1234 },
    );
    const res = await writer.write({ op: "kv.put", key: "k", value: "" }, { client: "c", seq: 2 }, soon());
    expect(res).toEqual({ ok: true, index: 5 });
    expect(sent).toHaveLength(1);
    const env = decodeCommand(sent[0] as Uint8Array);
    expect(env).toMatchObject({ v: 1, at: 1234, session: { client: "c", seq: 2 }, cmd: { op: "kv.put", key: "k" } });
  });

  it("writer: a refusal is its typed error; a write not applied by the deadline is outcome-unknown", async () => {
    const refusing = new ProposingWriter({ proposeApp: async () => ({ ok: false, index: 3, code: "not-found", message: "no such service" }) }, { now: () => 0 });
    await expect(refusing.write({ op: "service.delete", name: "x" }, undefined, soon())).rejects.toBeInstanceOf(RefusedNotFoundError);
    const never = new ProposingWriter({ proposeApp: () => new Promise(() => undefined) }, { now: () => 0 });
    const err = await never.write({ op: "service.delete", name: "x" }, undefined, new Date(Date.now() + 20)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteTimeoutError);
    expect((err as WriteTimeoutError).op).toBe("service.delete");
  });

  it("unsafe: the early-ack writer acknowledges once the leader appended, without waiting", async () => {
    const appended: Uint8Array[] = [];
    const writer = new EarlyAckWriter(
      {
        proposeAppNoWait: (data) => {
          appended.push(data);
          return { index: 8 };
        },
      },
      { now: () => 7 },
    );
    expect(await writer.write({ op: "kv.put", key: "k", value: "" }, undefined)).toEqual({ ok: true, index: 8, succeeded: true });
    expect(decodeCommand(appended[0] as Uint8Array)).toMatchObject({ at: 7 });
  });
});
