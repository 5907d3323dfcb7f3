#include "keeper/monitor_client.h"

#include <nlohmann/json.hpp>

#include "common/conninfo.h"
#include "common/error.h"
#include "common/names.h"

namespace pgf {

namespace {



}  // namespace

MonitorClient::MonitorClient(std::string uri, Logger log) : log_(std::move(log)) {
  auto ci = ConnInfo::parse(uri, "monitor URI");
  // A monitor that stops answering must not stall the keeper's loop: the loop
  // is what fences a partitioned primary.
  if (!ci.has("connect_timeout")) ci.set("connect_timeout", "2");
  if (!ci.has("application_name")) ci.set("application_name", "pgfailover keeper");
  if (!ci.has("keepalives")) ci.set("keepalives", "1");
  if (!ci.has("keepalives_idle")) ci.set("keepalives_idle", "2");
  if (!ci.has("keepalives_interval")) ci.set("keepalives_interval", "1");
  if (!ci.has("keepalives_count")) ci.set("keepalives_count", "3");
  if (!ci.has("tcp_user_timeout")) ci.set("tcp_user_timeout", "5000");
  if (!ci.has("options")) ci.set("options", "-c statement_timeout=5000");
  conninfo_ = ci.to_conninfo();
  endpoint_ = ci.get("host", "localhost") + ":" + ci.get("port", "5432");
}

void MonitorClient::rethrow_unreachable(const std::exception& e) {
  conn_.close();
  listening_.reset();
  throw Error("cannot reach monitor at {}: {}", endpoint_, monitor_connect_reason(e.what()));
}

PgConnection& MonitorClient::connection() {
  if (conn_.is_open() && !conn_.is_healthy()) {
    conn_.close();
    listening_.reset();
  }
  if (!conn_.is_open()) {
    try {
      conn_ = PgConnection::connect(conninfo_, "monitor");
    } catch (const PgConnectError& e) {
      rethrow_unreachable(e);
    }
  }
  return conn_;
}

RegisteredNode MonitorClient::register_node(const NodeRegistration& r) {
  auto& c = connection();
  PgResult res;
  try {
    res = c.exec(
        "SELECT node_id, name, group_id, goal_state FROM pgfailover.register_node($1, $2, $3, $4::int, $5::bigint, "
        "$6::int, $7::bool, $8::int)",
        {param(r.formation), param(r.name), param(r.host), param(r.port), param(r.system_identifier),
         param(r.candidate_priority), param(r.replication_quorum), param(r.group_id)});
  } catch (const PgConnectError& e) {
    rethrow_unreachable(e);
  } catch (const PgError& e) {
    throw Error("the monitor at {} refused to register this node: {}", endpoint_, e.what());
  }
  RegisteredNode out;
  out.id = res.int64(0, "node_id");
  out.name = res.str(0, "name");
  out.group_id = static_cast<int>(res.int64(0, "group_id"));
  auto goal = parse_node_state(res.str(0, "goal_state"));
  if (!goal) throw Error("the monitor at {} returned an unknown goal state \"{}\"", endpoint_, res.str(0, "goal_state"));
  out.goal = *goal;
  return out;
}

Assignment MonitorClient::node_active(NodeId id, const NodeReport& rep) {
  auto& c = connection();
  PgResult res;
  try {
    if (listening_ != id) {
      c.listen("pgfailover_node_" + std::to_string(id));
      listening_ = id;
    }
    std::optional<std::string> lsn;
    if (rep.lsn) lsn = format_lsn(*rep.lsn);
    std::optional<std::int64_t> timeline;
    if (rep.timeline) timeline = static_cast<std::int64_t>(*rep.timeline);
    res = c.exec(
        "SELECT goal_state, goal_version, upstream_id, upstream_name, upstream_host, upstream_port, sync_num, "
        "sync_standbys, target_lsn::text AS target_lsn, peers::text AS peers, dbname, settings::text AS settings "
        "FROM pgfailover.node_active($1::bigint, $2, $3::bool, $4::int, $5::pg_lsn, $6::bigint, $7::bool, $8::int, "
        "$9::bigint[], $10::bigint[], $11::jsonb, $12::bigint, $13::bigint)",
        {param(id), param(name(rep.state)), param(rep.pg_running), param(timeline), param(lsn), param(rep.upstream),
         param(rep.streaming), param(rep.sync.num_sync), param(rep.sync.standbys), param(rep.peers_ready),
         param(rep.replication_json), param(rep.system_identifier),
         param(static_cast<std::int64_t>(rep.reached_goal_version))});
  } catch (const PgConnectError& e) {
    rethrow_unreachable(e);
  } catch (const PgError& e) {
    throw Error("the monitor at {} refused the report of node {}: {}", endpoint_, id, e.what());
  }
  if (res.rows() != 1) throw Error("the monitor at {} returned {} rows for node {}", endpoint_, res.rows(), id);
  Assignment a;
  auto goal_text = res.opt_str(0, "goal_state").value_or("");
  auto goal = parse_node_state(goal_text);
  if (!goal) throw Error("the monitor at {} assigned an unknown goal state \"{}\"", endpoint_, goal_text);
  a.goal.state = *goal;
  a.goal.version = static_cast<std::uint64_t>(res.opt_int64(0, "goal_version").value_or(0));
  if (auto up = res.opt_int64(0, "upstream_id")) {
    Peer p;
    p.id = *up;
    p.name = res.opt_str(0, "upstream_name").value_or("");
    p.host = res.opt_str(0, "upstream_host").value_or("");
    p.port = static_cast<int>(res.opt_int64(0, "upstream_port").value_or(0));
    if (!p.host.empty() && p.port > 0) {
      if (!valid_host_name(p.host) || p.port > 65535) {
        throw Error("the monitor at {} assigned an upstream with an invalid host or port: {}:{}", endpoint_, p.host,
                    p.port);
      }
      a.goal.upstream = p;
    }
  }
  a.goal.sync = SyncConfig::any(static_cast<int>(res.opt_int64(0, "sync_num").value_or(0)),
                                res.int64_array(0, "sync_standbys"));
  if (auto t = res.opt_str(0, "target_lsn")) {
    a.goal.target_lsn = parse_lsn(*t);
  }
  a.goal.peers = parse_peers_json(res.opt_str(0, "peers").value_or("[]"));
  a.dbname = res.opt_str(0, "dbname").value_or("postgres");
  apply_settings_json(res.opt_str(0, "settings").value_or("{}"), a);
  return a;
}

bool MonitorClient::take_goal_change() {
  if (!conn_.is_open()) return false;
  try {
    return !conn_.take_notifications().empty();
  } catch (const std::exception&) {
    conn_.close();
    listening_.reset();
    return false;
  }
}

bool MonitorClient::wait_for_goal_change(std::chrono::milliseconds timeout) {
  if (!conn_.is_open() || !listening_) return false;
  try {
    return !conn_.wait_for_notifications(timeout).empty();
  } catch (const std::exception& e) {
    log_.warn("lost the connection to the monitor at {}: {}", endpoint_, monitor_connect_reason(e.what()));
    conn_.close();
    listening_.reset();
    return false;
  }
}

std::vector<Peer> parse_peers_json(const std::string& json) {
  std::vector<Peer> out;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw Error("the monitor returned peers that are not a JSON array: {}", json);
  for (const auto& e : j) {
    Peer p;
    try {
      if (!e.is_object()) throw Error("not an object");
      p.id = e.value("id", NodeId{0});
      p.name = e.value("name", std::string());
      p.host = e.value("host", std::string());
      p.port = e.value("port", 0);
    } catch (const std::exception&) {
      throw Error("the monitor returned a malformed peer: {}", e.dump());
    }
    if (p.id <= 0 || p.host.empty() || p.port <= 0) throw Error("the monitor returned an incomplete peer: {}", e.dump());
    // Hosts go into pg_hba.conf and connection strings: take only what the
    // monitor's register_node accepts, whatever the monitor says.
    if (!valid_host_name(p.host) || p.port > 65535) {
      throw Error("the monitor returned a peer with an invalid host or port: {}", e.dump());
    }
    out.push_back(std::move(p));
  }
  return out;
}

void apply_settings_json(const std::string& json, Assignment& a) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  auto number = [&](const char* key, std::int64_t& into) {
    if (!j.contains(key)) return;
    const auto& v = j[key];
    if (v.is_number_integer()) {
      into = v.get<std::int64_t>();
    } else if (v.is_string()) {
      try {
        into = std::stoll(v.get<std::string>());
      } catch (...) {
      }
    }
  };
  number("network_partition_timeout_ms", a.network_partition_timeout_ms);
  number("keeper_poll_ms", a.keeper_poll_ms);
}

}  // namespace pgf
