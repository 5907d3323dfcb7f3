// `pgfailover demo up | failover | down`: a monitor and N data nodes on
// 127.0.0.1 under one directory, all run by the postgres user (when started by
// root) as background `pgfailover run` processes in their own process groups,
// their PIDs recorded in <dir>/demo.json so `down` stops exactly them.
#pragma once

#include <iosfwd>

#include "common/fs.h"

namespace pgf {

struct DemoOptions {
  fs::path dir = "/tmp/pgfailover-demo";
  int nodes = 2;
  int timeout_seconds = 90;  // for each wait: the group forming, the failover, the rejoin
};

// Builds it all and waits for a primary and a secondary; prints the state and
// the URIs. On failure, stops what it started and keeps the directory (logs).
void demo_up(const DemoOptions& options, std::ostream& out);
// Kills the primary node (keeper and Postgres, SIGKILL by PID), prints a
// timeline until a write through the libpq multi-host URI succeeds, restarts
// the old node's keeper and waits until it is a secondary again.
void demo_failover(const DemoOptions& options, std::ostream& out);
// Stops every process of the demo by PID (pgfailover stop --postgres, then
// SIGKILL for anything left) and removes the directory.
void demo_down(const DemoOptions& options, std::ostream& out);

}  // namespace pgf
