// A small simulated world for model checking: hosts, links, a monitor, keepers
// and Postgres servers with their WAL. The monitor runs the real decide(), the
// keepers the real plan_turn() and transition table; only Postgres and the
// network are simulated. Time advances in ticks of one second.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <set>
#include <unordered_set>
#include <vector>

#include "keeper/transition_table.h"
#include "monitor/group_state_machine.h"

namespace pgf::model {

constexpr int kMaxNodes = 3;
constexpr std::uint8_t kAgeCap = 4;    // ages beyond every monitor timeout are all "long ago"
constexpr std::uint8_t kAloneCap = 7;  // the keeper's fence timer counts further (network_partition_timeout)
constexpr std::uint8_t kNever = 0xff;

// synchronous_standby_names, compactly: ANY k of the nodes in `mask`.
struct Sync {
  std::uint8_t k = 0;
  std::uint8_t mask = 0;
  bool operator==(const Sync&) const = default;
  static Sync of(const SyncConfig& c);
  SyncConfig config() const;
};

// What the keeper remembers of the last goal the monitor returned.
struct GoalMemo {
  NodeState state = NodeState::Init;
  std::uint8_t version = 0;
  Sync sync;
  std::int8_t upstream = -1;
  std::uint8_t target_lsn = 0;
  Goal goal() const;
};

// A simulated Postgres: its data directory and whether it runs.
struct Pg {
  bool exists = false;        // initialized data directory
  bool running = false;
  bool standby = false;       // standby.signal: starts in recovery, read-only
  bool access_ready = false;  // hba entries and slots for the peers exist
  std::int8_t upstream = -1;  // primary_conninfo: the node index it streams from
  Sync sync;                  // synchronous_standby_names in effect
  std::vector<std::uint8_t> wal;  // write ids (1..) and promotion markers (100+)
};

// The monitor's row for a node: assignment and the latest report.
struct Record {
  bool present = false;
  NodeState goal = NodeState::Init;
  std::uint8_t goal_version = 0;  // versions are rebased after every step: only equality matters
  std::uint8_t reported_goal_version = 0;
  Sync assigned_sync;
  std::int8_t assigned_upstream = -1;
  std::uint8_t target_lsn = 0;
  bool may_write = false;
  bool has_report = false;
  NodeState reported = NodeState::Init;
  std::uint8_t report_age = kAgeCap;
  bool pg_running = false;
  std::uint8_t pg_down_age = kNever;
  std::uint8_t lsn = 0;
  std::uint8_t timeline = 1;
  std::int8_t reported_upstream = -1;
  bool streaming = false;
  std::uint8_t streaming_age = kNever;
  Sync reported_sync;
  std::uint8_t peers_ready = 0;  // bit per node index
  Health health = Health::Unknown;
  std::uint8_t health_age = 0;
  bool maintenance_requested = false;
  bool drop_requested = false;
  std::uint8_t priority = 50;
  bool quorum = true;
};

struct Node {
  bool gone = false;         // dropped and deleted
  bool host_up = true;
  bool link_monitor = true;
  bool keeper_alive = true;
  NodeState current = NodeState::Init;  // the keeper's persisted state
  std::uint8_t current_version = 0;     // ... and the version of the goal that got it there
  std::optional<GoalMemo> last_goal;    // in the keeper's memory only
  std::uint8_t alone_age = 0;           // ticks since the keeper last reached the monitor or saw a standby
  Pg pg;
  Record rec;
};

struct World {
  int n = 2;
  std::array<Node, kMaxNodes> nodes;
  std::array<std::array<bool, kMaxNodes>, kMaxNodes> link{};  // node <-> node
  bool monitor_up = true;
  std::uint8_t monitor_age = kAgeCap;
  // The system runs on a fair round-robin schedule: the monitor, each keeper,
  // then one second passes. Environment events may strike between any two steps.
  std::uint8_t phase = 0;
  std::optional<SwitchoverRequest> switchover;
  std::int8_t last_primary = -1;
  std::uint8_t next_write = 1;
  std::uint8_t acked = 0;  // bit per write id
  // Budgets of the bounded search.
  std::uint8_t env_events = 0;
  std::uint8_t writes = 0;
  std::uint8_t operator_actions = 0;
  std::uint8_t faults = 0;
  std::uint8_t interruptions = 0;  // events that struck while a transition was under way
  // Set by the search when it knows this round-boundary state is at rest (not hashed).
  bool known_at_rest = false;

  // 128-bit hash of everything that matters (not the search budgets' bookkeeping
  // beyond what bounds the search): the visited set and the memo store these.
  struct Hash {
    std::uint64_t a = 0, b = 0;
    bool operator==(const Hash&) const = default;
  };
  Hash hash() const;
};

struct WorldHashHasher {
  size_t operator()(const World::Hash& h) const { return static_cast<size_t>(h.a ^ (h.b * 0x9e3779b97f4a7c15ULL)); }
};
using WorldHashSet = std::unordered_set<World::Hash, WorldHashHasher>;

struct Limits {
  int nodes = 2;
  int depth = 8;   // environment events: faults, returns, writes, operator actions
  int faults = 3;  // of which crashes, losses, kills and cuts
  int writes = 2;
  int operator_actions = 1;
  int interruptions = 1;  // events allowed while the system is still moving
  int number_sync_standbys = 1;
  bool priority_zero_node = false;  // the last node has candidate priority 0
};

DecisionSettings model_settings(int number_sync_standbys);
World initial_world(const Limits& limits);

// Everything that went wrong on a step; empty when the step is fine.
using Violations = std::vector<std::string>;

// Which rules fired and which keeper transitions ran, over the whole search.
struct Coverage {
  std::set<std::string> rules;
  std::set<std::pair<NodeState, NodeState>> transitions;
};

// The system's own steps.
void monitor_turn(World& w, const DecisionSettings& s, Violations& v, Coverage* cov = nullptr);
// crash_after: the keeper dies after this many actions of its transition (none: it completes).
bool keeper_turn(World& w, int i, const DecisionSettings& s, Violations& v, std::optional<int> crash_after = {},
                 Coverage* cov = nullptr);
void tick(World& w);
// The next step of the schedule; returns what it was, for traces.
const char* system_step(World& w, const DecisionSettings& s, Violations& v, Coverage* cov = nullptr);
// At a round boundary, and one more round changes nothing: the system is at rest.
bool at_rest(const World& w, const DecisionSettings& s);

// Postgres replication and the checks that hold in every state.
void replicate(World& w);
bool can_acknowledge(const World& w, int i);
void check_state(const World& w, Violations& v);

// Bring everything back and let the system run; true if the group converges to
// one primary plus its secondaries.
// `known_good` holds keys of states already known to converge (shared memo).
bool converges(World w, const DecisionSettings& s, Violations& v, std::string* why, WorldHashSet& known_good);

std::string describe(const World& w);

}  // namespace pgf::model
