// How operator commands find the monitor and call its SQL API
// (docs/monitor-api.md). Every command goes through here, so they all resolve
// the monitor the same way and fail with the same one-line messages:
//   malformed URI      -> ConnInfo::parse's "malformed monitor URI ...: <libpq's reason>"
//   unreachable        -> "cannot reach monitor at host:port: connection refused"
//   unknown node, ...  -> the SQL API's own message, passed through
// Connection strings may hold a password: they go to libpq and nowhere else.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/instance_paths.h"
#include "common/pg_connection.h"
#include "common/tls.h"

namespace pgf {

class ConnInfo;

// What the operator gave on the command line; empty means "not given".
struct MonitorLocation {
  std::string monitor_uri;  // --monitor
  std::string pgdata;       // --pgdata
};

// A pgfailover instance on this host, from its <pgdata>.pgfailover/pgfailover.conf.
struct LocalInstance {
  InstancePaths paths;
  std::string role;                      // "keeper" or "monitor"
  std::string formation = "default";     // a keeper's formation
  std::optional<std::string> node_name;  // a keeper's node name, when its configuration has one
  std::string host;                      // a keeper's registered host and port
  int port = 0;
  TlsSettings tls;                       // its TLS choice: the sslmode of the URIs it hands out
};

// Reads the instance configuration of `pgdata`; nullopt when there is none.
std::optional<LocalInstance> load_local_instance(const fs::path& pgdata);

struct MonitorTarget {
  std::string conninfo;  // for libpq only: may hold a password
  std::string endpoint;  // "host:port", for messages
  std::string uri;       // postgresql://user@host:port/dbname, never with a password
  std::string source;    // where it came from, for `config check` and messages
  std::optional<LocalInstance> local;  // the local instance of --pgdata or $PGDATA, if any
};

// --monitor, else --pgdata (a keeper's monitor.uri, or a monitor's own
// address), else $PGFAILOVER_MONITOR, else $PGDATA. The local instance is
// taken from --pgdata, else from $PGDATA when that holds one.
MonitorTarget resolve_monitor(const MonitorLocation& where);

// Pure helpers, exposed for tests.
// postgresql://user@host:port/dbname?sslmode=.. from a parsed connection string; no password.
std::string display_uri(const ConnInfo& ci);
// The sslmode (and CA file, for verify-*) of the URIs `show uri` prints:
// --sslmode when given, else the local instance's TLS choice, else
// "require" when the CLI's own session with the monitor is encrypted (a
// deployment with TLS at the monitor uses it everywhere), else none.
struct UriTls {
  std::string sslmode;
  std::string sslrootcert;
};
UriTls uri_tls(const std::string& sslmode_option, const std::optional<LocalInstance>& local, bool monitor_session_tls);
// `uri` with &sslrootcert=<percent-encoded path> added (nothing for an empty path).
std::string with_sslrootcert(const std::string& uri, const std::string& sslrootcert);

// ---- the API's rows

struct NodeStatus {
  std::int64_t id = 0;
  std::string name;
  std::string host;
  int port = 0;
  int group = 0;
  std::optional<std::int64_t> timeline;
  std::optional<std::string> lsn;
  std::optional<std::string> reported_state;
  std::string assigned_state;
  std::string health;
  std::optional<bool> pg_running;
  std::optional<std::string> last_report_at;  // ISO 8601
  std::optional<std::int64_t> lag_bytes;
  std::optional<double> lag_seconds;
  int candidate_priority = 0;
  bool replication_quorum = false;
  bool maintenance_requested = false;
  std::optional<std::string> sync_standby_names;  // primary-role nodes only
};

struct Event {
  std::int64_t id = 0;
  std::string at;          // ISO 8601 with offset
  std::string at_display;  // "YYYY-MM-DD HH:MM:SS.mmm" in the session's time zone
  std::optional<int> group;
  std::optional<std::int64_t> node_id;
  std::optional<std::string> node_name;
  std::optional<std::string> from_state;
  std::optional<std::string> to_state;
  std::string rule;
  std::string reason;
};

struct FormationSettings {
  std::string formation;
  std::string dbname;
  int number_sync_standbys = 0;
};

struct NodeSettings {
  std::string name;
  int candidate_priority = 0;
  bool replication_quorum = false;
};

struct MonitorSetting {
  std::string name;
  std::string value;
  std::string description;
  std::int64_t min_value = 0;
  std::int64_t max_value = 0;
};

// One connection to the monitor as pgfailover_node; one method per API function.
class MonitorApi {
 public:
  // Throws "cannot reach monitor at host:port: <reason>".
  static MonitorApi connect(const MonitorTarget& target);

  const MonitorTarget& target() const { return target_; }

  std::vector<NodeStatus> current_state(const std::string& formation);
  std::vector<Event> last_events(const std::string& formation, int count);
  std::string formation_uri(const std::string& formation, const std::string& format, const std::string& sslmode);

  FormationSettings get_formation_settings(const std::string& formation);
  FormationSettings set_formation_number_sync_standbys(const std::string& formation, int n);
  NodeSettings get_node_settings(const std::string& formation, const std::string& name);
  NodeSettings set_node_candidate_priority(const std::string& formation, const std::string& name, int priority);
  NodeSettings set_node_replication_quorum(const std::string& formation, const std::string& name, bool quorum);
  std::vector<MonitorSetting> get_monitor_settings();
  MonitorSetting set_monitor_setting(const std::string& name, const std::string& value);

  void perform_failover(const std::string& formation, int group);
  void perform_switchover(const std::string& formation, int group);
  void perform_promotion(const std::string& formation, const std::string& name);
  void start_maintenance(const std::string& formation, const std::string& name);
  void stop_maintenance(const std::string& formation, const std::string& name);
  void drop_node(const std::string& formation, const std::string& name, bool force);

  // LISTEN pgfailover_events; then wait_for_events() returns true when new
  // events were written (for any formation), false on timeout.
  void listen_events();
  bool wait_for_events(std::chrono::milliseconds timeout);
  int socket() const { return conn_.socket(); }
  // The session with the monitor is encrypted.
  bool ssl_in_use() const { return conn_.ssl_in_use(); }

 private:
  MonitorApi(MonitorTarget target, PgConnection conn) : target_(std::move(target)), conn_(std::move(conn)) {}
  PgResult call(std::string_view sql, const SqlParams& params = {});

  MonitorTarget target_;
  PgConnection conn_;
};

// The node a command is about: --name, else the local keeper's node (its
// configured name, or the node registered at its host:port).
std::string resolve_node_name(MonitorApi& api, const std::string& formation, const std::string& name_option,
                              const std::optional<LocalInstance>& local);
// --formation, else the local keeper's formation, else "default".
std::string resolve_formation(const std::string& formation_option, const std::optional<LocalInstance>& local);

}  // namespace pgf
