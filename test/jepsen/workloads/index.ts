/** The workloads by name: adding one is adding a line here (and its name to WORKLOAD_NAMES). */
import type { WORKLOAD_NAMES } from "../runner/options.js";
import { registerWorkload } from "./register.js";
import { leaseWorkload } from "./lease.js";
import { masterWorkload } from "./master.js";
import { sessionWorkload } from "./session.js";
import { setWorkload } from "./set.js";
import type { Workload } from "./types.js";
import { watchWorkload } from "./watch.js";

/** WORKLOADS creates a fresh workload by name. */
export const WORKLOADS: Record<(typeof WORKLOAD_NAMES)[number], () => Workload> = {
  register: registerWorkload,
  set: setWorkload,
  lease: leaseWorkload,
  watch: watchWorkload,
  session: sessionWorkload,
  master: masterWorkload,
};
