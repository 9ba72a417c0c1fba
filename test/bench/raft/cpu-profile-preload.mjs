// Preloaded into agents by test/bench/raft/profile.ts (NODE_OPTIONS=--import, since --cpu-prof is
// not allowed there): runs V8's sampling profiler from start to exit and writes
// $RAFTMESH_BENCH_CPU_PROF_DIR/<pid>.cpuprofile. The in-thread inspector session answers
// synchronously, so the profile can be taken in the exit handler.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.RAFTMESH_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.start");
  process.on("exit", () => {
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
