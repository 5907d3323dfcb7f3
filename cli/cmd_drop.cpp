// `pgfailover drop node`: take a node out of its group. The monitor assigns it
// `dropped`; its keeper stops Postgres, reports, and exits; the monitor then
// forgets it. --destroy goes on to delete the local data directory and state
// directory, which is only ever done for a local --pgdata, after the keeper left.
#include <CLI/CLI.hpp>

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/event_follow.h"
#include "cli/monitor_access.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/local_postgres.h"
#include "common/pid_lock.h"
#include "common/process.h"

namespace pgf {

namespace {

struct DropOptions {
  MonitorOptions monitor;
  bool destroy = false;
  bool force = false;
  int wait_seconds = 60;
};

bool wait_gone(int pid, std::chrono::milliseconds timeout) {
  auto deadline = steady_ms() + timeout.count();
  while (process_alive(pid)) {
    if (steady_ms() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// After the monitor forgot the node: the keeper exits by itself once it has
// reported `dropped`; one that does not (forced drop, or it never got the
// word) is stopped like `pgfailover stop --postgres`, and a Postgres left
// behind gets a fast shutdown. Only then is anything deleted.
void stop_local_node(const LocalInstance& local, LogSink& sink) {
  if (auto keeper = PidLock::holder(local.paths.pid_file())) {
    if (!wait_gone(*keeper, std::chrono::seconds(10))) {
      std::cout << "stopping the keeper (pid " << *keeper << ")\n";
      ::kill(*keeper, SIGINT);
      if (!wait_gone(*keeper, std::chrono::seconds(60))) {
        throw Error("the keeper of {} (pid {}) did not stop: nothing was deleted", local.paths.pgdata.string(), *keeper);
      }
    }
  }
  LocalPostgres pg(local.paths.pgdata, local.port, local.paths.socket_dir(), PostgresBinaries{},
                   Logger(sink, "drop node"));
  if (auto pid = pg.running_pid()) {
    std::cout << "stopping Postgres (pid " << *pid << ")\n";
    pg.stop(StopMode::Fast, std::chrono::seconds(60));
  }
}

void run_drop(const DropOptions& o, LogSink& sink) {
  auto target = resolve_monitor(o.monitor.where);
  if (o.destroy) {
    // Deleting data is never done on a guess: the directory must be named.
    if (o.monitor.where.pgdata.empty()) {
      throw Error("--destroy deletes the local data directory: name it with --pgdata DIR");
    }
    if (!target.local || target.local->role != "keeper") {
      throw Error("--destroy: {} is not a data node", target.local ? target.local->paths.pgdata.string() : o.monitor.where.pgdata);
    }
  }
  auto formation = resolve_formation(o.monitor.formation, target.local);
  auto api = MonitorApi::connect(target);
  const auto& local = target.local;

  std::string name;
  bool registered = true;
  if (o.destroy && o.monitor.node_name.empty() && !local->node_name) {
    // Named by the monitor: find it by address; not found means already dropped.
    try {
      name = resolve_node_name(api, formation, "", local);
    } catch (const Error&) {
      registered = false;
    }
  } else {
    name = resolve_node_name(api, formation, o.monitor.node_name, local);
  }
  if (registered) {
    auto nodes = api.current_state(formation);
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const NodeStatus& n) { return n.name == name; });
    registered = it != nodes.end();
    if (!registered && !o.destroy) {
      throw Error("node \"{}\" is not registered in formation \"{}\"", name, formation);
    }
    // --destroy deletes the data of --pgdata: the node dropped must be that one.
    if (registered && o.destroy && (it->host != local->host || it->port != local->port)) {
      throw Error("node {} is at {}:{}, not the node of --pgdata {} ({}:{}): nothing done", name, it->host, it->port,
                  local->paths.pgdata.string(), local->host, local->port);
    }
  }

  if (registered) {
    EventFollower follower(api, formation);
    api.drop_node(formation, name, o.force);
    std::cout << (o.force ? "node " + name + " removed from the monitor" : "drop of node " + name + " requested") << "\n";
    if (o.wait_seconds > 0 || o.destroy) {
      auto timeout = std::chrono::seconds(o.wait_seconds > 0 ? o.wait_seconds : 60);
      if (!follower.follow_until(node_gone(name), timeout, std::cout)) {
        throw Error("node {} is still registered after {} s: its keeper has not reported it stopped (is it running? "
                    "drop node --force removes it from the monitor at once)",
                    name, timeout.count());
      }
      std::cout << "node " << name << " has left formation \"" << formation << "\"\n";
    }
  } else {
    std::cout << "node of " << local->paths.pgdata.string() << " is not registered in formation \"" << formation
              << "\" any more\n";
  }

  if (o.destroy) {
    stop_local_node(*local, sink);
    for (const auto& dir : {local->paths.pgdata, local->paths.state_dir}) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (ec) throw Error("cannot remove {}: {}", dir.string(), ec.message());
      std::cout << "removed " << dir.string() << "\n";
    }
  }
}

}  // namespace

void add_drop_commands(CLI::App& app, CliEnv& env) {
  auto* drop = app.add_subcommand("drop", "Remove a node from its formation");
  drop->require_subcommand(1);
  drop->footer("Example:\n  pgfailover drop node --pgdata /var/lib/postgresql/15/main --destroy");

  auto o = std::make_shared<DropOptions>();
  auto* cmd = drop->add_subcommand("node", "Remove a node: the monitor takes it out, its keeper stops Postgres and exits");
  add_node_options(cmd, o->monitor);
  cmd->add_flag("--destroy", o->destroy,
                "Then delete the local data directory (--pgdata) and its state directory, once the keeper has left");
  cmd->add_flag("--force", o->force,
                "Remove it from the monitor at once, without waiting for its keeper (not for a primary with standbys)");
  cmd->add_option("--wait", o->wait_seconds, "Seconds to wait until the monitor has forgotten it (0: do not wait; default 60)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(std::string(kMonitorHelp) +
              "Examples:\n  pgfailover drop node --name idp003 --monitor postgresql://pgfailover_node@sec001:5431/pgfailover\n"
              "  pgfailover drop node --pgdata /var/lib/postgresql/15/main --destroy");
  cmd->callback([o, &env] { run_drop(*o, env.log); });
}

}  // namespace pgf
