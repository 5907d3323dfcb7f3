// `pgfailover perform failover | switchover | promotion`: ask the monitor for a
// new primary, then follow the events it writes until the group has a new
// primary and a secondary (or --wait seconds pass: non-zero exit).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/event_follow.h"
#include "cli/monitor_access.h"
#include "cli/output.h"
#include "common/clock.h"
#include "common/error.h"

namespace pgf {

namespace {

struct PerformOptions {
  MonitorOptions monitor;
  int group = 0;
  int wait_seconds = 60;
};

std::string summary(const std::vector<NodeStatus>& nodes, int group) {
  std::string out;
  for (const auto& n : nodes) {
    if (n.group != group) continue;
    out += (out.empty() ? "" : ", ") + n.name + " " + n.assigned_state;
  }
  return out;
}

// What failover and switchover share; `kind` is the word for messages.
void perform_group_change(const PerformOptions& o, const std::string& kind) {
  auto [target, api, formation] = open_monitor_session(o.monitor);
  auto before = api.current_state(formation);
  auto old_primary = writable_node(before, o.group);
  EventFollower follower(api, formation);  // listening before the request: no event is missed
  if (kind == "failover") {
    api.perform_failover(formation, o.group);
  } else {
    api.perform_switchover(formation, o.group);
  }
  std::cout << kind << " of group " << o.group << " in formation \"" << formation << "\" requested"
            << (old_primary ? " (primary: " + old_primary->name + ")" : "") << "\n";
  if (o.wait_seconds == 0) return;
  auto start = steady_ms();
  bool done = follower.follow_until(new_primary_with_secondary(o.group, old_primary ? std::optional(old_primary->id) : std::nullopt),
                                    std::chrono::seconds(o.wait_seconds), std::cout);
  auto after = api.current_state(formation);
  if (!done) {
    throw Error("{} of group {} in formation \"{}\" did not complete within {} s (now: {}); see pgfailover show events",
                kind, o.group, formation, o.wait_seconds, summary(after, o.group));
  }
  std::cout << kind << " done in " << (steady_ms() - start) / 1000.0 << " s: " << summary(after, o.group) << "\n";
}

void add_group_change(CLI::App* perform, const std::string& kind, const std::string& description) {
  auto o = std::make_shared<PerformOptions>();
  auto* cmd = perform->add_subcommand(kind, description);
  add_formation_options(cmd, o->monitor);
  cmd->add_option("--group", o->group, "Group (default 0)");
  cmd->add_option("--wait", o->wait_seconds, "Seconds to wait for a new primary and a secondary (0: do not wait; default 60)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(std::string(kMonitorHelp) +
              "Prints the monitor's events as they happen; exits non-zero if the group has no new primary and\n"
              "secondary within --wait seconds.\nExample:\n  pgfailover perform " + kind +
              " --monitor postgresql://pgfailover_node@sec001:5431/pgfailover --wait 120");
  cmd->callback([o, kind] { perform_group_change(*o, kind); });
}

void add_promotion(CLI::App* perform) {
  auto o = std::make_shared<PerformOptions>();
  auto* cmd = perform->add_subcommand("promotion", "Make this node the primary (a switchover to it)");
  add_node_options(cmd, o->monitor);
  cmd->add_option("--wait", o->wait_seconds, "Seconds to wait for the node to be primary (0: do not wait; default 60)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(std::string(kMonitorHelp) +
              "Example:\n  pgfailover perform promotion --name idp002 --monitor postgresql://pgfailover_node@sec001:5431/pgfailover");
  cmd->callback([o] {
    auto [target, api, formation] = open_monitor_session(o->monitor);
    auto name = resolve_node_name(api, formation, o->monitor.node_name, target.local);
    EventFollower follower(api, formation);
    api.perform_promotion(formation, name);
    std::cout << "promotion of node " << name << " in formation \"" << formation << "\" requested\n";
    if (o->wait_seconds == 0) return;
    auto start = steady_ms();
    if (!follower.follow_until(node_is_primary_with_secondary(name), std::chrono::seconds(o->wait_seconds), std::cout)) {
      throw Error("promotion of node {} did not complete within {} s; see pgfailover show events", name,
                  o->wait_seconds);
    }
    std::cout << "promotion done in " << (steady_ms() - start) / 1000.0 << " s: " << name << " is the primary\n";
  });
}

}  // namespace

void add_perform_commands(CLI::App& app, CliEnv&) {
  auto* perform = app.add_subcommand("perform", "Failover, switchover, promotion");
  perform->require_subcommand(1);
  perform->footer("Example:\n  pgfailover perform switchover --pgdata /var/lib/postgresql/15/main");
  add_group_change(perform, "failover",
                   "Hand the primary role of a group to the best standby now (the old primary rejoins as a standby)");
  add_group_change(perform, "switchover", "Same as failover (pg_auto_failover's naming): planned change of primary");
  add_promotion(perform);
}

}  // namespace pgf
