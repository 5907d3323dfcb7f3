// `pgfailover set | get`: formation, node and monitor settings, through the
// monitor's API, which validates every value (ranges, quorum arithmetic) and
// says what is wrong in one line.
#include <CLI/CLI.hpp>

#include <charconv>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/monitor_access.h"
#include "cli/output.h"
#include "common/error.h"

namespace pgf {

namespace {

struct SettingOptions {
  MonitorOptions monitor;
  std::string value;
  std::string name;  // monitor setting name
};

int parse_int(const std::string& text, const std::string& what) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) throw Error("{} \"{}\" is not an integer", what, text);
  return v;
}

bool parse_bool(const std::string& text, const std::string& what) {
  if (text == "true" || text == "on" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "off" || text == "no" || text == "0") return false;
  throw Error("{} \"{}\" is invalid: use true or false", what, text);
}


nlohmann::json to_json(const FormationSettings& f) {
  return {{"formation", f.formation}, {"dbname", f.dbname}, {"number_sync_standbys", f.number_sync_standbys}};
}
nlohmann::json to_json(const NodeSettings& n) {
  return {{"name", n.name}, {"candidate_priority", n.candidate_priority}, {"replication_quorum", n.replication_quorum}};
}
nlohmann::json to_json(const MonitorSetting& s) {
  return {{"name", s.name}, {"value", s.value}, {"min_value", s.min_value}, {"max_value", s.max_value},
          {"description", s.description}};
}

void print_formation(const FormationSettings& f, bool json) {
  if (json) {
    std::cout << json_text(to_json(f));
  } else {
    std::cout << f.number_sync_standbys << "\n";
  }
}

void print_node(const NodeSettings& n, const std::string& which, bool json) {
  if (json) {
    std::cout << json_text(to_json(n));
  } else if (which == "candidate-priority") {
    std::cout << n.candidate_priority << "\n";
  } else {
    std::cout << (n.replication_quorum ? "true" : "false") << "\n";
  }
}

const std::string kExampleMonitor = " --monitor postgresql://pgfailover_node@sec001:5431/pgfailover";

void add_formation_setting(CLI::App* set, CLI::App* get) {
  auto so = std::make_shared<SettingOptions>();
  auto* s = set->add_subcommand("number-sync-standbys",
                                "How many standbys acknowledge each commit (0: asynchronous); needs that many + 1 quorum nodes");
  s->add_option("value", so->value, "Number of synchronous standbys, 0 or more")->required();
  add_formation_options(s, so->monitor);
  add_json_flag(s, so->monitor.json);
  s->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover set formation number-sync-standbys 1" + kExampleMonitor);
  s->callback([so] {
    auto c = open_monitor_session(so->monitor);
    auto n = parse_int(so->value, "number_sync_standbys");
    print_formation(c.api.set_formation_number_sync_standbys(c.formation, n), so->monitor.json);
  });

  auto go = std::make_shared<SettingOptions>();
  auto* g = get->add_subcommand("number-sync-standbys", "How many standbys acknowledge each commit");
  add_formation_options(g, go->monitor);
  add_json_flag(g, go->monitor.json);
  g->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover get formation number-sync-standbys" + kExampleMonitor);
  g->callback([go] {
    auto c = open_monitor_session(go->monitor);
    print_formation(c.api.get_formation_settings(c.formation), go->monitor.json);
  });
}

void add_node_setting(CLI::App* set, CLI::App* get, const std::string& which, const std::string& set_help,
                      const std::string& value_help, const std::string& example_value) {
  auto so = std::make_shared<SettingOptions>();
  auto* s = set->add_subcommand(which, set_help);
  s->add_option("value", so->value, value_help)->required();
  add_node_options(s, so->monitor);
  add_json_flag(s, so->monitor.json);
  s->footer(std::string(kMonitorHelp) + "Examples:\n  pgfailover set node " + which + " " + example_value +
            " --pgdata /var/lib/postgresql/15/main\n  pgfailover set node " + which + " " + example_value +
            " --name idp002" + kExampleMonitor);
  s->callback([so, which] {
    auto c = open_monitor_session(so->monitor);
    auto name = resolve_node_name(c.api, c.formation, so->monitor.node_name, c.target.local);
    NodeSettings result;
    if (which == "candidate-priority") {
      result = c.api.set_node_candidate_priority(c.formation, name, parse_int(so->value, "candidate priority"));
    } else {
      result = c.api.set_node_replication_quorum(c.formation, name, parse_bool(so->value, "replication quorum"));
    }
    print_node(result, which, so->monitor.json);
  });

  auto go = std::make_shared<SettingOptions>();
  auto* g = get->add_subcommand(which, "A node's " + which);
  add_node_options(g, go->monitor);
  add_json_flag(g, go->monitor.json);
  g->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover get node " + which + " --name idp002" + kExampleMonitor);
  g->callback([go, which] {
    auto c = open_monitor_session(go->monitor);
    auto name = resolve_node_name(c.api, c.formation, go->monitor.node_name, c.target.local);
    print_node(c.api.get_node_settings(c.formation, name), which, go->monitor.json);
  });
}

void add_monitor_setting(CLI::App* set, CLI::App* get) {
  auto so = std::make_shared<SettingOptions>();
  auto* s = set->add_subcommand("monitor", "A monitor setting (timeouts of failure detection; see show settings)");
  s->add_option("setting", so->name, "Setting name, e.g. node_lost_timeout_ms")->required();
  s->add_option("value", so->value, "New value")->required();
  add_monitor_options(s, so->monitor.where);
  add_json_flag(s, so->monitor.json);
  s->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover set monitor network_partition_timeout_ms 20000" +
            kExampleMonitor);
  s->callback([so] {
    auto c = open_monitor_session(so->monitor);
    auto r = c.api.set_monitor_setting(so->name, so->value);
    if (so->monitor.json) {
      std::cout << json_text(to_json(r));
    } else {
      std::cout << r.value << "\n";
    }
  });

  auto go = std::make_shared<SettingOptions>();
  auto* g = get->add_subcommand("monitor", "A monitor setting");
  g->add_option("setting", go->name, "Setting name, e.g. node_lost_timeout_ms")->required();
  add_monitor_options(g, go->monitor.where);
  add_json_flag(g, go->monitor.json);
  g->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover get monitor node_lost_timeout_ms" + kExampleMonitor);
  g->callback([go] {
    auto c = open_monitor_session(go->monitor);
    for (const auto& r : c.api.get_monitor_settings()) {
      if (r.name != go->name) continue;
      if (go->monitor.json) {
        std::cout << json_text(to_json(r));
      } else {
        std::cout << r.value << "\n";
      }
      return;
    }
    throw Error("monitor setting \"{}\" does not exist (see pgfailover show settings)", go->name);
  });
}

}  // namespace

void add_settings_commands(CLI::App& app, CliEnv&) {
  auto* set = app.add_subcommand("set", "Change a formation, node or monitor setting");
  set->require_subcommand(1);
  set->footer("Example:\n  pgfailover set node candidate-priority 100 --name idp001" + kExampleMonitor);
  auto* get = app.add_subcommand("get", "Read a formation, node or monitor setting");
  get->require_subcommand(1);
  get->footer("Example:\n  pgfailover get node candidate-priority --name idp001" + kExampleMonitor);

  auto* set_formation = set->add_subcommand("formation", "Formation settings");
  set_formation->require_subcommand(1);
  auto* get_formation = get->add_subcommand("formation", "Formation settings");
  get_formation->require_subcommand(1);
  add_formation_setting(set_formation, get_formation);

  auto* set_node = set->add_subcommand("node", "Node settings");
  set_node->require_subcommand(1);
  auto* get_node = get->add_subcommand("node", "Node settings");
  get_node->require_subcommand(1);
  add_node_setting(set_node, get_node, "candidate-priority",
                   "0..100: who is promoted when standbys have the same WAL; 0: never promoted",
                   "Candidate priority, 0..100", "100");
  add_node_setting(set_node, get_node, "replication-quorum",
                   "true|false: whether the node counts for synchronous replication",
                   "true or false", "false");

  add_monitor_setting(set, get);
}

}  // namespace pgf
