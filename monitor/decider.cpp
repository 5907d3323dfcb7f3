#include "monitor/decider.h"

#include <map>

#include "common/clock.h"
#include "common/error.h"
#include "common/pg_connection.h"

namespace pgf {

namespace {

// The decider lock: any constant nobody else uses on the monitor database
// ("pgfd" in ASCII). pg_locks shows it as classid 0, objid 0x70676664.
constexpr std::int64_t kDeciderLockKey = 0x70676664;

std::string describe_node(const NodeSnapshot& n) { return fmt::format("node {} ({}:{})", n.id, n.host, n.port); }

}  // namespace

Decider::Decider(std::string conninfo, std::string where, Logger log)
    : conninfo_(std::move(conninfo)), where_(std::move(where)), log_(std::move(log)) {}

Decider::~Decider() = default;

int Decider::socket() const { return active_ && session_ ? session_->socket() : -1; }

std::int64_t Decider::ms_since_last_query() const { return steady_ms() - last_query_at_; }

bool Decider::try_acquire() {
  if (active_) return true;
  try {
    if (!session_ || !session_->is_healthy()) {
      session_.reset();
      auto s = std::make_unique<PgConnection>(PgConnection::connect(conninfo_, "monitor database"));
      // A decision waits for no lock held by someone else for long (a stuck
      // operator session on a group row), and a session whose client went
      // silent is ended by the server so another process can take over.
      s->exec("SET client_min_messages = warning");
      s->exec("SET lock_timeout = '2s'");
      s->exec("SET statement_timeout = '10s'");
      s->exec("SET idle_session_timeout = '3s'");
      // A decider frozen mid-decision (SIGSTOP, swapped out) must not hold
      // the lock and a group row for ever either.
      s->exec("SET idle_in_transaction_session_timeout = '3s'");
      session_ = std::move(s);
      if (!last_connect_error_.empty()) log_.info("reached the monitor database at {} again", where_);
      last_connect_error_.clear();
    }
    auto r = session_->exec("SELECT pg_try_advisory_lock($1) AS got,"
                            " (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms",
                            {param(kDeciderLockKey)});
    last_query_at_ = steady_ms();
    if (!r.boolean(0, "got")) {
      auto holder = session_->query_value(
          "SELECT string_agg(pid::text, ',') FROM pg_locks WHERE locktype = 'advisory' AND granted"
          " AND classid = 0 AND objid = $1 AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
          " WHERE datname = current_database())",
          {param(kDeciderLockKey)});
      std::string msg = fmt::format("another monitor process decides (its session is backend pid {}); standing by",
                                    holder.value_or("unknown"));
      if (msg != last_connect_error_) log_.info("{}", msg);
      last_connect_error_ = msg;
      return false;
    }
    // LISTEN before the first decision: a report committed after it is
    // either seen by that decision or notified to us.
    session_->listen("pgfailover_decide");
    started_at_ = r.int64(0, "now_ms");
    active_ = true;
    all_requested_ = true;
    last_connect_error_.clear();
    log_.info("this process now decides for the monitor database at {} (session backend pid {})", where_,
              session_->backend_pid());
    return true;
  } catch (const Error& e) {
    // Connection errors already say "cannot connect to monitor database at host:port: ...".
    std::string msg = e.what();
    if (session_ && !session_->is_healthy()) session_.reset();
    if (msg != last_connect_error_) log_.warn("{}; retrying in 1 s", msg);
    last_connect_error_ = msg;
    return false;
  }
}

void Decider::resign(std::string_view why, bool failure) {
  if (active_ && failure) log_.error("no longer deciding: {}", why);
  if (active_ && !failure) log_.info("no longer deciding: {}", why);
  active_ = false;
  requested_.clear();
  all_requested_ = false;
  // Closing the session releases the lock; a half-dead one is ended by the
  // server (idle_session_timeout, TCP timeouts) and releases it then.
  session_.reset();
}

template <typename F>
bool Decider::on_session(const char* what, F&& f) {
  if (!active_ || !session_) return false;
  try {
    f();
    last_query_at_ = steady_ms();
    return true;
  } catch (const PgConnectError& e) {
    resign(fmt::format("lost the session to the monitor database while {}: {}", what, e.what()));
  } catch (const Error& e) {
    if (!session_->is_healthy()) {
      resign(fmt::format("lost the session to the monitor database while {}: {}", what, e.what()));
    } else {
      log_.error("{} failed: {}", what, e.what());
    }
  }
  return false;
}

void Decider::collect_requests() {
  on_session("reading notifications", [&] {
    for (const auto& n : session_->take_notifications()) {
      if (n.channel != "pgfailover_decide") continue;
      if (auto key = parse_group_key(n.payload)) {
        requested_.insert(*key);
      } else {
        all_requested_ = true;  // unreadable: better decide everything than miss one
      }
    }
  });
}

void Decider::decide_requested() {
  if (!active_) return;
  if (all_requested_) {
    bool ok = on_session("listing groups", [&] {
      for (auto& g : GroupStore(*session_).groups()) requested_.insert(std::move(g));
    });
    if (!ok) return;
    all_requested_ = false;
  }
  auto todo = std::move(requested_);
  requested_.clear();
  for (const auto& key : todo) {
    // A decision can enable the next one (a new goal makes another rule hold),
    // so decide again right away, a bounded number of times; the tick does the rest.
    for (int round = 0; round < 3 && active_; ++round) {
      bool changed = false;
      bool ok = on_session("deciding", [&] { changed = decide_group(key); });
      if (!ok || !changed) break;
    }
    if (!active_) return;
  }
  // Notifications that arrived while we were busy are already buffered.
  collect_requests();
}

bool Decider::decide_group(const GroupKey& key) {
  GroupStore store(*session_);
  std::vector<RemovedNode> removed;
  std::vector<std::string> lines;
  bool changed = false;
  try {
    PgTransaction tx(*session_);
    auto loaded = store.lock_and_load(key, started_at_, removed);
    if (!loaded) return false;
    Decision d;
    try {
      d = decide(loaded->snapshot, loaded->settings, loaded->now);
    } catch (const std::exception& e) {
      // decide() refuses a decision that would break I1; nothing is written.
      report_group_error(key, fmt::format("group {}: refusing to decide: {}", to_string(key), e.what()));
      return false;  // rolls back
    }
    changed = !removed.empty() || d.changed(loaded->snapshot);
    if (changed) store.write(*loaded, d, removed);
    std::map<NodeId, const NodeSnapshot*> by_id;
    for (const auto& n : loaded->snapshot.nodes) by_id[n.id] = &n;
    for (const auto& r : removed) {
      lines.push_back(fmt::format("node {} ({}:{}) dropped -> removed: {} stopped and left the group", r.id, r.host,
                                  r.port, r.name));
    }
    for (const auto& e : d.events) {
      auto it = by_id.find(e.node);
      std::string who = it != by_id.end() ? describe_node(*it->second) : fmt::format("node {}", e.node);
      lines.push_back(fmt::format("{} {} -> {}: {}", who, name(e.from), name(e.to), e.reason));
    }
    tx.commit();
  } catch (const PgConnectError&) {
    throw;
  } catch (const PgError& e) {
    if (!session_->is_healthy()) throw;
    // A lock timeout or a conflict: the next tick tries again.
    report_group_error(key, fmt::format("group {}: decision not written: {}; retrying on the next tick",
                                        to_string(key), e.what()));
    return false;
  }
  if (group_errors_.erase(key) > 0) log_.info("group {}: deciding again", to_string(key));
  // Only what was committed is logged.
  for (const auto& l : lines) log_.info("{}", l);
  return changed;
}

void Decider::report_group_error(const GroupKey& key, const std::string& message) {
  // The tick retries every half second: say it once, then once a minute while
  // it lasts, so the log stays readable.
  auto now = steady_ms();
  auto it = group_errors_.find(key);
  if (it != group_errors_.end() && it->second.first == message && now - it->second.second < 60000) return;
  group_errors_[key] = {message, now};
  log_.error("{}", message);
}

std::optional<MonitorSettings> Decider::settings() {
  std::optional<MonitorSettings> out;
  on_session("reading settings", [&] { out = GroupStore(*session_).settings(); });
  return out;
}

std::optional<std::vector<HealthTarget>> Decider::health_targets() {
  std::optional<std::vector<HealthTarget>> out;
  on_session("listing nodes", [&] { out = GroupStore(*session_).health_targets(); });
  return out;
}

void Decider::record_health(const std::vector<HealthObservation>& checks, int failures_for_bad) {
  if (checks.empty()) return;
  std::vector<HealthChange> changes;
  bool ok = on_session("recording health checks",
                       [&] { changes = GroupStore(*session_).record_health(checks, failures_for_bad); });
  if (!ok) return;
  for (const auto& c : changes) {
    std::string detail;
    for (const auto& o : checks) {
      if (o.id == c.node.id) detail = o.detail;
    }
    std::string count = c.to == Health::Bad ? fmt::format(" after {} failed checks in a row", c.failures) : "";
    auto line = fmt::format("node {} ({}:{}) health {} -> {}{}: {}", c.node.id, c.node.host, c.node.port,
                            name(c.from), name(c.to), count, detail);
    if (c.to == Health::Bad) {
      log_.warn("{}", line);
    } else {
      log_.info("{}", line);
    }
  }
}

}  // namespace pgf
