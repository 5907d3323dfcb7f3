// Shared by the command files: each adds its commands to the app main() builds.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace pgf {

class LogSink;

struct CliEnv {
  LogSink& log;
  int exit_code = 0;  // commands set a non-zero code for "ran, but the answer is no"
};

// One function per command file.
void add_create_monitor_command(CLI::App& create, CliEnv& env);   // cmd_create_monitor.cpp
void add_create_postgres_command(CLI::App& create, CliEnv& env);  // cmd_create_postgres.cpp
void add_run_commands(CLI::App& app, CliEnv& env);                // cmd_run.cpp: run, stop
void add_do_commands(CLI::App& app, CliEnv& env);                 // cmd_do.cpp
void add_show_commands(CLI::App& app, CliEnv& env);               // cmd_show.cpp: show state, events, uri, ...
void add_systemd_command(CLI::App& app, CliEnv& env);             // cmd_systemd.cpp: show systemd (after add_show_commands)
void add_perform_commands(CLI::App& app, CliEnv& env);            // cmd_perform.cpp: failover, switchover, promotion
void add_maintenance_commands(CLI::App& app, CliEnv& env);        // cmd_maintenance.cpp: enable/disable maintenance
void add_settings_commands(CLI::App& app, CliEnv& env);           // cmd_settings.cpp: set, get
void add_drop_commands(CLI::App& app, CliEnv& env);               // cmd_drop.cpp: drop node
void add_config_commands(CLI::App& app, CliEnv& env);             // cmd_config.cpp: config get, set, check
void add_watch_command(CLI::App& app, CliEnv& env);               // cmd_watch.cpp
void add_demo_commands(CLI::App& app, CliEnv& env);               // cmd_demo.cpp: demo up, failover, down

}  // namespace pgf
