// `pgfailover show state | events | uri | settings | standby-names`: read-only
// views of the monitor, as tables or --json.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/monitor_access.h"
#include "cli/output.h"

namespace pgf {

namespace {

void add_show_state(CLI::App* show) {
  auto o = std::make_shared<MonitorOptions>();
  auto* cmd = show->add_subcommand("state", "One row per node: roles, health, WAL position and replication lag");
  add_formation_options(cmd, *o);
  add_json_flag(cmd, o->json);
  cmd->footer(std::string(kMonitorHelp) +
              "Example:\n  pgfailover show state --monitor postgresql://pgfailover_node@sec001:5431/pgfailover\n"
              "  pgfailover show state --pgdata /var/lib/postgresql/15/main --json");
  cmd->callback([o] {
    auto s = open_monitor_session(*o);
    auto nodes = s.api.current_state(s.formation);
    if (o->json) {
      std::cout << json_text(state_json(s.formation, nodes));
    } else {
      std::cout << render_state_table(nodes);
      if (nodes.empty()) std::cout << "(no nodes in formation \"" << s.formation << "\")\n";
    }
  });
}

void add_show_events(CLI::App* show) {
  auto o = std::make_shared<MonitorOptions>();
  auto count = std::make_shared<int>(10);
  auto* cmd = show->add_subcommand("events", "The monitor's latest decisions and operator requests, oldest first");
  add_formation_options(cmd, *o);
  cmd->add_option("--count", *count, "How many of the newest events (default 10)");
  add_json_flag(cmd, o->json);
  cmd->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover show events --count 30 --pgdata /var/lib/postgresql/15/main");
  cmd->callback([o, count] {
    auto s = open_monitor_session(*o);
    auto events = s.api.last_events(s.formation, *count);
    if (o->json) {
      std::cout << json_text(events_json(s.formation, events));
    } else {
      std::cout << render_events_table(events);
    }
  });
}

void add_show_uri(CLI::App* show) {
  auto o = std::make_shared<MonitorOptions>();
  auto format = std::make_shared<std::string>();
  auto sslmode = std::make_shared<std::string>();
  auto* cmd = show->add_subcommand("uri", "Connection URIs: the formation's (libpq and JDBC) and the monitor's");
  add_formation_options(cmd, *o);
  cmd->add_option("--format", *format,
                  "Print only the formation's URI in this form: libpq (target_session_attrs=read-write) or jdbc "
                  "(targetServerType=primary, for Keycloak's KC_DB_URL)")
      ->check(CLI::IsMember({"libpq", "jdbc"}));
  cmd->add_option("--sslmode", *sslmode,
                  "sslmode of the URIs: disable, allow, prefer, require, verify-ca, verify-full (default: the TLS "
                  "choice of the local --pgdata, else require when the monitor speaks TLS)");
  add_json_flag(cmd, o->json);
  cmd->footer(std::string(kMonitorHelp) +
              "No password is ever printed: clients bring their own (~/.pgpass, KC_DB_PASSWORD).\n"
              "Examples:\n  pgfailover show uri --pgdata /var/lib/postgresql/15/main\n"
              "  KC_DB_URL=\"$(pgfailover show uri --format jdbc --monitor postgresql://pgfailover_node@sec001:5431/pgfailover)\"");
  cmd->callback([o, format, sslmode] {
    auto s = open_monitor_session(*o);
    auto tls = uri_tls(*sslmode, s.target.local, s.api.ssl_in_use());
    FormationUris uris{s.formation, s.target.uri,
                       with_sslrootcert(s.api.formation_uri(s.formation, "libpq", tls.sslmode), tls.sslrootcert),
                       with_sslrootcert(s.api.formation_uri(s.formation, "jdbc", tls.sslmode), tls.sslrootcert)};
    if (o->json) {
      auto j = uris_json(uris);
      if (!format->empty()) j["uri"] = *format == "jdbc" ? uris.jdbc : uris.libpq;
      std::cout << json_text(j);
    } else if (!format->empty()) {
      std::cout << (*format == "jdbc" ? uris.jdbc : uris.libpq) << "\n";
    } else {
      std::cout << render_uris(uris);
    }
  });
}

void add_show_settings(CLI::App* show) {
  auto o = std::make_shared<MonitorOptions>();
  auto* cmd = show->add_subcommand("settings", "Formation, node and monitor settings");
  add_formation_options(cmd, *o);
  add_json_flag(cmd, o->json);
  cmd->footer(std::string(kMonitorHelp) + "Change them with pgfailover set.\nExample:\n  pgfailover show settings --pgdata /var/lib/postgresql/15/main");
  cmd->callback([o] {
    auto s = open_monitor_session(*o);
    auto formation = s.api.get_formation_settings(s.formation);
    auto nodes = s.api.current_state(s.formation);
    auto monitor = s.api.get_monitor_settings();
    if (o->json) {
      std::cout << json_text(settings_json(formation, nodes, monitor));
    } else {
      std::cout << render_settings(formation, nodes, monitor);
    }
  });
}

void add_show_standby_names(CLI::App* show) {
  auto o = std::make_shared<MonitorOptions>();
  auto* cmd = show->add_subcommand("standby-names",
                                   "Each group primary's synchronous_standby_names, with the nodes it names");
  add_formation_options(cmd, *o);
  add_json_flag(cmd, o->json);
  cmd->footer(std::string(kMonitorHelp) + "Example:\n  pgfailover show standby-names --pgdata /var/lib/postgresql/15/main");
  cmd->callback([o] {
    auto s = open_monitor_session(*o);
    auto groups = standby_names_of(s.api.current_state(s.formation));
    if (o->json) {
      std::cout << json_text(standby_names_json(s.formation, groups));
    } else {
      std::cout << render_standby_names(groups);
    }
  });
}

}  // namespace

void add_show_commands(CLI::App& app, CliEnv&) {
  auto* show = app.add_subcommand("show", "Show state, events, URIs and settings from the monitor");
  show->require_subcommand(1);
  show->footer("Every show command takes --json.\nExample:\n  pgfailover show state --pgdata /var/lib/postgresql/15/main");
  add_show_state(show);
  add_show_events(show);
  add_show_uri(show);
  add_show_settings(show);
  add_show_standby_names(show);
}

}  // namespace pgf
