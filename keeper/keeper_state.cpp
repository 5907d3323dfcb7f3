#include "keeper/keeper_state.h"

#include <sqlite3.h>

#include <array>
#include <limits>

#include "common/clock.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/names.h"

namespace pgf {

namespace {

// "PGKP": marks the file as ours, so a foreign SQLite database is told apart
// from a corrupt one.
constexpr int kApplicationId = 0x50474b50;
constexpr int kSchemaVersion = 2;  // 2: current_goal_version

constexpr std::array<std::string_view, 6> kOriginNames{"unknown",    "initdb",         "adopted", "basebackup_started",
                                                       "basebackup", "initdb_started"};

std::optional<DataOrigin> parse_origin(std::string_view s) {
  for (size_t i = 0; i < kOriginNames.size(); ++i) {
    if (kOriginNames[i] == s) return static_cast<DataOrigin>(i);
  }
  return std::nullopt;
}

// One prepared statement; finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, const fs::path& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK) {
      fail("prepare");
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind(int i, const std::string& v) { check(sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT)); }
  void bind(int i, std::string_view v) { bind(i, std::string(v)); }
  void bind_null(int i) { check(sqlite3_bind_null(stmt_, i)); }
  template <typename T>
  void bind(int i, const std::optional<T>& v) {
    if (v) {
      bind(i, *v);
    } else {
      bind_null(i);
    }
  }
  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
  }
  [[noreturn]] void fail(const char* what) {
    throw Error("keeper state {}: {} failed: {}", file_.string(), what, sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  const fs::path& file_;
};

void exec(sqlite3* db, const char* sql, const fs::path& file) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw Error("keeper state {}: {}", file.string(), msg);
  }
}

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope.
class WriteTransaction {
 public:
  WriteTransaction(sqlite3* db, const fs::path& file) : db_(db), file_(file) { exec(db_, "BEGIN IMMEDIATE", file_); }
  ~WriteTransaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT", file_);
    done_ = true;
  }

 private:
  sqlite3* db_;
  const fs::path& file_;
  bool done_ = false;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE keeper (
  id                            INTEGER PRIMARY KEY CHECK (id = 1),
  node_id                       INTEGER NOT NULL CHECK (node_id > 0),
  formation                     TEXT NOT NULL,
  group_id                      INTEGER NOT NULL,
  name                          TEXT NOT NULL,
  current_state                 TEXT NOT NULL,
  current_goal_version          INTEGER NOT NULL DEFAULT 0,
  state_changed_at_ms           INTEGER NOT NULL,
  upstream_id                   INTEGER,
  upstream_conninfo             TEXT NOT NULL DEFAULT '',
  last_goal                     TEXT,
  last_goal_at_ms               INTEGER NOT NULL DEFAULT 0,
  transition_from               TEXT,
  transition_to                 TEXT,
  transition_started_at_ms      INTEGER,
  last_monitor_contact_ms       INTEGER NOT NULL DEFAULT 0,
  last_standby_seen_ms          INTEGER NOT NULL DEFAULT 0,
  network_partition_timeout_ms  INTEGER NOT NULL DEFAULT 10000,
  keeper_poll_ms                INTEGER NOT NULL DEFAULT 1000,
  data_origin                   TEXT NOT NULL DEFAULT 'unknown',
  created_at_ms                 INTEGER NOT NULL,
  updated_at_ms                 INTEGER NOT NULL
);
)sql";

constexpr const char* kColumns =
    "node_id, formation, group_id, name, current_state, state_changed_at_ms, upstream_id, upstream_conninfo, "
    "last_goal, last_goal_at_ms, transition_from, transition_to, transition_started_at_ms, "
    "last_monitor_contact_ms, last_standby_seen_ms, network_partition_timeout_ms, keeper_poll_ms, data_origin, "
    "created_at_ms, updated_at_ms, current_goal_version";

// What the rest of the keeper takes for granted about a record read from
// disk (a file anyone with the keeper's rights could have edited): names as
// create accepts them, ids and durations that make sense, a connection
// string libpq can parse. The reason, or nullopt.
std::optional<std::string> invalid_field(const KeeperRecord& r) {
  if (!valid_object_name(r.formation)) return fmt::format("formation \"{}\"", r.formation);
  if (!valid_object_name(r.name)) return fmt::format("node name \"{}\"", r.name);
  if (r.upstream_id && *r.upstream_id <= 0) return fmt::format("upstream node id {}", *r.upstream_id);
  if (!r.upstream_conninfo.empty()) {
    try {
      ConnInfo::parse(r.upstream_conninfo, "upstream connection string");
    } catch (const Error&) {
      return std::string("an upstream connection string libpq cannot parse");
    }
  }
  if (r.network_partition_timeout_ms <= 0) {
    return fmt::format("network_partition_timeout_ms {}", r.network_partition_timeout_ms);
  }
  if (r.keeper_poll_ms <= 0) return fmt::format("keeper_poll_ms {}", r.keeper_poll_ms);
  for (auto t : {r.state_changed_at_ms, r.last_goal_at_ms, r.last_monitor_contact_ms, r.last_standby_seen_ms,
                 r.created_at_ms, r.updated_at_ms}) {
    if (t < 0) return fmt::format("a negative time {}", t);
  }
  if (r.in_progress && r.in_progress->started_at_ms < 0) {
    return fmt::format("a negative time {}", r.in_progress->started_at_ms);
  }
  return std::nullopt;
}

}  // namespace

std::string_view name(DataOrigin o) { return kOriginNames[static_cast<size_t>(o)]; }

void KeeperState::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

KeeperState::KeeperState(fs::path file, sqlite3* db) : file_(std::move(file)), db_(db) {}
KeeperState::KeeperState(KeeperState&&) noexcept = default;
KeeperState& KeeperState::operator=(KeeperState&&) noexcept = default;
KeeperState::~KeeperState() = default;

bool KeeperState::exists(const fs::path& file) {
  std::error_code ec;
  return fs::exists(file, ec);
}

KeeperState KeeperState::create(const fs::path& file, const KeeperRecord& identity) {
  if (exists(file)) throw Error("keeper state {} already exists", file.string());
  if (identity.node_id <= 0) throw Error("cannot create keeper state {} without a node id", file.string());
  // Build it under a temporary name and rename it into place: a crash leaves
  // either no keeper.db or a complete one.
  fs::path tmp = file;
  tmp += ".creating";
  std::error_code ec;
  fs::remove(tmp, ec);
  {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(tmp.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    KeeperState s(tmp, raw);
    if (rc != SQLITE_OK) throw Error("cannot create keeper state {}: {}", tmp.string(), raw ? sqlite3_errmsg(raw) : "out of memory");
    exec(raw, "PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;", tmp);
    WriteTransaction tx(raw, tmp);
    exec(raw, kSchema, tmp);
    exec(raw, fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {};", kApplicationId, kSchemaVersion).c_str(), tmp);
    KeeperRecord r = identity;
    auto now = wall_ms();
    if (r.created_at_ms == 0) r.created_at_ms = now;
    if (r.state_changed_at_ms == 0) r.state_changed_at_ms = now;
    if (r.last_monitor_contact_ms == 0) r.last_monitor_contact_ms = now;
    r.updated_at_ms = now;
    Statement ins(raw,
                  "INSERT INTO keeper (id, node_id, formation, group_id, name, current_state, state_changed_at_ms, "
                  "created_at_ms, updated_at_ms) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                  tmp);
    ins.bind(1, r.node_id);
    ins.bind(2, r.formation);
    ins.bind(3, static_cast<std::int64_t>(r.group_id));
    ins.bind(4, r.name);
    ins.bind(5, name(r.current));
    ins.bind(6, r.state_changed_at_ms);
    ins.bind(7, r.created_at_ms);
    ins.bind(8, r.updated_at_ms);
    ins.step();
    tx.commit();
    s.record_ = r;
    s.save(r);
  }
  // Only the keeper's user reads its state (SQLite gives its journal the same mode).
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
  fs::rename(tmp, file, ec);
  if (ec) throw Error("cannot create keeper state {}: {}", file.string(), ec.message());
  return open(file);
}

KeeperState KeeperState::open(const fs::path& file) {
  if (!exists(file)) {
    throw Error("keeper state {} does not exist: create the node first (pgfailover create postgres)", file.string());
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  KeeperState s(file, raw);
  if (rc != SQLITE_OK) {
    throw Error("cannot open keeper state {}: {}", file.string(), raw ? sqlite3_errmsg(raw) : "out of memory");
  }
  sqlite3_busy_timeout(raw, 5000);
  s.load();
  return s;
}

void KeeperState::load() {
  auto corrupt = [&](const std::string& why) {
    return Error("keeper state {} is corrupt or not a pgfailover keeper database ({}); move it aside and create the node again",
                 file_.string(), why);
  };
  sqlite3* db = db_.get();
  std::int64_t app_id = 0, version = 0;
  std::string check;
  try {
    exec(db, "PRAGMA synchronous = FULL;", file_);
    {
      Statement st(db, "PRAGMA application_id", file_);
      if (st.step()) app_id = st.int64(0);
    }
    {
      Statement st(db, "PRAGMA user_version", file_);
      if (st.step()) version = st.int64(0);
    }
    {
      Statement st(db, "PRAGMA quick_check", file_);
      if (st.step()) check = st.text(0);
    }
  } catch (const Error&) {
    throw corrupt(sqlite3_errmsg(db));
  }
  if (check != "ok") throw corrupt("integrity check: " + check);
  if (app_id != kApplicationId) throw corrupt(fmt::format("application id {} is not pgfailover's", app_id));
  if (version > kSchemaVersion) {
    throw Error("keeper state {} was written by a newer pgfailover (schema {}, this one knows {})", file_.string(),
                version, kSchemaVersion);
  }
  if (version < 2) {
    // Written before goal versions existed: add the column, version 0 (the
    // monitor then judges by state alone, as it did then).
    try {
      WriteTransaction tx(db, file_);
      exec(db, "ALTER TABLE keeper ADD COLUMN current_goal_version INTEGER NOT NULL DEFAULT 0", file_);
      exec(db, fmt::format("PRAGMA user_version = {};", kSchemaVersion).c_str(), file_);
      tx.commit();
    } catch (const Error&) {
      throw corrupt(sqlite3_errmsg(db));
    }
  }
  KeeperRecord r;
  try {
    Statement st(db, fmt::format("SELECT {} FROM keeper WHERE id = 1", kColumns), file_);
    if (!st.step()) throw corrupt("no keeper row");
    r.node_id = st.int64(0);
    r.formation = st.text(1);
    if (st.int64(2) < 0 || st.int64(2) > std::numeric_limits<int>::max()) {
      throw corrupt(fmt::format("group {}", st.int64(2)));
    }
    r.group_id = static_cast<int>(st.int64(2));
    r.name = st.text(3);
    auto cur = parse_node_state(st.text(4));
    if (!cur) throw corrupt(fmt::format("unknown current state \"{}\"", st.text(4)));
    r.current = *cur;
    r.state_changed_at_ms = st.int64(5);
    if (!st.is_null(6)) r.upstream_id = st.int64(6);
    r.upstream_conninfo = st.text(7);
    if (!st.is_null(8)) {
      auto g = parse_node_state(st.text(8));
      if (!g) throw corrupt(fmt::format("unknown goal state \"{}\"", st.text(8)));
      r.last_goal = *g;
    }
    r.last_goal_at_ms = st.int64(9);
    if (!st.is_null(10)) {
      auto from = parse_node_state(st.text(10));
      auto to = parse_node_state(st.text(11));
      if (!from || !to) throw corrupt("unknown state in the transition in progress");
      r.in_progress = TransitionInProgress{*from, *to, st.int64(12)};
    }
    r.last_monitor_contact_ms = st.int64(13);
    r.last_standby_seen_ms = st.int64(14);
    r.network_partition_timeout_ms = st.int64(15);
    r.keeper_poll_ms = st.int64(16);
    auto origin = parse_origin(st.text(17));
    if (!origin) throw corrupt(fmt::format("unknown data origin \"{}\"", st.text(17)));
    r.data_origin = *origin;
    r.created_at_ms = st.int64(18);
    r.updated_at_ms = st.int64(19);
    if (st.int64(20) < 0) throw corrupt(fmt::format("goal version {}", st.int64(20)));
    r.current_goal_version = static_cast<std::uint64_t>(st.int64(20));
  } catch (const Error& e) {
    std::string what = e.what();
    if (what.find("is corrupt or not") != std::string::npos) throw;
    throw corrupt(sqlite3_errmsg(db));
  }
  if (r.node_id <= 0) throw corrupt(fmt::format("node id {}", r.node_id));
  if (auto why = invalid_field(r)) throw corrupt(*why);
  record_ = r;
}

void KeeperState::save(const KeeperRecord& in) {
  KeeperRecord r = in;
  r.updated_at_ms = wall_ms();
  sqlite3* db = db_.get();
  WriteTransaction tx(db, file_);
  Statement st(db,
               "UPDATE keeper SET node_id = ?1, formation = ?2, group_id = ?3, name = ?4, current_state = ?5, "
               "state_changed_at_ms = ?6, upstream_id = ?7, upstream_conninfo = ?8, last_goal = ?9, "
               "last_goal_at_ms = ?10, transition_from = ?11, transition_to = ?12, transition_started_at_ms = ?13, "
               "last_monitor_contact_ms = ?14, last_standby_seen_ms = ?15, network_partition_timeout_ms = ?16, "
               "keeper_poll_ms = ?17, data_origin = ?18, created_at_ms = ?19, updated_at_ms = ?20, "
               "current_goal_version = ?21 WHERE id = 1",
               file_);
  st.bind(1, r.node_id);
  st.bind(2, r.formation);
  st.bind(3, static_cast<std::int64_t>(r.group_id));
  st.bind(4, r.name);
  st.bind(5, name(r.current));
  st.bind(6, r.state_changed_at_ms);
  st.bind(7, r.upstream_id);
  st.bind(8, r.upstream_conninfo);
  if (r.last_goal) {
    st.bind(9, name(*r.last_goal));
  } else {
    st.bind_null(9);
  }
  st.bind(10, r.last_goal_at_ms);
  if (r.in_progress) {
    st.bind(11, name(r.in_progress->from));
    st.bind(12, name(r.in_progress->to));
    st.bind(13, r.in_progress->started_at_ms);
  } else {
    st.bind_null(11);
    st.bind_null(12);
    st.bind_null(13);
  }
  st.bind(14, r.last_monitor_contact_ms);
  st.bind(15, r.last_standby_seen_ms);
  st.bind(16, r.network_partition_timeout_ms);
  st.bind(17, r.keeper_poll_ms);
  st.bind(18, name(r.data_origin));
  st.bind(19, r.created_at_ms);
  st.bind(20, r.updated_at_ms);
  st.bind(21, static_cast<std::int64_t>(r.current_goal_version));
  st.step();
  if (sqlite3_changes(db) != 1) throw Error("keeper state {}: the keeper row is missing", file_.string());
  tx.commit();
  record_ = r;
}

void KeeperState::begin_transition(NodeState from, NodeState to, std::int64_t now_ms) {
  KeeperRecord r = record_;
  r.in_progress = TransitionInProgress{from, to, now_ms};
  r.last_goal = to;
  save(r);
}

void KeeperState::finish_transition(NodeState reached, std::uint64_t goal_version, std::int64_t now_ms) {
  KeeperRecord r = record_;
  if (r.current != reached) r.state_changed_at_ms = now_ms;
  r.current = reached;
  r.current_goal_version = goal_version;
  r.in_progress.reset();
  save(r);
}

void KeeperState::set_goal_version(std::uint64_t v) {
  if (record_.current_goal_version == v) return;
  KeeperRecord r = record_;
  r.current_goal_version = v;
  save(r);
}

void KeeperState::set_upstream(std::optional<NodeId> id, const std::string& conninfo) {
  if (record_.upstream_id == id && record_.upstream_conninfo == conninfo) return;
  KeeperRecord r = record_;
  r.upstream_id = id;
  r.upstream_conninfo = conninfo;
  save(r);
}

void KeeperState::set_data_origin(DataOrigin o) {
  if (record_.data_origin == o) return;
  KeeperRecord r = record_;
  r.data_origin = o;
  save(r);
}

}  // namespace pgf
