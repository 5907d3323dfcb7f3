// The keeper's transition table: how a node gets from the state it is in to the
// goal the monitor assigned. Every allowed (current, goal) pair is one entry with
// a name and an ordered list of actions; a pair not in the table is refused.
// (s, s) entries are what a keeper does on every turn in a steady state: keep
// Postgres running (or stopped), keep replication settings as assigned.
//
// Actions must be idempotent: a keeper killed in the middle of a transition
// runs the whole list again on restart, from the state it had committed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_state.h"
#include "common/sync_config.h"

namespace pgf {

enum class Action {
  InitPrimary,
  InitStandby,
  StartPostgres,
  StopPostgres,
  EnterStandbyMode,
  StopReplication,
  WaitForReplay,
  RewindIfNeeded,
  FollowUpstream,
  FastForward,
  Promote,
  Checkpoint,
  EnsureReplicationAccess,
  ApplySyncConfig,
  Drop,
};

struct ActionInfo {
  Action action;
  std::string_view name;
  std::string_view meaning;
};

inline constexpr std::array<ActionInfo, 15> kActions{{
    {Action::InitPrimary, "init_primary",
     "initdb, or adopt the existing data directory; configure for replication; start as primary"},
    {Action::InitStandby, "init_standby",
     "move any old data directory aside, pg_basebackup from the upstream, start as hot standby"},
    {Action::StartPostgres, "start_postgres", "start Postgres as configured if it is not running"},
    {Action::StopPostgres, "stop_postgres",
     "fast shutdown: clients are cut off and connected standbys receive all WAL"},
    {Action::EnterStandbyMode, "enter_standby_mode",
     "write standby.signal so this Postgres can only ever start read-only"},
    {Action::StopReplication, "stop_replication",
     "clear primary_conninfo and reload: stop streaming from the old primary"},
    {Action::WaitForReplay, "wait_for_replay", "wait until all received WAL is replayed"},
    {Action::RewindIfNeeded, "rewind_if_needed",
     "if local WAL went past the upstream's timeline fork: pg_rewind, or a fresh base backup"},
    {Action::FollowUpstream, "follow_upstream",
     "write primary_conninfo for the assigned upstream and stream from it"},
    {Action::FastForward, "fast_forward",
     "stream from the most advanced standby until the target LSN is reached"},
    {Action::Promote, "promote",
     "become the primary: pg_promote a standby, or start a stopped node without standby.signal"},
    {Action::Checkpoint, "checkpoint", "CHECKPOINT so the new timeline is on disk for pg_rewind"},
    {Action::EnsureReplicationAccess, "ensure_replication_access",
     "pg_hba entries and replication slots for the peers; drop slots of departed nodes"},
    {Action::ApplySyncConfig, "apply_sync_config",
     "set synchronous_standby_names as assigned and reload"},
    {Action::Drop, "drop", "stop Postgres and leave the group; the keeper exits"},
}};

constexpr std::string_view name(Action a) { return kActions[static_cast<size_t>(a)].name; }

struct Transition {
  NodeState from;
  NodeState to;
  std::string_view name;
  std::span<const Action> actions;
};

std::span<const Transition> transitions();
const Transition* find_transition(NodeState current, NodeState goal);
// find_transition, or an error naming the pair and what the table allows from `current`.
const Transition& require_transition(NodeState current, NodeState goal);

// What the keeper has to act on, as the monitor returned it with the goal.
struct Peer {
  NodeId id = 0;
  std::string name;
  std::string host;
  int port = 0;
  bool operator==(const Peer&) const = default;
};

struct Goal {
  // False when the keeper has not heard from the monitor since it started (its
  // state says where it is, but nothing says what the monitor wants): actions
  // then keep what is configured (synchronous_standby_names, primary_conninfo)
  // instead of applying the empty values below. Applying an empty sync config
  // would let a primary acknowledge writes no standby has.
  bool known = true;
  NodeState state = NodeState::Init;
  // The monitor's goal_version of `state`: the keeper reports the version of the
  // goal it reached, so the monitor cannot mistake an old arrival for a new one.
  std::uint64_t version = 0;
  SyncConfig sync;                 // primary roles
  std::optional<Peer> upstream;    // standbys and fast_forward
  std::optional<std::uint64_t> target_lsn;  // fast_forward
  std::vector<Peer> peers;         // every other node of the group
};

// Whether an action finished or has to be run again on a later turn.
enum class Progress { Done, Waiting };

// Implemented against a real Postgres by keeper/ and against a simulated one by
// the model checker. Failures are thrown as exceptions carrying their context.
class NodeActions {
 public:
  virtual ~NodeActions() = default;
  virtual Progress run(Action action, const Goal& goal) = 0;
};

// Runs the transition's actions in order; stops at the first that is Waiting.
Progress run_transition(const Transition& t, NodeActions& actions, const Goal& goal);

// The keeper's own decision for one turn. Keepers never choose roles; the one
// exception is self-fencing: a primary that has reached neither the monitor nor
// any standby for network_partition_timeout stops accepting writes.
struct KeeperTurnFacts {
  // The goal the monitor returned on this turn's report; none when the monitor
  // could not be reached. Transitions only ever follow a goal received just now:
  // after fencing or a restart, an old goal may no longer be what the monitor wants.
  std::optional<NodeState> fresh_goal;
  std::int64_t now_ms = 0;
  std::int64_t last_monitor_contact_ms = 0;
  std::int64_t last_standby_seen_ms = 0;  // a standby streaming in pg_stat_replication
  std::int64_t network_partition_timeout_ms = 10000;
};

struct TurnPlan {
  enum class Kind { Transition, Fence, Steady, Idle } kind = Kind::Idle;
  const Transition* transition = nullptr;  // Transition and Steady: what to run
  NodeState next_state = NodeState::Init;  // what to record once it is Done
  std::string why;
};

TurnPlan plan_turn(NodeState current, const KeeperTurnFacts& facts);

}  // namespace pgf
