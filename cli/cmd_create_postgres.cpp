// `pgfailover create postgres`: register a data node with the monitor; with
// --run, go on as its keeper. The logic is in keeper/node_setup.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/create_options.h"
#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/log.h"
#include "common/instance_paths.h"
#include "common/signal_watch.h"
#include "keeper/keeper_service.h"
#include "keeper/node_setup.h"

namespace pgf {

namespace {

struct CreatePostgresArgs {
  std::string pgdata;
  std::string state_dir;
  int port = 5432;
  std::string hostname;
  std::string monitor;
  std::string name;
  std::string formation = "default";
  std::string dbname = "postgres";
  int candidate_priority = 50;
  std::string replication_quorum = "true";
  bool replace_data = false;
  bool run = false;
  std::string pg_bindir;
  SecurityOptions security;
};

void env_log_warning(CliEnv& env, std::string_view message) { Logger(env.log, "create").warn("{}", message); }

}  // namespace

void add_create_postgres_command(CLI::App& create, CliEnv& env) {
  auto a = std::make_shared<CreatePostgresArgs>();
  auto* cmd = create.add_subcommand("postgres", "Create a data node, or adopt an existing data directory, and register it with the monitor");
  cmd->add_option("--pgdata", a->pgdata, "Data directory (default: $PGDATA); may already hold data to adopt");
  cmd->add_option("--pgport", a->port, "Port of this node's Postgres")->default_val(5432);
  cmd->add_option("--hostname", a->hostname, "Name or address the monitor and the other nodes reach this node at")->required();
  cmd->add_option("--monitor", a->monitor, "The monitor's URI, e.g. postgresql://pgfailover_node@sec001:5431/pgfailover")->required();
  cmd->add_option("--name", a->name, "Node name (default: node_<id>)");
  cmd->add_option("--formation", a->formation, "Formation")->default_val("default");
  cmd->add_option("--dbname", a->dbname, "Database to create on the primary")->default_val("postgres");
  cmd->add_option("--candidate-priority", a->candidate_priority, "0..100; 0: never promoted")->default_val(50);
  cmd->add_option("--replication-quorum", a->replication_quorum, "true|false: may count for synchronous replication")
      ->default_val("true");
  cmd->add_flag("--replace-data", a->replace_data,
                "If this node is to become a standby, move a non-empty data directory aside (never deleted)");
  cmd->add_option("--state-dir", a->state_dir, "pgfailover's own files (default: <pgdata>.pgfailover)");
  cmd->add_option("--pg-bindir", a->pg_bindir, "PostgreSQL server binaries (default: /usr/lib/postgresql/15/bin)");
  cmd->add_flag("--run", a->run, "Go on as the keeper (like pgfailover run) once created");
  add_security_options(cmd, a->security,
                       "How peers and the monitor authenticate here: trust (default on loopback) or scram-sha-256 "
                       "(default otherwise)",
                       "The formation's passwords: a copy of the monitor's <state dir>/secrets (else "
                       "$PGFAILOVER_SECRETS_FILE or the PGFAILOVER_*_PASSWORD variables); needed by scram-sha-256");
  cmd->footer(
      "TLS: " + std::string(kTlsOptionsHelp) +
      ".\nExample:\n  sudo -u postgres pgfailover create postgres --pgdata /var/lib/postgresql/15/main --pgport 5432 \\\n"
      "      --hostname idp001 --monitor 'postgresql://pgfailover_node@sec001:5431/pgfailover?sslmode=require' \\\n"
      "      --ssl-self-signed --auth scram-sha-256 --secrets-file /root/pgfailover-secrets --run");
  cmd->callback([a, &env] {
    KeeperConfig c;
    auto pgdata = resolve_pgdata(a->pgdata);
    auto paths = InstancePaths::for_pgdata(pgdata, a->state_dir.empty() ? std::nullopt : std::optional<fs::path>(a->state_dir));
    c.pgdata = paths.pgdata;
    c.port = a->port;
    c.hostname = a->hostname;
    c.monitor_uri = a->monitor;
    if (!a->name.empty()) c.name = a->name;
    c.formation = a->formation;
    c.dbname = a->dbname;
    c.candidate_priority = a->candidate_priority;
    const auto& q = a->replication_quorum;
    if (q == "true" || q == "on" || q == "yes") {
      c.replication_quorum = true;
    } else if (q == "false" || q == "off" || q == "no") {
      c.replication_quorum = false;
    } else {
      throw Error("--replication-quorum \"{}\" is invalid: use true or false", q);
    }
    c.replace_data = a->replace_data;
    c.pg_bindir = a->pg_bindir;
    NodeSecurity security;
    security.tls = a->security.tls;
    if (!a->security.auth.empty()) security.auth = parse_auth_method(a->security.auth);
    security.passwords = given_passwords(a->security);
    if (auto ci = ConnInfo::parse(c.monitor_uri, "monitor URI"); ci.has("password")) {
      env_log_warning(env, "a password in --monitor is visible to every user of this host (ps) while this command "
                           "runs: give it in the secrets file or PGFAILOVER_KEEPER_PASSWORD instead");
    }
    // Before anything else, so no thread ever sees these signals unblocked.
    std::unique_ptr<SignalWatch> signals;
    if (a->run) signals = std::make_unique<SignalWatch>();
    auto created = create_postgres_node(c, security, paths, env.log);
    if (created.already_created) {
      std::cout << paths.pgdata.string() << " is already created as node " << created.name << " (id "
                << created.node_id << "); see " << paths.config_file().string() << "\n";
    } else {
      std::cout << "created node " << created.name << " (id " << created.node_id << ") for " << paths.pgdata.string()
                << "; start it with: pgfailover run --pgdata " << paths.pgdata.string() << "\n";
    }
    std::cout.flush();
    if (a->run) {
      auto config = ConfigFile::load(paths.config_file().string());
      env.exit_code = run_keeper(paths, config, env.log, *signals);
    }
  });
}

}  // namespace pgf
