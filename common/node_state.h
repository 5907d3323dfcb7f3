// The vocabulary of node states shared by the monitor (goal states it assigns),
// the keepers (states they report having reached) and the CLI.
#pragma once

#include <array>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace pgf {

enum class NodeState {
  Init,
  Single,
  WaitPrimary,
  Primary,
  Draining,
  Demoted,
  WaitStandby,
  CatchingUp,
  Secondary,
  ReportLsn,
  FastForward,
  PreparePromotion,
  WaitMaintenance,
  Maintenance,
  Dropped,
};

struct NodeStateInfo {
  NodeState state;
  std::string_view name;     // as stored in the monitor schema and shown to operators
  std::string_view meaning;  // one line for `show state`, docs and the --dot graph
};

// One entry per state; the order is the order of the enum.
inline constexpr std::array<NodeStateInfo, 15> kNodeStates{{
    {NodeState::Init, "init", "registered with the monitor; no role yet"},
    {NodeState::Single, "single", "the only node of its group: accepts writes, no replication"},
    {NodeState::WaitPrimary, "wait_primary",
     "accepts writes with synchronous replication off: standbys are joining, lagging or down"},
    {NodeState::Primary, "primary",
     "accepts writes; each commit waits for number_sync_standbys secondaries"},
    {NodeState::Draining, "draining",
     "old primary handing over: stopped cleanly so its standbys have every byte of WAL"},
    {NodeState::Demoted, "demoted",
     "old primary taken out of service: Postgres stopped, will only start again as a standby"},
    {NodeState::WaitStandby, "wait_standby",
     "new standby waiting for the primary to allow it (pg_hba entry, replication slot)"},
    {NodeState::CatchingUp, "catchingup",
     "standby streaming from the primary but not yet close enough to count as in sync"},
    {NodeState::Secondary, "secondary",
     "standby in sync: counts for synchronous replication and may be promoted"},
    {NodeState::ReportLsn, "report_lsn",
     "failover in progress: stopped replicating from the old primary, reports its last LSN"},
    {NodeState::FastForward, "fast_forward",
     "elected but behind another standby: fetches the missing WAL from it before promotion"},
    {NodeState::PreparePromotion, "prepare_promotion",
     "elected: replication stopped, all received WAL replayed, waiting for the go to promote"},
    {NodeState::WaitMaintenance, "wait_maintenance",
     "standby going to maintenance once the primary no longer waits for it"},
    {NodeState::Maintenance, "maintenance",
     "out of service for the operator: Postgres stopped, never promoted, not waited for"},
    {NodeState::Dropped, "dropped", "removed from the group: Postgres stopped, keeper exits"},
}};

constexpr const NodeStateInfo& info(NodeState s) { return kNodeStates[static_cast<size_t>(s)]; }
constexpr std::string_view name(NodeState s) { return info(s).name; }
std::optional<NodeState> parse_node_state(std::string_view name);

// A set of states, usable in constexpr tables.
class StateSet {
 public:
  constexpr StateSet() = default;
  constexpr StateSet(std::initializer_list<NodeState> states) {
    for (NodeState s : states) bits_ |= bit(s);
  }
  constexpr bool contains(NodeState s) const { return (bits_ & bit(s)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  template <typename F>
  constexpr void for_each(F&& f) const {
    for (const auto& i : kNodeStates) {
      if (contains(i.state)) f(i.state);
    }
  }

 private:
  static constexpr unsigned bit(NodeState s) { return 1u << static_cast<unsigned>(s); }
  unsigned bits_ = 0;
};

// Roles, as predicates over states: every rule and check uses these, so a new
// state is classified here once.

// A node assigned one of these states is allowed to accept writes (I1 counts them).
constexpr bool accepts_writes(NodeState s) {
  return s == NodeState::Single || s == NodeState::WaitPrimary || s == NodeState::Primary;
}
// The group's primary: writable, or handing over (draining still holds the data of record).
constexpr bool is_primary_role(NodeState s) { return accepts_writes(s) || s == NodeState::Draining; }
// Standby states that follow the primary and may be asked to take part in an election.
constexpr bool is_following_standby(NodeState s) {
  return s == NodeState::CatchingUp || s == NodeState::Secondary || s == NodeState::WaitMaintenance;
}
// States of an election in progress.
constexpr bool is_election_state(NodeState s) {
  return s == NodeState::ReportLsn || s == NodeState::FastForward || s == NodeState::PreparePromotion;
}
// States in which the keeper keeps Postgres stopped on purpose.
constexpr bool keeps_postgres_stopped(NodeState s) {
  return s == NodeState::Draining || s == NodeState::Demoted || s == NodeState::Maintenance ||
         s == NodeState::Dropped || s == NodeState::Init || s == NodeState::WaitStandby;
}

}  // namespace pgf
