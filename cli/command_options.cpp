#include "cli/command_options.h"

#include <CLI/CLI.hpp>

namespace pgf {

void add_monitor_options(CLI::App* cmd, MonitorLocation& where) {
  cmd->add_option("--monitor", where.monitor_uri,
                  "Monitor URI, e.g. postgresql://pgfailover_node@sec001:5431/pgfailover (default: $PGFAILOVER_MONITOR)");
  cmd->add_option("--pgdata", where.pgdata, "A local data node or monitor whose configuration names the monitor (default: $PGDATA)");
}

void add_formation_options(CLI::App* cmd, MonitorOptions& o) {
  add_monitor_options(cmd, o.where);
  cmd->add_option("--formation", o.formation, "Formation (default: the local node's, else \"default\")");
}

void add_node_options(CLI::App* cmd, MonitorOptions& o) {
  add_formation_options(cmd, o);
  cmd->add_option("--name", o.node_name, "Node name (default: the node of --pgdata)");
}

void add_json_flag(CLI::App* cmd, bool& json) { cmd->add_flag("--json", json, "Print JSON instead of a table"); }

MonitorSession open_monitor_session(const MonitorOptions& o) {
  auto target = resolve_monitor(o.where);
  auto formation = resolve_formation(o.formation, target.local);
  auto api = MonitorApi::connect(target);
  return MonitorSession{std::move(target), std::move(api), std::move(formation)};
}

}  // namespace pgf
