#include "cli/monitor_access.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/log.h"
#include "keeper/keeper_config.h"
#include "keeper/node_setup.h"
#include "monitor/monitor_setup.h"

namespace pgf {

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The API role and database are the only ones that make sense for a CLI
// connection; filling them in lets an operator write just host:port.
ConnInfo with_cli_defaults(ConnInfo ci) {
  if (!ci.has("user")) ci.set("user", "pgfailover_node");
  if (!ci.has("dbname")) ci.set("dbname", kMonitorDbName);
  if (!ci.has("connect_timeout")) ci.set("connect_timeout", "3");
  if (!ci.has("application_name")) ci.set("application_name", "pgfailover cli");
  // An operator command must not hang on a lock forever.
  if (!ci.has("options")) ci.set("options", "-c statement_timeout=15000");
  return ci;
}

std::string endpoint_of(const ConnInfo& ci) { return ci.get("host", "localhost") + ":" + ci.get("port", "5432"); }

MonitorTarget target_from_uri(const std::string& uri, const std::string& source) {
  auto ci = with_cli_defaults(ConnInfo::parse(uri, "monitor URI"));
  return MonitorTarget{ci.to_conninfo(), endpoint_of(ci), display_uri(ci), source, std::nullopt};
}

MonitorTarget target_from_local(const LocalInstance& local, const std::string& source) {
  auto config = ConfigFile::load(local.paths.config_file().string());
  if (local.role == "keeper") {
    // As the keeper connects: its TLS choice, and its password when this
    // user may read its secrets file.
    auto kc = KeeperConfig::from_file(config);
    auto ci = with_cli_defaults(ConnInfo::parse(monitor_conninfo(kc, local.paths), "monitor URI"));
    return MonitorTarget{ci.to_conninfo(), endpoint_of(ci), display_uri(ci), source, local};
  }
  // A monitor: reach it the way keepers do (pgfailover_node over TCP, with
  // its TLS choice), with the password `create monitor` generated when it
  // uses scram-sha-256.
  auto mc = MonitorConfig::from(config);
  auto ci = with_cli_defaults(ConnInfo::parse(mc.keeper_uri(), "monitor URI"));
  mc.tls.apply_to(ci, "the monitor URI");
  if (mc.auth == KeeperAuth::ScramSha256 && !ci.has("password")) {
    if (auto pw = RolePasswords::load_if_readable(local.paths.secrets_file()); pw && pw->keeper) {
      ci.set("password", *pw->keeper);
    }
  }
  return MonitorTarget{ci.to_conninfo(), endpoint_of(ci), display_uri(ci), source, local};
}

LocalInstance require_local(const fs::path& pgdata, const std::string& how) {
  auto local = load_local_instance(pgdata);
  if (!local) {
    auto paths = InstancePaths::for_pgdata(pgdata);
    throw Error("{} {} is not managed by pgfailover (no {})", how, paths.pgdata.string(),
                paths.config_file().string());
  }
  return *local;
}

}  // namespace

std::optional<LocalInstance> load_local_instance(const fs::path& pgdata) {
  auto paths = InstancePaths::for_pgdata(pgdata);
  if (!fs::exists(paths.config_file())) return std::nullopt;
  auto config = ConfigFile::load(paths.config_file().string());
  LocalInstance local{paths, config.require("pgfailover.role")};
  if (local.role == "keeper") {
    local.formation = config.get_or("node.formation", "default");
    if (auto n = config.get("node.name"); n && !n->empty()) local.node_name = *n;
    local.host = config.require("postgres.hostname");
    local.port = config.get_int("postgres.port", 5432);
    local.tls = TlsSettings::from(config);
  } else if (local.role == "monitor") {
    local.tls = TlsSettings::from(config);
  } else {
    throw Error("{}: unknown role \"{}\" (expected monitor or keeper)", paths.config_file().string(), local.role);
  }
  return local;
}

MonitorTarget resolve_monitor(const MonitorLocation& where) {
  std::optional<LocalInstance> local;
  if (!where.pgdata.empty()) {
    local = require_local(where.pgdata, "--pgdata");
  } else if (auto env = env_or_empty("PGDATA"); !env.empty()) {
    // Only a hint here (the node a command is about): an unreadable $PGDATA
    // must not break a command that names its monitor otherwise.
    try {
      local = load_local_instance(env);
    } catch (const Error&) {
    }
  }

  if (!where.monitor_uri.empty()) {
    auto t = target_from_uri(where.monitor_uri, "--monitor");
    t.local = local;
    return t;
  }
  if (!where.pgdata.empty()) return target_from_local(*local, "--pgdata " + local->paths.pgdata.string());
  if (auto env = env_or_empty("PGFAILOVER_MONITOR"); !env.empty()) {
    auto t = target_from_uri(env, "$PGFAILOVER_MONITOR");
    t.local = local;
    return t;
  }
  if (auto env = env_or_empty("PGDATA"); !env.empty()) {
    if (!local) local = require_local(env, "$PGDATA");
    return target_from_local(*local, "$PGDATA " + local->paths.pgdata.string());
  }
  throw Error("no monitor given: use --monitor URI or --pgdata DIR, or set PGFAILOVER_MONITOR or PGDATA");
}

std::string display_uri(const ConnInfo& ci) {
  std::string host = ci.get("host", "localhost");
  // IPv6 addresses in brackets, as in a URI; several hosts stay comma-separated.
  if (host.find(':') != std::string::npos && host.find(',') == std::string::npos) host = "[" + host + "]";
  std::string uri = "postgresql://";
  if (ci.has("user")) uri += ci.get("user") + "@";
  uri += host;
  if (ci.has("port")) uri += ":" + ci.get("port");
  uri += "/" + ci.get("dbname", kMonitorDbName);
  if (ci.has("sslmode")) uri += "?sslmode=" + ci.get("sslmode");
  return uri;
}

UriTls uri_tls(const std::string& sslmode_option, const std::optional<LocalInstance>& local, bool monitor_session_tls) {
  UriTls out;
  const TlsSettings* tls = local ? &local->tls : nullptr;
  if (!sslmode_option.empty()) {
    out.sslmode = sslmode_option;
  } else if (tls && tls->enabled()) {
    out.sslmode = tls->client_sslmode();
  } else if (monitor_session_tls) {
    out.sslmode = "require";
  }
  if ((out.sslmode == "verify-full" || out.sslmode == "verify-ca") && tls && tls->mode == TlsMode::VerifyFull) {
    out.sslrootcert = tls->ca_file.string();
  }
  return out;
}

std::string with_sslrootcert(const std::string& uri, const std::string& sslrootcert) {
  if (sslrootcert.empty()) return uri;
  std::string encoded;
  for (unsigned char c : sslrootcert) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      encoded += static_cast<char>(c);
    } else {
      encoded += fmt::format("%{:02X}", c);
    }
  }
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + "sslrootcert=" + encoded;
}

// ---- MonitorApi

MonitorApi MonitorApi::connect(const MonitorTarget& target) {
  try {
    return MonitorApi(target, PgConnection::connect(target.conninfo, "monitor"));
  } catch (const PgConnectError& e) {
    throw Error("cannot reach monitor at {}: {}", target.endpoint, monitor_connect_reason(e.what()));
  }
}

PgResult MonitorApi::call(std::string_view sql, const SqlParams& params) {
  try {
    return conn_.exec(sql, params);
  } catch (const PgConnectError& e) {
    throw Error("lost connection to monitor at {}: {}", target_.endpoint, monitor_connect_reason(e.what()));
  } catch (const PgError& e) {
    // 42883: the function does not exist (an old monitor, or not a monitor at all).
    if (e.sqlstate() == "42883" || e.sqlstate() == "3F000") {
      throw Error("{} is not a pgfailover monitor of this version: {}", target_.endpoint, e.what());
    }
    if (e.sqlstate() == "42501") throw Error("monitor at {} refused: {}", target_.endpoint, e.what());
    throw;  // the API's own one-line message
  }
}

std::vector<NodeStatus> MonitorApi::current_state(const std::string& formation) {
  auto r = call(
      "SELECT node_id, name, host, port, group_id, timeline, lsn::text AS lsn, reported_state, goal_state, health,"
      " pg_running, to_json(last_report_at) #>> '{}' AS last_report_at, lag_bytes, lag_seconds,"
      " candidate_priority, replication_quorum, maintenance_requested, sync_standby_names"
      " FROM pgfailover.current_state($1)",
      {param(formation)});
  std::vector<NodeStatus> out;
  for (int i = 0; i < r.rows(); ++i) {
    NodeStatus n;
    n.id = r.int64(i, "node_id");
    n.name = r.str(i, "name");
    n.host = r.str(i, "host");
    n.port = static_cast<int>(r.int64(i, "port"));
    n.group = static_cast<int>(r.int64(i, "group_id"));
    n.timeline = r.opt_int64(i, "timeline");
    n.lsn = r.opt_str(i, "lsn");
    n.reported_state = r.opt_str(i, "reported_state");
    n.assigned_state = r.str(i, "goal_state");
    n.health = r.str(i, "health");
    if (!r.is_null(i, "pg_running")) n.pg_running = r.boolean(i, "pg_running");
    n.last_report_at = r.opt_str(i, "last_report_at");
    n.lag_bytes = r.opt_int64(i, "lag_bytes");
    if (!r.is_null(i, "lag_seconds")) n.lag_seconds = r.float64(i, "lag_seconds");
    n.candidate_priority = static_cast<int>(r.int64(i, "candidate_priority"));
    n.replication_quorum = r.boolean(i, "replication_quorum");
    n.maintenance_requested = r.boolean(i, "maintenance_requested");
    n.sync_standby_names = r.opt_str(i, "sync_standby_names");
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<Event> MonitorApi::last_events(const std::string& formation, int count) {
  auto r = call(
      "SELECT id, to_json(at) #>> '{}' AS at, to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS') AS at_display, group_id,"
      " node_id, node_name, from_state, to_state, rule, reason FROM pgfailover.last_events($1, $2)",
      {param(formation), param(count)});
  std::vector<Event> out;
  for (int i = 0; i < r.rows(); ++i) {
    Event e;
    e.id = r.int64(i, "id");
    e.at = r.str(i, "at");
    e.at_display = r.str(i, "at_display");
    if (auto g = r.opt_int64(i, "group_id")) e.group = static_cast<int>(*g);
    e.node_id = r.opt_int64(i, "node_id");
    e.node_name = r.opt_str(i, "node_name");
    e.from_state = r.opt_str(i, "from_state");
    e.to_state = r.opt_str(i, "to_state");
    e.rule = r.str(i, "rule");
    e.reason = r.str(i, "reason");
    out.push_back(std::move(e));
  }
  return out;
}

std::string MonitorApi::formation_uri(const std::string& formation, const std::string& format,
                                      const std::string& sslmode) {
  auto r = call("SELECT pgfailover.formation_uri($1, $2, $3) AS uri",
                {param(formation), param(format), sslmode.empty() ? SqlParam{} : param(sslmode)});
  return r.str(0, "uri");
}

namespace {
FormationSettings formation_settings(const PgResult& r) {
  return {r.str(0, "formation"), r.str(0, "dbname"), static_cast<int>(r.int64(0, "number_sync_standbys"))};
}
NodeSettings node_settings(const PgResult& r) {
  return {r.str(0, "name"), static_cast<int>(r.int64(0, "candidate_priority")), r.boolean(0, "replication_quorum")};
}
MonitorSetting monitor_setting(const PgResult& r, int i) {
  return {r.str(i, "name"), r.str(i, "value"), r.str(i, "description"), r.int64(i, "min_value"),
          r.int64(i, "max_value")};
}
}  // namespace

FormationSettings MonitorApi::get_formation_settings(const std::string& formation) {
  return formation_settings(call("SELECT * FROM pgfailover.get_formation_settings($1)", {param(formation)}));
}

FormationSettings MonitorApi::set_formation_number_sync_standbys(const std::string& formation, int n) {
  return formation_settings(
      call("SELECT * FROM pgfailover.set_formation_number_sync_standbys($1, $2)", {param(formation), param(n)}));
}

NodeSettings MonitorApi::get_node_settings(const std::string& formation, const std::string& name) {
  return node_settings(call("SELECT * FROM pgfailover.get_node_settings($1, $2)", {param(formation), param(name)}));
}

NodeSettings MonitorApi::set_node_candidate_priority(const std::string& formation, const std::string& name,
                                                     int priority) {
  return node_settings(call("SELECT * FROM pgfailover.set_node_candidate_priority($1, $2, $3)",
                            {param(formation), param(name), param(priority)}));
}

NodeSettings MonitorApi::set_node_replication_quorum(const std::string& formation, const std::string& name,
                                                     bool quorum) {
  return node_settings(call("SELECT * FROM pgfailover.set_node_replication_quorum($1, $2, $3)",
                            {param(formation), param(name), param(quorum)}));
}

std::vector<MonitorSetting> MonitorApi::get_monitor_settings() {
  auto r = call("SELECT * FROM pgfailover.get_monitor_settings()");
  std::vector<MonitorSetting> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(monitor_setting(r, i));
  return out;
}

MonitorSetting MonitorApi::set_monitor_setting(const std::string& name, const std::string& value) {
  return monitor_setting(call("SELECT * FROM pgfailover.set_monitor_setting($1, $2)", {param(name), param(value)}), 0);
}

void MonitorApi::perform_failover(const std::string& formation, int group) {
  call("SELECT pgfailover.perform_failover($1, $2)", {param(formation), param(group)});
}

void MonitorApi::perform_switchover(const std::string& formation, int group) {
  call("SELECT pgfailover.perform_switchover($1, $2)", {param(formation), param(group)});
}

void MonitorApi::perform_promotion(const std::string& formation, const std::string& name) {
  call("SELECT pgfailover.perform_promotion($1, $2)", {param(formation), param(name)});
}

void MonitorApi::start_maintenance(const std::string& formation, const std::string& name) {
  call("SELECT pgfailover.start_maintenance($1, $2)", {param(formation), param(name)});
}

void MonitorApi::stop_maintenance(const std::string& formation, const std::string& name) {
  call("SELECT pgfailover.stop_maintenance($1, $2)", {param(formation), param(name)});
}

void MonitorApi::drop_node(const std::string& formation, const std::string& name, bool force) {
  call("SELECT pgfailover.drop_node($1, $2, $3)", {param(formation), param(name), param(force)});
}

void MonitorApi::listen_events() { call("LISTEN pgfailover_events"); }

bool MonitorApi::wait_for_events(std::chrono::milliseconds timeout) {
  try {
    return !conn_.wait_for_notifications(timeout).empty();
  } catch (const PgConnectError& e) {
    throw Error("lost connection to monitor at {}: {}", target_.endpoint, monitor_connect_reason(e.what()));
  }
}

// ---- which formation and node

std::string resolve_formation(const std::string& formation_option, const std::optional<LocalInstance>& local) {
  if (!formation_option.empty()) return formation_option;
  if (local && local->role == "keeper") return local->formation;
  return "default";
}

std::string resolve_node_name(MonitorApi& api, const std::string& formation, const std::string& name_option,
                              const std::optional<LocalInstance>& local) {
  if (!name_option.empty()) return name_option;
  if (!local || local->role != "keeper") {
    throw Error("which node? give --name NODE, or --pgdata DIR of a data node");
  }
  if (local->node_name) return *local->node_name;
  // Named by the monitor (node_<id>): the node registered at this host:port.
  for (const auto& n : api.current_state(formation)) {
    if (n.host == local->host && n.port == local->port) return n.name;
  }
  throw Error("no node at {}:{} (the node of {}) is registered in formation \"{}\"", local->host, local->port,
              local->paths.pgdata.string(), formation);
}

}  // namespace pgf
