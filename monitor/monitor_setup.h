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

namespace pgf {

class ConfigFile;

enum class KeeperAuth { Trust, ScramSha256 };
std::string_view name(KeeperAuth a);
KeeperAuth parse_keeper_auth(std::string_view text);  // throws naming the accepted values

// What <state dir>/pgfailover.conf says about a monitor.
struct MonitorConfig {
  fs::path pgdata;
  int port = 0;
  std::string hostname;  // where keepers reach the monitor; Postgres listens there
  KeeperAuth auth = KeeperAuth::Trust;
  // An existing Postgres the schema was installed into; then `run` supervises no Postgres.
  std::optional<std::string> database_uri;

  static MonitorConfig from(const ConfigFile& config);
  ConfigFile to_config() const;

  // How the service reaches the monitor database (local socket, or the URI),
  // with keepalives and timeouts set, and a description without secrets.
  std::string service_conninfo(const InstancePaths& paths) const;
  std::string describe_database(const InstancePaths& paths) const;
  // The URI keepers use: postgresql://pgfailover_node@host:port/dbname.
  std::string keeper_uri() const;
};

struct MonitorOptions {
  fs::path pgdata;
  std::optional<fs::path> state_dir;
  std::optional<int> port;
  std::optional<std::string> hostname;
  std::optional<KeeperAuth> auth;
  std::optional<std::string> database_uri;
};

struct MonitorCreated {
  InstancePaths paths;
  MonitorConfig config;
  bool existed = false;      // the configuration was already there
  int migrations_applied = 0;
  std::optional<fs::path> password_file;  // where keepers' password is, for scram-sha-256
};

// The database the schema lives in on a monitor's own Postgres.
inline constexpr const char* kMonitorDbName = "pgfailover";

MonitorCreated create_monitor(const MonitorOptions& options, LogSink& log);

// The pg_hba.conf lines that let keepers in (exposed for tests).
std::string keeper_hba_block(const std::string& hostname, KeeperAuth auth);
bool is_loopback_host(const std::string& host);

}  // namespace pgf
