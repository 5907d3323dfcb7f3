// `pgfailover create monitor`: options only; the work is monitor/monitor_setup.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/create_options.h"
#include "common/config_file.h"
#include "common/instance_paths.h"
#include "common/signal_watch.h"
#include "monitor/monitor_service.h"
#include "monitor/monitor_setup.h"

namespace pgf {

namespace {

struct CreateMonitorOptions {
  std::string pgdata;
  std::string state_dir;
  int port = 0;
  std::string hostname;
  SecurityOptions security;
  std::string monitor_db;
  bool run = false;
};

}  // namespace

void add_create_monitor_command(CLI::App& create, CliEnv& env) {
  auto o = std::make_shared<CreateMonitorOptions>();
  auto* cmd = create.add_subcommand("monitor", "Create a monitor: its Postgres, the pgfailover database and schema");
  cmd->add_option("--pgdata", o->pgdata, "Data directory of the monitor's Postgres (default: $PGDATA)");
  cmd->add_option("--pgport", o->port, "Port of the monitor's Postgres")->check(CLI::Range(1, 65535));
  cmd->add_option("--hostname", o->hostname,
                  "Address keepers use to reach the monitor; Postgres listens there (default: 127.0.0.1)");
  add_security_options(cmd, o->security,
                       "How keepers authenticate: trust (default on loopback) or scram-sha-256 (default otherwise)",
                       "With scram-sha-256: take the passwords from this file (else $PGFAILOVER_SECRETS_FILE, "
                       "PGFAILOVER_KEEPER_PASSWORD, PGFAILOVER_HEALTH_CHECK_PASSWORD, "
                       "PGFAILOVER_REPLICATION_PASSWORD); the rest is generated");
  cmd->add_option("--monitor-db", o->monitor_db,
                  "Install into this existing Postgres database (URI) instead of creating a Postgres");
  cmd->add_option("--state-dir", o->state_dir, "pgfailover's own files (default: <pgdata>.pgfailover)");
  cmd->add_flag("--run", o->run, "Go on running the monitor service (as `pgfailover run`)");
  cmd->footer(
      "TLS: " + std::string(kTlsOptionsHelp) +
      ".\nRunning it again on the same directory changes nothing that exists and applies new migrations.\n"
      "Examples:\n"
      "  sudo -u postgres pgfailover create monitor --pgdata /var/lib/pgfailover/monitor --pgport 5431 \\\n"
      "      --hostname sec001 --auth scram-sha-256 --ssl-self-signed --run\n"
      "  sudo -u postgres pgfailover create monitor --pgdata /var/lib/pgfailover/monitor --ssl-ca-file ca.crt \\\n"
      "      --monitor-db postgresql://postgres@db1:5432/pgfailover");
  cmd->callback([o, &env] {
    MonitorOptions opts;
    opts.pgdata = resolve_pgdata(o->pgdata);
    if (!o->state_dir.empty()) opts.state_dir = fs::path(o->state_dir);
    if (o->port != 0) opts.port = o->port;
    if (!o->hostname.empty()) opts.hostname = o->hostname;
    if (!o->security.auth.empty()) opts.auth = parse_auth_method(o->security.auth);
    if (!o->monitor_db.empty()) opts.database_uri = o->monitor_db;
    opts.tls = o->security.tls;
    opts.given_passwords = given_passwords(o->security);

    auto created = create_monitor(opts, env.log);
    if (created.existed) {
      std::cout << "monitor already created in " << created.paths.pgdata.string() << "; applied "
                << created.migrations_applied << " new migrations\n";
    } else {
      std::cout << "monitor created in " << created.paths.pgdata.string() << "; applied "
                << created.migrations_applied << " migrations\n";
    }
    std::cout << "keepers use the monitor URI: " << created.config.keeper_uri() << "\n";
    if (created.config.database_uri) {
      std::cout << "pg_hba.conf of that server must let pgfailover_node reach the database (pgfailover does not edit "
                   "it there)\n";
    }
    if (created.password_file) {
      std::cout << "the formation's passwords are in " << created.password_file->string()
                << " (mode 0600): copy it to each data node over a secure channel and give it to "
                   "pgfailover create postgres --auth scram-sha-256 --secrets-file FILE\n";
    }
    if (!o->run) {
      std::cout << "start it with: pgfailover run --pgdata " << created.paths.pgdata.string()
                << (o->state_dir.empty() ? "" : " --state-dir " + created.paths.state_dir.string()) << "\n";
      return;
    }
    std::cout.flush();
    SignalWatch signals;
    auto config = ConfigFile::load(created.paths.config_file().string());
    env.exit_code = run_monitor(created.paths, config, env.log, signals);
  });
}

}  // namespace pgf
