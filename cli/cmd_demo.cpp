// `pgfailover demo up | failover | down`: the whole product on one machine in
// under a minute. The work is in cli/demo.cpp.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/demo.h"
#include "common/clock.h"

namespace pgf {

void add_demo_commands(CLI::App& app, CliEnv&) {
  auto* demo = app.add_subcommand("demo", "A monitor and data nodes on 127.0.0.1 to try failover with");
  demo->require_subcommand(1);
  demo->footer(
      "Started by root, every process runs as the postgres user.\n"
      "Example:\n  sudo pgfailover demo up && sudo pgfailover demo failover && sudo pgfailover demo down");

  auto add_dir = [](CLI::App* cmd, DemoOptions& o) {
    cmd->add_option("--dir", o.dir, "Directory of the demo (default /tmp/pgfailover-demo)");
  };

  auto up_opts = std::make_shared<DemoOptions>();
  auto* up = demo->add_subcommand("up", "Start a monitor and --nodes data nodes; wait for a primary and a secondary");
  add_dir(up, *up_opts);
  up->add_option("--nodes", up_opts->nodes, "Number of data nodes (default 2)")->check(CLI::Range(1, 9));
  up->footer("Prints the state and the libpq and JDBC URIs. Free ports on 127.0.0.1 only.\n"
             "Example:\n  sudo pgfailover demo up --nodes 3 --dir /tmp/pgfailover-demo");
  up->callback([up_opts] {
    auto start = steady_ms();
    demo_up(*up_opts, std::cout);
    std::cout << "demo up in " << (steady_ms() - start) / 1000.0 << " s\n";
  });

  auto failover_opts = std::make_shared<DemoOptions>();
  auto* failover = demo->add_subcommand("failover", "Kill the primary node and show the failover as it happens");
  add_dir(failover, *failover_opts);
  failover->footer("Prints a timeline (milliseconds since the kill) until a write through the multi-host URI\n"
                   "succeeds, then restarts the old node, which rejoins as a standby.\n"
                   "Example:\n  sudo pgfailover demo failover --dir /tmp/pgfailover-demo");
  failover->callback([failover_opts] { demo_failover(*failover_opts, std::cout); });

  auto down_opts = std::make_shared<DemoOptions>();
  auto* down = demo->add_subcommand("down", "Stop every process of the demo (by PID) and remove its directory");
  add_dir(down, *down_opts);
  down->footer("Example:\n  sudo pgfailover demo down --dir /tmp/pgfailover-demo");
  down->callback([down_opts] { demo_down(*down_opts, std::cout); });
}

}  // namespace pgf
