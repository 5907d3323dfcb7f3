// `pgfailover config get | set | check`: the local instance's
// <pgdata>.pgfailover/pgfailover.conf. Values are validated by the same code
// that reads them at start, and passwords in URIs are never printed.
#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/monitor_access.h"
#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pid_lock.h"
#include "keeper/keeper_config.h"
#include "monitor/monitor_setup.h"

namespace pgf {

namespace {

struct ConfigOptions {
  std::string pgdata;
  std::string key;
  std::string value;
};

struct KeyInfo {
  std::string_view key;
  std::string_view refusal;  // non-empty: `config set` refuses it, saying why
};

// What each role reads (keeper/keeper_config.cpp, monitor/monitor_setup.cpp).
constexpr KeyInfo kKeeperKeys[] = {
    {"pgfailover.role", "it is what this directory was created as"},
    {"postgres.pgdata", "it is where this configuration belongs"},
    {"postgres.port", ""},
    {"postgres.hostname", ""},
    {"postgres.dbname", ""},
    {"postgres.bindir", ""},
    {"monitor.uri", ""},
    {"node.formation", "it is the node's identity at the monitor"},
    {"node.name", "it is the node's identity at the monitor"},
    {"node.group", "it is the node's identity at the monitor"},
    {"node.candidate_priority", "the monitor holds the live value: use pgfailover set node candidate-priority"},
    {"node.replication_quorum", "the monitor holds the live value: use pgfailover set node replication-quorum"},
    {"node.replace_data", ""},
    {"postgres.auth", "pg_hba.conf and the roles' passwords follow it: create the node again instead"},
    {"ssl.mode", "the certificates and pg_hba.conf follow it: create the node again instead"},
    {"ssl.cert_file", ""},
    {"ssl.key_file", ""},
    {"ssl.ca_file", ""},
};
constexpr KeyInfo kMonitorKeys[] = {
    {"pgfailover.role", "it is what this directory was created as"},
    {"postgresql.pgdata", "it is where this configuration belongs"},
    {"postgresql.port", ""},
    {"monitor.hostname", ""},
    {"monitor.auth", "pg_hba.conf and the keepers' password follow it: run pgfailover create monitor again instead"},
    {"monitor.database_uri", ""},
    {"ssl.mode", "pg_hba.conf and the certificates follow it: create the monitor again instead"},
    {"ssl.cert_file", "Postgres reads it from its settings, written by create monitor"},
    {"ssl.key_file", "Postgres reads it from its settings, written by create monitor"},
    {"ssl.ca_file", ""},
};

struct LoadedConfig {
  InstancePaths paths;
  ConfigFile file;
  std::string role;
};

LoadedConfig load(const std::string& pgdata_option) {
  auto paths = InstancePaths::for_pgdata(resolve_pgdata(pgdata_option));
  if (!fs::exists(paths.config_file())) {
    throw Error("{} is not managed by pgfailover (no {})", paths.pgdata.string(), paths.config_file().string());
  }
  auto file = ConfigFile::load(paths.config_file().string());
  auto role = file.require("pgfailover.role");
  if (role != "keeper" && role != "monitor") {
    throw Error("{}: unknown role \"{}\" (expected monitor or keeper)", paths.config_file().string(), role);
  }
  return {paths, std::move(file), role};
}

// Throws with one line naming the bad value, exactly as `run` would.
void validate(const LoadedConfig& c) {
  if (c.role == "keeper") {
    KeeperConfig::from_file(c.file).tls.check_files();
  } else {
    auto m = MonitorConfig::from(c.file);
    if (!m.database_uri) m.tls.check_files();
  }
}

const KeyInfo* find_key(const std::string& role, std::string_view key) {
  auto check = [&](const auto& keys) -> const KeyInfo* {
    for (const auto& k : keys) {
      if (k.key == key) return &k;
    }
    return nullptr;
  };
  return role == "keeper" ? check(kKeeperKeys) : check(kMonitorKeys);
}

void run_get(const ConfigOptions& o) {
  auto c = load(o.pgdata);
  if (!o.key.empty()) {
    auto v = c.file.get(o.key);
    if (!v) throw Error("{} has no {}", c.paths.config_file().string(), o.key);
    std::cout << redact_secrets(*v) << "\n";
    return;
  }
  for (const auto& key : c.file.keys()) std::cout << key << " = " << redact_secrets(*c.file.get(key)) << "\n";
}

void run_set(const ConfigOptions& o) {
  auto c = load(o.pgdata);
  const auto* info = find_key(c.role, o.key);
  if (!info) throw Error("{} is not a setting of a {} (see pgfailover config get)", o.key, c.role);
  if (!info->refusal.empty()) throw Error("{} cannot be changed here: {}", o.key, info->refusal);
  auto before = c.file.get(o.key);
  c.file.set(o.key, o.value);
  validate(c);  // nothing is written when the new value is wrong
  // Keep the owner: run as root, the file must stay the service user's.
  struct stat st {};
  auto path = c.paths.config_file().string();
  bool have_owner = ::stat(path.c_str(), &st) == 0;
  c.file.save(path, 0600);
  if (have_owner && ::chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
    throw Error("cannot keep the owner of {}: {}", path, errno_text(errno));
  }
  std::cout << o.key << " = " << redact_secrets(o.value) << (before == o.value ? " (unchanged)" : "")
            << "; restart the service (pgfailover stop, then run) for it to take effect\n";
}

void run_check(const ConfigOptions& o) {
  auto c = load(o.pgdata);
  validate(c);
  std::cout << "ok    " << c.paths.config_file().string() << ": a valid " << c.role << " configuration\n";
  fs::path pgdata = c.role == "keeper" ? fs::path(c.file.require("postgres.pgdata"))
                                       : fs::path(c.file.require("postgresql.pgdata"));
  if (c.role == "keeper" || !c.file.get("monitor.database_uri")) {
    if (fs::exists(pgdata / "PG_VERSION")) {
      std::cout << "ok    " << pgdata.string() << ": a PostgreSQL " << read_file(pgdata / "PG_VERSION").substr(0, 2)
                << " data directory\n";
    } else {
      std::cout << "note  " << pgdata.string() << ": no data yet (the keeper creates it when it runs)\n";
    }
  }
  if (auto pid = PidLock::holder(c.paths.pid_file())) {
    std::cout << "ok    service running (pid " << *pid << ")\n";
  } else {
    std::cout << "note  service not running (start it with: pgfailover run --pgdata " << c.paths.pgdata.string() << ")\n";
  }
  auto target = resolve_monitor({"", c.paths.pgdata.string()});
  auto api = MonitorApi::connect(target);
  if (c.role == "keeper") {
    auto local = target.local;
    auto formation = resolve_formation("", local);
    api.get_formation_settings(formation);  // the formation exists
    auto name = resolve_node_name(api, formation, "", local);
    auto nodes = api.current_state(formation);
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const NodeStatus& n) { return n.name == name; });
    if (it == nodes.end()) throw Error("node \"{}\" is not registered in formation \"{}\"", name, formation);
    std::cout << "ok    monitor reachable at " << target.endpoint << "; node " << name << " is registered in formation \""
              << formation << "\" (assigned " << it->assigned_state << ")\n";
  } else {
    api.get_monitor_settings();
    std::cout << "ok    monitor reachable at " << target.endpoint << " as pgfailover_node\n";
  }
}

}  // namespace

void add_config_commands(CLI::App& app, CliEnv&) {
  auto* config = app.add_subcommand("config", "Read, change and check the local pgfailover.conf");
  config->require_subcommand(1);
  config->footer("Example:\n  pgfailover config check --pgdata /var/lib/postgresql/15/main");

  auto go = std::make_shared<ConfigOptions>();
  auto* get = config->add_subcommand("get", "Print every setting, or the value of one (passwords are masked)");
  get->add_option("key", go->key, "section.name, e.g. monitor.uri");
  get->add_option("--pgdata", go->pgdata, "Data directory of the instance (default: $PGDATA)");
  get->footer("Examples:\n  pgfailover config get --pgdata /var/lib/postgresql/15/main\n"
              "  pgfailover config get postgres.port --pgdata /var/lib/postgresql/15/main");
  get->callback([go] { run_get(*go); });

  auto so = std::make_shared<ConfigOptions>();
  auto* set = config->add_subcommand("set", "Change one setting, validated before it is written");
  set->add_option("key", so->key, "section.name, e.g. monitor.uri")->required();
  set->add_option("value", so->value, "New value")->required();
  set->add_option("--pgdata", so->pgdata, "Data directory of the instance (default: $PGDATA)");
  set->footer("The service reads its configuration at start: restart it afterwards.\nExample:\n"
              "  pgfailover config set monitor.uri postgresql://pgfailover_node@sec002:5431/pgfailover \\\n"
              "      --pgdata /var/lib/postgresql/15/main");
  set->callback([so] { run_set(*so); });

  auto co = std::make_shared<ConfigOptions>();
  auto* check = config->add_subcommand("check", "Validate the configuration and check that the monitor is reachable");
  check->add_option("--pgdata", co->pgdata, "Data directory of the instance (default: $PGDATA)");
  check->footer("Exits non-zero with one line saying what is wrong.\nExample:\n"
                "  pgfailover config check --pgdata /var/lib/postgresql/15/main");
  check->callback([co] { run_check(*co); });
}

}  // namespace pgf
