/**
 * npm start: will start a local 3-node cluster once the durable node lands. Until then it says so
 * and exits with a non-zero status, so that nobody mistakes it for a running cluster.
 */
console.error(
  "raftmesh: the local cluster is not available yet: the Raft core and its simulator are built " +
    "(npm run sim), the node process comes next. See README.md.",
);
process.exit(1);
