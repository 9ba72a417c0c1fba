// Preloaded into agents by test/bench/raft/idle-alloc.ts (NODE_OPTIONS=--import): on SIGUSR2, for
// $RAFTMESH_BENCH_HEAP_SAMPLE_MS, samples the main
// thread's allocations with V8's sampling heap profiler, counting objects the collector has freed
// too (what an idle node allocates is all garbage soon), and writes
// $RAFTMESH_BENCH_HEAP_SAMPLE_DIR/<pid>.heapprofile.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.RAFTMESH_BENCH_HEAP_SAMPLE_DIR;
if (dir) {
  const span = Number(process.env.RAFTMESH_BENCH_HEAP_SAMPLE_MS ?? "20000");
  const session = new Session();
  session.connect();
  process.once("SIGUSR2", () => {
    session.post("HeapProfiler.enable");
    session.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    setTimeout(() => {
      session.post("HeapProfiler.stopSampling", (err, res) => {
        if (!err) writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(res.profile));
      });
    }, span);
  });
}
