// The group state machine: the only place where goal states are decided.
//
// decide() is a pure function of a snapshot of one group (what the monitor
// knows: assignments, the keepers' latest reports, health checks, operator
// requests), the settings and the clock. It returns the new assignment of every
// node and one event line per change. The monitor service loads the snapshot,
// calls decide() and writes the result in one transaction; the model checker in
// tests/model calls it on simulated groups.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_state.h"
#include "common/sync_config.h"

namespace pgf {

using TimeMs = std::int64_t;  // milliseconds on the monitor's clock
using Lsn = std::uint64_t;

enum class Health { Unknown, Good, Bad };
std::string_view name(Health h);

struct NodeSnapshot {
  NodeId id = 0;
  std::string name;
  std::string host;
  int port = 5432;
  int candidate_priority = 50;   // 0..100; 0: never promoted
  bool replication_quorum = true;

  // The assignment, written only by decide().
  NodeState goal = NodeState::Init;
  // Incremented at every goal change. A keeper reports the version of the goal
  // it last reached, so "it reached its goal" cannot be fooled by a stale
  // report that happens to name the same state as a newer goal.
  std::uint64_t goal_version = 0;
  SyncConfig assigned_sync;                 // for primary roles
  std::optional<NodeId> assigned_upstream;  // for standbys: the node to stream from
  std::optional<Lsn> assigned_target_lsn;   // fast_forward: replay at least this far
  // Set when the node is assigned a writable state; cleared once it reports a
  // non-writable state it reached under a non-writable goal. While set, the
  // node may be accepting writes, so nobody else is promoted unless it provably
  // cannot acknowledge them (invariant I3).
  bool may_write = false;

  // The keeper's latest report.
  std::optional<NodeState> reported;
  std::uint64_t reported_goal_version = 0;  // the version of the goal it reached
  std::optional<TimeMs> last_report_at;
  bool pg_running = false;
  std::optional<TimeMs> pg_down_since;      // first report of pg_running=false in a row
  Lsn lsn = 0;                              // insert LSN (primary) or received LSN (standby)
  std::uint32_t timeline = 0;
  std::optional<NodeId> reported_upstream;  // the node its walreceiver is configured for
  bool streaming = false;                   // its walreceiver is streaming right now
  std::optional<TimeMs> last_streaming_at;  // last report with streaming = true
  SyncConfig reported_sync;                 // in effect on the node, as it reported
  std::vector<NodeId> peers_ready;          // primary: hba entries and slots exist for these

  // The monitor's own health checks of the node's Postgres.
  Health health = Health::Unknown;
  std::optional<TimeMs> health_since;       // when `health` last changed

  // Operator requests.
  bool maintenance_requested = false;
  bool drop_requested = false;
};

struct SwitchoverRequest {
  std::optional<NodeId> target;  // perform promotion --name: this node must win
  TimeMs requested_at = 0;
};

struct GroupSnapshot {
  std::string formation = "default";
  int group = 0;
  std::vector<NodeSnapshot> nodes;          // ordered by id
  std::optional<SwitchoverRequest> switchover;
  // The node most recently assigned a writable state. Its synchronous
  // replication settings say which standbys hold every acknowledged write, so
  // an election waits until enough of those have reported (invariant I2).
  std::optional<NodeId> last_primary;
  TimeMs monitor_started_at = 0;            // health facts are trusted only after a grace period
};

// Defaults aim at a new writable primary within 5 s of losing the old one.
struct DecisionSettings {
  int number_sync_standbys = 1;             // formation setting; 0 means asynchronous
  TimeMs node_lost_timeout = 2500;          // no report and failing health checks for this long
  TimeMs postgres_restart_timeout = 6000;   // keeper alive but its Postgres down for this long
  TimeMs standby_stream_timeout = 4000;     // a secondary not streaming this long is dropped from sync
  TimeMs network_partition_timeout = 10000; // a primary alone this long fences itself (keeper)
  TimeMs startup_grace = 3000;              // after the monitor starts, before declaring anyone lost
  Lsn catchup_lag_bytes = 16 * 1024 * 1024; // a standby this close to the primary counts as in sync
};

struct NodeAssignment {
  NodeId id = 0;
  NodeState goal = NodeState::Init;
  std::uint64_t goal_version = 0;
  SyncConfig sync;
  std::optional<NodeId> upstream;
  std::optional<Lsn> target_lsn;  // fast_forward: replay at least this far
  bool may_write = false;
  bool operator==(const NodeAssignment&) const = default;
};

struct DecisionEvent {
  NodeId node = 0;
  NodeState from = NodeState::Init;
  NodeState to = NodeState::Init;
  std::string rule;     // the rule that fired, e.g. "primary-failed"
  std::string reason;   // one line, with the facts that made it fire
};

struct Decision {
  std::vector<NodeAssignment> nodes;  // one per snapshot node, same order
  std::vector<DecisionEvent> events;  // one per goal or synchronous-replication change
  bool switchover_settled = false;    // the pending switchover request is done or void
  std::optional<NodeId> last_primary;
  bool changed(const GroupSnapshot& before) const;
};

Decision decide(const GroupSnapshot& group, const DecisionSettings& settings, TimeMs now);

// The rules, for documentation and the --dot graph: each moves a node whose goal
// is one of `from` to `to`. decide() applies, for every node, the first rule in
// this order whose condition holds.
struct RuleInfo {
  std::string_view name;
  StateSet from;
  NodeState to;
  std::string_view when;  // the condition, in words
};
std::span<const RuleInfo> group_rules();

// Exposed for tests and the CLI: the facts decide() derives.
bool node_is_lost(const NodeSnapshot& n, const DecisionSettings& s, TimeMs now);
bool node_is_failed(const NodeSnapshot& n, const DecisionSettings& s, TimeMs now);

}  // namespace pgf
