// The keeper's own state: a SQLite database <state dir>/keeper.db outside
// PGDATA (pg_basebackup and pg_rewind replace PGDATA), every change written in
// one transaction. The current state is the last state fully reached: it is
// advanced only after every action of the transition returned Done, so after
// kill -9 at any point the next `run` redoes the transition from the start
// (actions are idempotent) or follows whatever goal the monitor gives now.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/fs.h"
#include "common/node_state.h"
#include "common/sync_config.h"

struct sqlite3;

namespace pgf {

// Where the data in PGDATA came from; tells InitStandby whether a non-empty
// PGDATA is a (possibly partial) base backup of ours or somebody's data.
enum class DataOrigin { Unknown, Initdb, Adopted, BaseBackupStarted, BaseBackup, InitdbStarted };
std::string_view name(DataOrigin o);

struct TransitionInProgress {
  NodeState from = NodeState::Init;
  NodeState to = NodeState::Init;
  std::int64_t started_at_ms = 0;
  bool operator==(const TransitionInProgress&) const = default;
};

struct KeeperRecord {
  // Identity, fixed at registration.
  NodeId node_id = 0;
  std::string formation;
  int group_id = 0;
  std::string name;
  // The last state fully reached, and when, and the monitor's version of the
  // goal that got it there (reported back so stale reports cannot pass for new).
  NodeState current = NodeState::Init;
  std::uint64_t current_goal_version = 0;
  std::int64_t state_changed_at_ms = 0;
  // The upstream this node's primary_conninfo was last written for (standbys).
  std::optional<NodeId> upstream_id;
  std::string upstream_conninfo;
  // The last goal the monitor returned, and when.
  std::optional<NodeState> last_goal;
  std::int64_t last_goal_at_ms = 0;
  std::optional<TransitionInProgress> in_progress;
  // For self-fencing across restarts (wall clock, milliseconds).
  std::int64_t last_monitor_contact_ms = 0;
  std::int64_t last_standby_seen_ms = 0;
  std::int64_t network_partition_timeout_ms = 10000;
  std::int64_t keeper_poll_ms = 1000;
  DataOrigin data_origin = DataOrigin::Unknown;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  bool operator==(const KeeperRecord&) const = default;
};

class KeeperState {
 public:
  // A new database for a freshly registered node; refuses to overwrite one.
  static KeeperState create(const fs::path& file, const KeeperRecord& identity);
  // Opens and validates an existing database: a missing, corrupt or foreign
  // file is one clear error line naming the file.
  static KeeperState open(const fs::path& file);
  static bool exists(const fs::path& file);

  KeeperState(KeeperState&&) noexcept;
  KeeperState& operator=(KeeperState&&) noexcept;
  ~KeeperState();

  const KeeperRecord& record() const { return record_; }
  const fs::path& file() const { return file_; }

  // Writes `r` in one transaction (and keeps it as the record on success).
  void save(const KeeperRecord& r);

  // Shorthands, each one transaction.
  void begin_transition(NodeState from, NodeState to, std::int64_t now_ms);
  // current = reached with this goal version, nothing in progress.
  void finish_transition(NodeState reached, std::uint64_t goal_version, std::int64_t now_ms);
  void set_goal_version(std::uint64_t v);  // the state held, now confirmed for a newer goal
  void set_upstream(std::optional<NodeId> id, const std::string& conninfo);
  void set_data_origin(DataOrigin o);

 private:
  KeeperState(fs::path file, sqlite3* db);
  void load();
  fs::path file_;
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  std::unique_ptr<sqlite3, Closer> db_;
  KeeperRecord record_;
};

}  // namespace pgf
