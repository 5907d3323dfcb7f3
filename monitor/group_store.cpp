#include "monitor/group_store.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/pg_connection.h"

namespace pgf {

namespace {

using json = nlohmann::json;

// Times travel as ms since the epoch on the database's clock, so decide()
// compares them with `now` from the same clock whatever the hosts' clocks say.
#define PGF_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

std::optional<NodeState> state_of(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto s = parse_node_state(*text);
  if (!s) throw Error("the monitor database holds an unknown node state \"{}\"", *text);
  return s;
}

Lsn lsn_of(const PgResult& r, int row, std::string_view col) {
  auto t = r.text(row, col);
  Lsn v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc()) throw Error("column \"{}\" is not an LSN offset: {}", col, t);
  return v;
}

std::string lsn_text(Lsn lsn) { return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xffffffffu); }

Health health_of(std::string_view text) {
  if (text == "good") return Health::Good;
  if (text == "bad") return Health::Bad;
  return Health::Unknown;
}

std::optional<NodeId> opt_id(const PgResult& r, int row, std::string_view col) { return r.opt_int64(row, col); }

}  // namespace

std::string to_string(const GroupKey& g) { return fmt::format("{}/{}", g.formation, g.group); }

std::optional<GroupKey> parse_group_key(std::string_view payload) {
  auto slash = payload.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  auto num = payload.substr(slash + 1);
  int group = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), group);
  if (ec != std::errc() || end != num.data() + num.size() || group < 0) return std::nullopt;
  return GroupKey{std::string(payload.substr(0, slash)), group};
}

std::int64_t MonitorSettings::get(std::string_view name, std::int64_t fallback) const {
  auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

MonitorSettings MonitorSettings::parse(std::string_view list) {
  MonitorSettings s;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    auto value = item.substr(eq + 1);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    // A value that is not an integer cannot come through set_monitor_setting;
    // ignoring it keeps the default rather than stopping every decision.
    if (ec == std::errc() && end == value.data() + value.size()) s.values[std::string(item.substr(0, eq))] = v;
  }
  return s;
}

DecisionSettings decision_settings(const MonitorSettings& s, int number_sync_standbys) {
  DecisionSettings d;
  d.number_sync_standbys = number_sync_standbys;
  d.node_lost_timeout = s.get("node_lost_timeout_ms", d.node_lost_timeout);
  d.postgres_restart_timeout = s.get("postgres_restart_timeout_ms", d.postgres_restart_timeout);
  d.standby_stream_timeout = s.get("standby_stream_timeout_ms", d.standby_stream_timeout);
  d.network_partition_timeout = s.get("network_partition_timeout_ms", d.network_partition_timeout);
  d.startup_grace = s.get("startup_grace_ms", d.startup_grace);
  d.catchup_lag_bytes = static_cast<Lsn>(s.get("catchup_lag_bytes", static_cast<std::int64_t>(d.catchup_lag_bytes)));
  return d;
}

TimeMs GroupStore::clock_ms() {
  return std::stoll(db_.query_value("SELECT " PGF_MS("clock_timestamp()")).value_or("0"));
}

std::vector<GroupKey> GroupStore::groups() {
  auto r = db_.exec("SELECT formation, group_id FROM pgfailover.node_group ORDER BY formation, group_id");
  std::vector<GroupKey> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.str(i, "formation"), static_cast<int>(r.int64(i, "group_id"))});
  return out;
}

MonitorSettings GroupStore::settings() {
  auto v = db_.query_value("SELECT string_agg(name || '=' || value, ',') FROM pgfailover.monitor_setting");
  return MonitorSettings::parse(v.value_or(""));
}

std::optional<LoadedGroup> GroupStore::lock_and_load(const GroupKey& key, TimeMs monitor_started_at,
                                                     std::vector<RemovedNode>& removed) {
  SqlParams k{param(key.formation), param(key.group)};
  auto g = db_.exec(
      "SELECT g.switchover_target, " PGF_MS("g.switchover_requested_at") " AS switchover_requested_at,"
      " g.last_primary, f.number_sync_standbys,"
      " (SELECT string_agg(s.name || '=' || s.value, ',') FROM pgfailover.monitor_setting s) AS settings"
      " FROM pgfailover.node_group g JOIN pgfailover.formation f ON f.name = g.formation"
      " WHERE g.formation = $1 AND g.group_id = $2 FOR UPDATE OF g",
      k);
  if (g.rows() == 0) return std::nullopt;

  // The clock is read after the lock is granted: a decision must not use a
  // `now` older than the facts committed while it waited.
  auto n = db_.exec(
      "SELECT c.now_ms, n.id, n.name, n.host, n.port, n.candidate_priority, n.replication_quorum,"
      " n.goal_state, n.goal_version, n.reported_goal_version,"
      " n.assigned_sync_num, n.assigned_sync_standbys, n.assigned_upstream,"
      " (n.target_lsn - '0/0')::text AS target_lsn, n.may_write,"
      " n.reported_state, " PGF_MS("n.last_report_at") " AS last_report_at, n.pg_running,"
      " " PGF_MS("n.pg_down_since") " AS pg_down_since, (n.lsn - '0/0')::text AS lsn, n.timeline,"
      " n.reported_upstream, n.streaming, " PGF_MS("n.last_streaming_at") " AS last_streaming_at,"
      " n.reported_sync_num, n.reported_sync_standbys, n.peers_ready,"
      " n.health, " PGF_MS("n.health_since") " AS health_since,"
      " n.maintenance_requested, n.drop_requested"
      " FROM (SELECT " PGF_MS("clock_timestamp()") " AS now_ms) c"
      " LEFT JOIN pgfailover.node n ON n.formation = $1 AND n.group_id = $2"
      " ORDER BY n.id",
      k);

  LoadedGroup out;
  out.now = n.int64(0, "now_ms");
  auto settings = MonitorSettings::parse(g.opt_str(0, "settings").value_or(""));
  out.settings = decision_settings(settings, static_cast<int>(g.int64(0, "number_sync_standbys")));
  auto& snap = out.snapshot;
  snap.formation = key.formation;
  snap.group = key.group;
  snap.last_primary = opt_id(g, 0, "last_primary");
  snap.monitor_started_at = monitor_started_at;
  if (auto at = g.opt_int64(0, "switchover_requested_at")) {
    snap.switchover = SwitchoverRequest{opt_id(g, 0, "switchover_target"), *at};
  }

  std::vector<NodeId> finished;
  for (int i = 0; i < n.rows(); ++i) {
    if (n.is_null(i, "id")) continue;  // a group without nodes
    NodeSnapshot s;
    s.id = n.int64(i, "id");
    s.name = n.str(i, "name");
    s.host = n.str(i, "host");
    s.port = static_cast<int>(n.int64(i, "port"));
    s.candidate_priority = static_cast<int>(n.int64(i, "candidate_priority"));
    s.replication_quorum = n.boolean(i, "replication_quorum");
    s.goal = *state_of(n.str(i, "goal_state"));
    s.goal_version = static_cast<std::uint64_t>(n.int64(i, "goal_version"));
    s.reported_goal_version = static_cast<std::uint64_t>(n.int64(i, "reported_goal_version"));
    s.assigned_sync = SyncConfig::any(static_cast<int>(n.int64(i, "assigned_sync_num")),
                                      n.int64_array(i, "assigned_sync_standbys"));
    s.assigned_upstream = opt_id(n, i, "assigned_upstream");
    if (!n.is_null(i, "target_lsn")) s.assigned_target_lsn = lsn_of(n, i, "target_lsn");
    s.may_write = n.boolean(i, "may_write");
    s.reported = state_of(n.opt_str(i, "reported_state"));
    s.last_report_at = n.opt_int64(i, "last_report_at");
    s.pg_running = n.boolean(i, "pg_running");
    s.pg_down_since = n.opt_int64(i, "pg_down_since");
    s.lsn = lsn_of(n, i, "lsn");
    s.timeline = static_cast<std::uint32_t>(n.int64(i, "timeline"));
    s.reported_upstream = opt_id(n, i, "reported_upstream");
    s.streaming = n.boolean(i, "streaming");
    s.last_streaming_at = n.opt_int64(i, "last_streaming_at");
    s.reported_sync = SyncConfig::any(static_cast<int>(n.int64(i, "reported_sync_num")),
                                      n.int64_array(i, "reported_sync_standbys"));
    s.peers_ready = n.int64_array(i, "peers_ready");
    s.health = health_of(n.text(i, "health"));
    s.health_since = n.opt_int64(i, "health_since");
    s.maintenance_requested = n.boolean(i, "maintenance_requested");
    s.drop_requested = n.boolean(i, "drop_requested");

    if (s.goal == NodeState::Dropped && s.reported == NodeState::Dropped) {
      finished.push_back(s.id);
      removed.push_back({s.id, s.name, s.host, s.port});
      continue;
    }
    snap.nodes.push_back(std::move(s));
  }

  if (!finished.empty()) {
    // A promotion request for a node that is gone can never be honoured, and
    // its foreign key would refuse the delete.
    if (snap.switchover && snap.switchover->target &&
        std::find(finished.begin(), finished.end(), *snap.switchover->target) != finished.end()) {
      db_.exec(
          "UPDATE pgfailover.node_group SET switchover_target = NULL, switchover_requested_at = NULL"
          " WHERE formation = $1 AND group_id = $2",
          k);
      snap.switchover.reset();
    }
    db_.exec("DELETE FROM pgfailover.node WHERE id = ANY ($1::bigint[])", {param(finished)});
    // What ON DELETE SET NULL just did to the rows, so that the snapshot
    // matches them and the writer sees every change decide() makes.
    for (auto& s : snap.nodes) {
      if (s.assigned_upstream && std::find(finished.begin(), finished.end(), *s.assigned_upstream) != finished.end()) {
        s.assigned_upstream.reset();
      }
    }
  }
  return out;
}

std::vector<NodeId> GroupStore::write(const LoadedGroup& loaded, const Decision& d,
                                      const std::vector<RemovedNode>& removed) {
  const auto& snap = loaded.snapshot;
  SqlParams k{param(snap.formation), param(snap.group)};

  json assignments = json::array();
  std::vector<NodeId> changed;
  for (size_t i = 0; i < d.nodes.size(); ++i) {
    const auto& a = d.nodes[i];
    const auto& n = snap.nodes[i];
    if (a.goal == n.goal && a.goal_version == n.goal_version && a.sync == n.assigned_sync &&
        a.upstream == n.assigned_upstream && a.target_lsn == n.assigned_target_lsn && a.may_write == n.may_write) {
      continue;
    }
    changed.push_back(a.id);
    assignments.push_back({{"id", a.id},
                           {"goal", std::string(name(a.goal))},
                           {"goal_version", a.goal_version},
                           {"sync_num", a.sync.num_sync},
                           {"sync_standbys", a.sync.standbys},
                           {"upstream", a.upstream ? json(*a.upstream) : json(nullptr)},
                           {"target_lsn", a.target_lsn ? json(lsn_text(*a.target_lsn)) : json(nullptr)},
                           {"may_write", a.may_write}});
  }
  if (!changed.empty()) {
    // Keepers LISTEN on their own channel: the new goal reaches them at once
    // instead of on their next poll. Delivered at COMMIT, never before.
    db_.exec(
        "WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS a(id bigint, goal text, goal_version bigint,"
        "   sync_num integer,"
        "   sync_standbys bigint[], upstream bigint, target_lsn pg_lsn, may_write boolean)),"
        " u AS (UPDATE pgfailover.node n SET goal_state = a.goal, goal_version = a.goal_version,"
        "   assigned_sync_num = a.sync_num,"
        "   assigned_sync_standbys = a.sync_standbys, assigned_upstream = a.upstream, target_lsn = a.target_lsn,"
        "   may_write = a.may_write,"
        "   goal_changed_at = CASE WHEN n.goal_state = a.goal THEN n.goal_changed_at ELSE now() END"
        "   FROM a WHERE n.id = a.id RETURNING n.id, n.goal_state)"
        " SELECT count(pg_notify('pgfailover_node_' || u.id, u.goal_state)) FROM u",
        {param(assignments.dump())});
  }

  json events = json::array();
  auto node_name = [&](NodeId id) -> json {
    for (const auto& n : snap.nodes) {
      if (n.id == id) return n.name;
    }
    return nullptr;
  };
  for (const auto& r : removed) {
    events.push_back({{"node_id", r.id},
                      {"node_name", r.name},
                      {"from_state", "dropped"},
                      {"to_state", nullptr},
                      {"rule", "node-removed"},
                      {"reason", fmt::format("{} ({}:{}) stopped and left the group: removed", r.name, r.host,
                                             r.port)}});
  }
  for (const auto& e : d.events) {
    events.push_back({{"node_id", e.node},
                      {"node_name", node_name(e.node)},
                      {"from_state", std::string(name(e.from))},
                      {"to_state", std::string(name(e.to))},
                      {"rule", e.rule},
                      {"reason", e.reason}});
  }
  if (!events.empty()) {
    db_.exec(
        "WITH ins AS (INSERT INTO pgfailover.event (formation, group_id, node_id, node_name, from_state, to_state,"
        "   rule, reason)"
        "   SELECT $1, $2, e.node_id, e.node_name, e.from_state, e.to_state, e.rule, e.reason"
        "   FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (node_id bigint, node_name text, from_state text,"
        "     to_state text, rule text, reason text)) WITH ORDINALITY AS e(node_id, node_name, from_state,"
        "     to_state, rule, reason, ord)"
        "   ORDER BY e.ord RETURNING 1)"
        " SELECT count(*), pg_notify('pgfailover_events', $1) FROM ins",
        {k[0], k[1], param(events.dump())});
  }

  if (d.last_primary != snap.last_primary || d.switchover_settled) {
    db_.exec(
        "UPDATE pgfailover.node_group SET last_primary = $3,"
        " switchover_target = CASE WHEN $4 THEN NULL ELSE switchover_target END,"
        " switchover_requested_at = CASE WHEN $4 THEN NULL ELSE switchover_requested_at END"
        " WHERE formation = $1 AND group_id = $2",
        {k[0], k[1], param(d.last_primary), param(d.switchover_settled)});
  }
  return changed;
}

std::vector<HealthTarget> GroupStore::health_targets() {
  auto r = db_.exec("SELECT id, name, host, port FROM pgfailover.node ORDER BY id");
  std::vector<HealthTarget> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.int64(i, "id"), r.str(i, "name"), r.str(i, "host"), static_cast<int>(r.int64(i, "port"))});
  }
  return out;
}

std::vector<HealthChange> GroupStore::record_health(const std::vector<HealthObservation>& checks,
                                                    int failures_for_bad) {
  if (checks.empty()) return {};
  json rows = json::array();
  for (const auto& c : checks) rows.push_back({{"id", c.id}, {"up", c.up}});
  // Old and new values come from one statement (self-join on the row as it
  // was), so a change is reported exactly once.
  auto r = db_.exec(
      "WITH c AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, up boolean)),"
      " u AS (UPDATE pgfailover.node n SET"
      "   last_health_check_at = now(),"
      "   health_failures = CASE WHEN c.up THEN 0 ELSE o.health_failures + 1 END,"
      "   health = CASE WHEN c.up THEN 'good' WHEN o.health_failures + 1 >= $2 THEN 'bad' ELSE o.health END,"
      "   health_since = CASE WHEN (CASE WHEN c.up THEN 'good' WHEN o.health_failures + 1 >= $2 THEN 'bad'"
      "                                  ELSE o.health END) = o.health THEN o.health_since ELSE now() END"
      "   FROM c, pgfailover.node o WHERE n.id = c.id AND o.id = n.id"
      "   RETURNING n.id, n.name, n.host, n.port, n.formation, n.group_id, o.health AS old_health,"
      "     n.health AS new_health, n.health_failures),"
      " changed AS (SELECT * FROM u WHERE old_health <> new_health),"
      " woken AS (SELECT DISTINCT formation, group_id FROM changed)"
      " SELECT ch.*, (SELECT count(pg_notify('pgfailover_decide', w.formation || '/' || w.group_id)) FROM woken w)"
      "   AS notified FROM changed ch ORDER BY ch.id",
      {param(rows.dump()), param(std::max(failures_for_bad, 1))});
  std::vector<HealthChange> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({{r.int64(i, "id"), r.str(i, "name"), r.str(i, "host"), static_cast<int>(r.int64(i, "port"))},
                   health_of(r.text(i, "old_health")),
                   health_of(r.text(i, "new_health")),
                   static_cast<int>(r.int64(i, "health_failures"))});
  }
  return out;
}

}  // namespace pgf
