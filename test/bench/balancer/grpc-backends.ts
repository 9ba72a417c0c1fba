/** Bench gRPC backends: grpc-js servers on the given ports answering a small fixed message (one process). */
import * as grpc from "@grpc/grpc-js";
import { GRPC_BENCH_SERVICE } from "./grpc-load.js";

const ANSWER = Buffer.from("hello from the bench grpc backend");
const ports = process.argv.slice(2).map(Number);
let bound = 0;
for (const p of ports) {
  const server = new grpc.Server();
  server.addService(GRPC_BENCH_SERVICE, { hello: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, ANSWER) });
  server.bindAsync(`127.0.0.1:${p}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    if (++bound === ports.length) process.stdout.write(`ready ${ports.join(" ")}\n`);
  });
}
