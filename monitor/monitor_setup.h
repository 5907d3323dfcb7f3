// `pgfailover create monitor`: a Postgres of its own (or an existing one), the
// pgfailover database with its schema, keepers' access, and the instance's
// configuration file. Safe to run again: what exists is kept, what is missing
// is added, and the answer says which.
#pragma once

#include <optional>
#include <string>

#include "common/fs.h"
#include "common/instance_paths.h"
#include "common/log.h"
#include "common/net.h"
#include "common/secrets.h"
#include "common/tls.h"

namespace pgf {

class ConfigFile;

// How keepers and the CLI authenticate as pgfailover_node.
using KeeperAuth = AuthMethod;

// What <state dir>/pgfailover.conf says about a monitor.
struct MonitorConfig {
  fs::path pgdata;
  int port = 0;
  std::string hostname;  // where keepers reach the monitor; Postgres listens there
  KeeperAuth auth = KeeperAuth::Trust;
  // An existing Postgres the schema was installed into; then `run` supervises no Postgres.
  std::optional<std::string> database_uri;
  // Our own Postgres serves TLS with these files; keepers, the CLI and the
  // health checks connect with its sslmode. With database_uri only the
  // latter: that server's TLS is its operator's.
  TlsSettings tls;

  // Throws one line naming the file and the bad value.
  static MonitorConfig from(const ConfigFile& config);
  ConfigFile to_config() const;

  // How the service reaches the monitor database (local socket, or the URI),
  // with keepalives and timeouts set, and a description without secrets.
  std::string service_conninfo(const InstancePaths& paths) const;
  std::string describe_database(const InstancePaths& paths) const;
  // The URI keepers use: postgresql://pgfailover_node@host:port/dbname, with
  // ?sslmode=require (or verify-full) when TLS is on. No CA path: each node
  // names its own with --ssl-ca-file.
  std::string keeper_uri() const;
};

struct MonitorOptions {
  fs::path pgdata;
  std::optional<fs::path> state_dir;
  std::optional<int> port;
  std::optional<std::string> hostname;
  std::optional<KeeperAuth> auth;
  std::optional<std::string> database_uri;
  TlsOptions tls;               // one choice is required
  RolePasswords given_passwords;  // from --secrets-file or the environment; the rest is generated
};

struct MonitorCreated {
  InstancePaths paths;
  MonitorConfig config;
  bool existed = false;      // the configuration was already there
  int migrations_applied = 0;
  std::optional<fs::path> password_file;  // the formation's passwords, for scram-sha-256
};

// The database the schema lives in on a monitor's own Postgres.
inline constexpr const char* kMonitorDbName = "pgfailover";

MonitorCreated create_monitor(const MonitorOptions& options, LogSink& log);

// The pg_hba.conf lines that let keepers in (exposed for tests): hostssl
// when TLS is on, and a final line refusing pgfailover's roles anything else.
std::string keeper_hba_block(const std::string& hostname, KeeperAuth auth, bool tls = false);

}  // namespace pgf
