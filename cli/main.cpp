// pgfailover: one binary for the monitor, the keeper and the control CLI.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "cli/cli.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
  pgf::LogSink sink(stderr);
  pgf::CliEnv env{sink};

  CLI::App app{"pgfailover: automatic, split-brain-safe failover for PostgreSQL", "pgfailover"};
  app.require_subcommand(1);
  // Usage errors too are one line; inherited by every subcommand added below.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("pgfailover: ") + e.what() + " (see --help)\n";
  });
  app.set_version_flag("--version", std::string("pgfailover ") + PGFAILOVER_VERSION);
  app.footer(
      "Examples:\n"
      "  pgfailover create monitor --pgdata /var/lib/pgfailover/monitor --pgport 5431\n"
      "  pgfailover create postgres --pgdata /var/lib/postgresql/15/main --pgport 5432 \\\n"
      "      --hostname idp001 --monitor postgresql://pgfailover_node@sec001:5431/pgfailover\n"
      "  pgfailover show state --monitor postgresql://pgfailover_node@sec001:5431/pgfailover");

  auto* create = app.add_subcommand("create", "Create a monitor or a data node");
  create->require_subcommand(1);
  pgf::add_create_monitor_command(*create, env);
  pgf::add_create_postgres_command(*create, env);
  pgf::add_run_commands(app, env);
  pgf::add_do_commands(app, env);
  pgf::add_show_commands(app, env);
  pgf::add_systemd_command(app, env);
  pgf::add_perform_commands(app, env);
  pgf::add_maintenance_commands(app, env);
  pgf::add_settings_commands(app, env);
  pgf::add_drop_commands(app, env);
  pgf::add_config_commands(app, env);
  pgf::add_watch_command(app, env);
  pgf::add_demo_commands(app, env);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pgf::Error& e) {
    std::cerr << "pgfailover: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pgfailover: internal error: " << e.what() << std::endl;
    return 70;
  }
  return env.exit_code;
}
