/**
 * A bounded grpc-js unary call load for bench:balancer: `concurrency` callers each make one call
 * after another on one channel until `seconds` pass or `maxCalls` calls were made, whichever
 * comes first. Reports calls/s, p50/p99 latency and failed calls.
 */
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";

const identity = (b: Buffer) => b;

/** GRPC_BENCH_SERVICE is the bench's one unary method over raw bytes. */
export const GRPC_BENCH_SERVICE = {
  hello: { path: "/bench.Hello/Hello", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} satisfies grpc.ServiceDefinition;

/** GrpcRun is one load run's result. */
export interface GrpcRun {
  readonly calls: number;
  readonly callsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

type HelloClient = grpc.Client & { hello: (req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void };

const REQUEST = Buffer.from("hi");

/**
 * grpcLoad runs the load against target (a grpc-js target such as "ipv4:127.0.0.1:1,127.0.0.1:2",
 * balanced round-robin by the client, or the endpoint's address with authority naming the service).
 */
export async function grpcLoad(target: string, authority: string | undefined, opts: { seconds: number; concurrency: number; maxCalls: number }): Promise<GrpcRun> {
  const Ctor = grpc.makeGenericClientConstructor(GRPC_BENCH_SERVICE, "Hello");
  const options: grpc.ChannelOptions = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };
  if (authority) options["grpc.default_authority"] = authority;
  const client = new Ctor(target, grpc.credentials.createInsecure(), options) as unknown as HelloClient;
  await new Promise<void>((ok, fail) => client.waitForReady(Date.now() + 5_000, (e) => (e ? fail(e) : ok())));
  const latencies = new Float64Array(opts.maxCalls);
  let calls = 0;
  let errors = 0;
  const start = performance.now();
  const stopAt = start + opts.seconds * 1000;
  const caller = async () => {
    while (calls < opts.maxCalls && performance.now() < stopAt) {
      const i = calls++;
      const t0 = performance.now();
      const ok = await new Promise<boolean>((r) => client.hello(REQUEST, (err) => r(err === null)));
      latencies[i] = performance.now() - t0;
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, caller));
  const elapsedS = (performance.now() - start) / 1000;
  client.close();
  const sorted = latencies.subarray(0, calls).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { calls, callsPerS: calls / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99), errors };
}
