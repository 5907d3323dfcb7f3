// `pgfailover enable | disable maintenance`: take a node out of service (its
// Postgres stopped, never promoted, never waited for) and bring it back. The
// monitor refuses the last healthy node and a primary nobody can replace.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/event_follow.h"
#include "cli/monitor_access.h"
#include "common/clock.h"
#include "common/error.h"

namespace pgf {

namespace {

struct MaintenanceOptions {
  MonitorOptions monitor;
  int wait_seconds = 60;
};

void run_maintenance(const MaintenanceOptions& o, bool enable) {
  auto [target, api, formation] = open_monitor_session(o.monitor);
  auto name = resolve_node_name(api, formation, o.monitor.node_name, target.local);
  EventFollower follower(api, formation);
  if (enable) {
    api.start_maintenance(formation, name);
  } else {
    api.stop_maintenance(formation, name);
  }
  std::cout << (enable ? "maintenance" : "end of maintenance") << " of node " << name << " requested\n";
  if (o.wait_seconds == 0) return;
  auto start = steady_ms();
  // Leaving maintenance ends as a secondary once caught up (or as the primary
  // of a group that had none).
  auto goal = enable ? node_reached(name, {"maintenance"}) : node_reached(name, {"secondary", "primary", "single"});
  if (!follower.follow_until(goal, std::chrono::seconds(o.wait_seconds), std::cout)) {
    throw Error("node {} did not {} maintenance within {} s; see pgfailover show state", name,
                enable ? "reach" : "leave", o.wait_seconds);
  }
  std::cout << "node " << name << (enable ? " is in maintenance" : " is back in service") << " after "
            << (steady_ms() - start) / 1000.0 << " s\n";
}

void add_maintenance(CLI::App* parent, bool enable) {
  auto o = std::make_shared<MaintenanceOptions>();
  auto* cmd = parent->add_subcommand(
      "maintenance", enable ? "Take a node out of service: Postgres stopped, never promoted (a primary hands over first)"
                            : "Bring a node in maintenance back as a standby");
  add_node_options(cmd, o->monitor);
  cmd->add_option("--wait", o->wait_seconds, "Seconds to wait until it is done (0: do not wait; default 60)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover " + (enable ? "enable" : "disable") +
              " maintenance --pgdata /var/lib/postgresql/15/main\n  pgfailover " + (enable ? "enable" : "disable") +
              " maintenance --name idp002 --monitor postgresql://pgfailover_node@sec001:5431/pgfailover");
  cmd->callback([o, enable] { run_maintenance(*o, enable); });
}

}  // namespace

void add_maintenance_commands(CLI::App& app, CliEnv&) {
  auto* enable = app.add_subcommand("enable", "Enable maintenance of a node");
  enable->require_subcommand(1);
  enable->footer("Example:\n  pgfailover enable maintenance --name idp002 --pgdata /var/lib/pgfailover/monitor");
  add_maintenance(enable, true);
  auto* disable = app.add_subcommand("disable", "Disable maintenance of a node");
  disable->require_subcommand(1);
  disable->footer("Example:\n  pgfailover disable maintenance --name idp002 --pgdata /var/lib/pgfailover/monitor");
  add_maintenance(disable, false);
}

}  // namespace pgf
