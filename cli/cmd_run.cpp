// `pgfailover run` and `pgfailover stop`: the service of a data directory,
// monitor or keeper depending on how it was created.
#include <CLI/CLI.hpp>

#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/log.h"
#include "common/pid_lock.h"
#include "common/process.h"
#include "common/signal_watch.h"
#include "keeper/keeper_service.h"
#include "monitor/monitor_service.h"

namespace pgf {

namespace {

struct InstanceOptions {
  std::string pgdata;
  std::string state_dir;
  InstancePaths paths() const {
    auto dir = resolve_pgdata(pgdata);
    return InstancePaths::for_pgdata(dir, state_dir.empty() ? std::nullopt : std::optional<fs::path>(state_dir));
  }
};

void add_instance_options(CLI::App* cmd, InstanceOptions& o) {
  cmd->add_option("--pgdata", o.pgdata, "Data directory (default: $PGDATA)");
  cmd->add_option("--state-dir", o.state_dir, "pgfailover's own files (default: <pgdata>.pgfailover)");
}

ConfigFile load_instance_config(const InstancePaths& paths) {
  if (!fs::exists(paths.config_file())) {
    throw Error("{} is not managed by pgfailover (no {}): run pgfailover create monitor or create postgres first",
                paths.pgdata.string(), paths.config_file().string());
  }
  return ConfigFile::load(paths.config_file().string());
}

}  // namespace

void add_run_commands(CLI::App& app, CliEnv& env) {
  auto run_opts = std::make_shared<InstanceOptions>();
  auto* run = app.add_subcommand("run", "Run the monitor or keeper service of a data directory (foreground)");
  add_instance_options(run, *run_opts);
  run->footer(
      "SIGTERM stops the service and leaves Postgres running; SIGINT (Ctrl-C) stops both.\n"
      "Example:\n  sudo -u postgres pgfailover run --pgdata /var/lib/postgresql/15/main");
  run->callback([run_opts, &env] {
    auto paths = run_opts->paths();
    auto config = load_instance_config(paths);
    SignalWatch signals;
    std::string role = config.require("pgfailover.role");
    if (role == "monitor") {
      env.exit_code = run_monitor(paths, config, env.log, signals);
    } else if (role == "keeper") {
      env.exit_code = run_keeper(paths, config, env.log, signals);
    } else {
      throw Error("{}: unknown role \"{}\" (expected monitor or keeper)", paths.config_file().string(), role);
    }
  });

  auto stop_opts = std::make_shared<InstanceOptions>();
  auto stop_postgres = std::make_shared<bool>(false);
  auto timeout = std::make_shared<int>(60);
  auto* stop = app.add_subcommand("stop", "Stop the service of a data directory");
  add_instance_options(stop, *stop_opts);
  stop->add_flag("--postgres", *stop_postgres, "Stop Postgres too (fast shutdown); by default it keeps running");
  stop->add_option("--timeout", *timeout, "Seconds to wait for the service to exit")->check(CLI::Range(1, 3600));
  stop->footer("Example:\n  pgfailover stop --pgdata /var/lib/postgresql/15/main --postgres");
  stop->callback([stop_opts, stop_postgres, timeout] {
    auto paths = stop_opts->paths();
    auto pid = PidLock::holder(paths.pid_file());
    if (!pid) {
      std::cout << "pgfailover is not running for " << paths.pgdata.string() << "\n";
      return;
    }
    ::kill(*pid, *stop_postgres ? SIGINT : SIGTERM);
    auto deadline = steady_ms() + *timeout * 1000;
    while (process_alive(*pid)) {
      if (steady_ms() > deadline) throw Error("pgfailover (pid {}) did not stop within {} s", *pid, *timeout);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::cout << "stopped pgfailover (pid " << *pid << ")" << (*stop_postgres ? " and Postgres" : "") << " for "
              << paths.pgdata.string() << "\n";
  });
}

}  // namespace pgf
