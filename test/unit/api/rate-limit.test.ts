/**
 * Per-client rate limits of the client API at their edge, on a real grpc-js server in-process:
 * exactly the burst passes, the next write (or watch) is RESOURCE_EXHAUSTED naming the limit with
 * not-applied, time refills the bucket at the rate, reads are not counted.
 */
import { Metadata, status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METADATA_FORWARDED } from "../../../src/api/forwarder.js";
import { kvService, type KvServiceDeps } from "../../../src/api/kv-service.js";
import { Buckets, clientOf, RATE_BURST_SECONDS, rateLimitInterceptor } from "../../../src/api/rate-limit.js";
import { registryService, type RegistryServiceDeps } from "../../../src/api/registry-service.js";
import { ApiServer } from "../../../src/api/server.js";
import { mayBeMember } from "../../../src/transport/index.js";
import { encode, RawClient, statusName } from "../../integration/harness/raw-grpc.js";

const WRITES = 2;
const WATCHES = 1;

describe("client API: per-client rate limits", () => {
  let server: ApiServer;
  let raw: RawClient;
  let now = 0;
  beforeAll(async () => {
    server = new ApiServer(
      { kv: kvService({} as KvServiceDeps), registry: registryService({} as RegistryServiceDeps), cluster: {} },
      [rateLimitInterceptor({ writesPerSecond: WRITES, watchesPerSecond: WATCHES }, () => now)],
    );
    raw = new RawClient(`127.0.0.1:${await server.listen("127.0.0.1:0")}`);
  });
  afterAll(async () => {
    raw?.close();
    await server?.close();
  });

  // An empty key is refused by the handler: a call that passed the limiter answers INVALID_ARGUMENT.
  const put = () => raw.unary("KV", "Put", encode("KV", "Put", { key: "" }));

  it("writes: the burst passes, one more is RESOURCE_EXHAUSTED; the rate refills it; reads are not counted", async () => {
    const burst = WRITES * RATE_BURST_SECONDS;
    for (let i = 0; i < burst; i++) expect(statusName((await put()).code)).toBe("INVALID_ARGUMENT");
    const over = await put();
    expect(statusName(over.code)).toBe("RESOURCE_EXHAUSTED");
    expect(over.details).toMatch(/^too many writes \(limit 2\/s\) from 127\.0\.0\.1; slow down and retry$/);
    expect(statusName((await raw.unary("KV", "Get", encode("KV", "Get", { key: "" }))).code)).toBe("INVALID_ARGUMENT");
    now += 1000 / WRITES;
    expect(statusName((await put()).code)).toBe("INVALID_ARGUMENT");
    expect(statusName((await put()).code)).toBe("RESOURCE_EXHAUSTED");
  });

  it("watches have their own bucket", async () => {
    const watch = () => raw.serverStream("Registry", "Watch", encode("Registry", "Watch", { fromIndex: 2 ** 53 + 10 }));
    for (let i = 0; i < WATCHES * RATE_BURST_SECONDS; i++) expect(statusName((await watch()).code)).toBe("INVALID_ARGUMENT");
    const over = await watch();
    expect(over.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(over.details).toContain("too many watches (limit 1/s)");
  });

  it("a call marked forwarded passes uncounted only from a member's address; a stranger's marker gains nothing", async () => {
    const forwardedMd = () => {
      const md = new Metadata();
      md.set(METADATA_FORWARDED, "1");
      return md;
    };
    for (const [members, uncounted] of [[["127.0.0.1:7100"], true], [["10.9.9.9:7100"], false], [["n2.example:7100"], true]] as const) {
      const s = new ApiServer({ kv: kvService({} as KvServiceDeps), registry: registryService({} as RegistryServiceDeps), cluster: {} }, [
        rateLimitInterceptor({ writesPerSecond: WRITES, watchesPerSecond: WATCHES, fromMember: (peer) => mayBeMember(peer, members) }, () => 0),
      ]);
      const c = new RawClient(`127.0.0.1:${await s.listen("127.0.0.1:0")}`);
      try {
        const codes = [];
        for (let i = 0; i < WRITES * RATE_BURST_SECONDS + 3; i++) codes.push(statusName((await c.unary("KV", "Put", encode("KV", "Put", { key: "" }), 5_000, forwardedMd())).code));
        // From a member (127.0.0.1, or a member named by a host name, which cannot be checked) nothing is refused; from a stranger the burst is.
        expect(codes.includes("RESOURCE_EXHAUSTED"), `members ${members.join(",")}`).toBe(!uncounted);
      } finally {
        c.close();
        await s.close();
      }
    }
    expect(mayBeMember("ipv4:10.0.0.2:5000", ["10.0.0.2:7100"])).toBe(true);
    expect(mayBeMember("ipv6:[::ffff:10.0.0.2]:5000", ["10.0.0.2:7100"])).toBe(true);
    expect(mayBeMember("ipv4:10.0.0.3:5000", ["10.0.0.2:7100", "[::1]:7100"])).toBe(false);
  });

  it("buckets: at most the key bound, least recently seen dropped first; peers parse to their address", () => {
    let t = 0;
    const b = new Buckets(1, () => t, 3);
    for (const k of ["a", "b", "c", "d"]) expect(b.take(k)).toBe(true);
    expect(b.size).toBe(3);
    for (let i = 1; i < RATE_BURST_SECONDS; i++) expect(b.take("b")).toBe(true);
    expect(b.take("b")).toBe(false);
    t += 1000;
    expect(b.take("b")).toBe(true);
    expect(clientOf("ipv4:10.0.0.1:5000")).toBe("10.0.0.1");
    expect(clientOf("ipv6:[::1]:5000")).toBe("[::1]");
    expect(clientOf("127.0.0.1:7")).toBe("127.0.0.1");
  });
});
