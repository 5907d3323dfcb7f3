// Options shared by the operator commands, so every command spells them the
// same way: --monitor URI, --pgdata DIR, --formation F, --json.
#pragma once

#include <string>

#include "cli/monitor_access.h"

namespace CLI {
class App;
}

namespace pgf {

struct MonitorOptions {
  MonitorLocation where;
  std::string formation;
  std::string node_name;
  bool json = false;
};

// --monitor and --pgdata.
void add_monitor_options(CLI::App* cmd, MonitorLocation& where);
// --monitor, --pgdata and --formation.
void add_formation_options(CLI::App* cmd, MonitorOptions& o);
// The above and --name (the node; default: the local keeper's node of --pgdata).
void add_node_options(CLI::App* cmd, MonitorOptions& o);
void add_json_flag(CLI::App* cmd, bool& json);

// What a command about a formation starts with: the monitor the options point
// at, a session with it, and the formation (resolve_formation).
struct MonitorSession {
  MonitorTarget target;
  MonitorApi api;
  std::string formation;
};
MonitorSession open_monitor_session(const MonitorOptions& o);

// Where the monitor is told in one sentence, for the footers of every command.
inline constexpr const char* kMonitorHelp =
    "The monitor is found from --monitor URI, else --pgdata DIR (a local data node or monitor), else\n"
    "$PGFAILOVER_MONITOR, else $PGDATA.\n";

}  // namespace pgf
