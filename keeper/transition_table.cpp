#include "keeper/transition_table.h"

#include <fmt/format.h>

#include "common/error.h"

namespace pgf {

namespace {

using S = NodeState;
using A = Action;

// Action lists, named for what they achieve. Each list is safe to run again
// from the start after a crash part way through.
constexpr std::span<const Action> kNone{};

constexpr Action kBootstrapPrimary[] = {A::InitPrimary, A::EnsureReplicationAccess, A::ApplySyncConfig};
constexpr Action kRunPrimary[] = {A::StartPostgres, A::EnsureReplicationAccess, A::ApplySyncConfig};
constexpr Action kBecomeStandby[] = {A::InitStandby, A::FollowUpstream};
constexpr Action kRunStandby[] = {A::StartPostgres, A::FollowUpstream};
constexpr Action kStopReplication[] = {A::StartPostgres, A::StopReplication};
constexpr Action kReplayAll[] = {A::StartPostgres, A::StopReplication, A::WaitForReplay};
constexpr Action kFastForward[] = {A::StartPostgres, A::FastForward};
constexpr Action kPromote[] = {A::Promote, A::Checkpoint, A::EnsureReplicationAccess, A::ApplySyncConfig};
constexpr Action kRejoin[] = {A::RewindIfNeeded, A::FollowUpstream};
constexpr Action kStopAsStandbyOnly[] = {A::StopPostgres, A::EnterStandbyMode};
constexpr Action kStop[] = {A::StopPostgres};
constexpr Action kDrop[] = {A::StopPostgres, A::Drop};

// The table, grouped by the journey a node makes. Read a line as: a node in
// `from` that is assigned `to` runs these actions, then records `to`.
constexpr Transition kTable[] = {
    // Bootstrap: the first node becomes the primary; later nodes wait, then clone it.
    {S::Init, S::Init, "registered", kNone},
    {S::Init, S::Single, "bootstrap primary", kBootstrapPrimary},
    {S::Init, S::WaitStandby, "wait for the primary", kNone},
    {S::WaitStandby, S::WaitStandby, "waiting for the primary", kNone},
    {S::WaitStandby, S::CatchingUp, "clone the primary", kBecomeStandby},

    // The primary's life: alone, with standbys joining, with synchronous replication.
    {S::Single, S::Single, "run primary", kRunPrimary},
    {S::Single, S::WaitPrimary, "allow standbys", kRunPrimary},
    {S::WaitPrimary, S::WaitPrimary, "run primary", kRunPrimary},
    {S::WaitPrimary, S::Primary, "enable synchronous replication", kRunPrimary},
    {S::WaitPrimary, S::Single, "last standby left", kRunPrimary},
    {S::Primary, S::Primary, "run primary", kRunPrimary},
    {S::Primary, S::WaitPrimary, "relax synchronous replication", kRunPrimary},
    {S::Primary, S::Single, "last standby left", kRunPrimary},

    // A standby's life: streaming, in sync, out of sync.
    {S::CatchingUp, S::CatchingUp, "run standby", kRunStandby},
    {S::CatchingUp, S::Secondary, "caught up", kRunStandby},
    {S::Secondary, S::Secondary, "run standby", kRunStandby},
    {S::Secondary, S::CatchingUp, "fell behind", kRunStandby},

    // Failover and switchover: the old primary steps down (demoted is assigned
    // only to a node that reached primary; a fenced one is demoted already)...
    {S::Primary, S::Demoted, "demote", kStopAsStandbyOnly},
    {S::Primary, S::Draining, "drain for switchover", kStopAsStandbyOnly},
    {S::Draining, S::Draining, "drained", kStop},
    // A primary that fenced itself is already stopped in standby mode: drained.
    {S::Demoted, S::Draining, "already stopped", kStop},
    {S::Demoted, S::Demoted, "stay demoted", kStop},
    // ...standbys stop following it and report how far they got...
    {S::Secondary, S::ReportLsn, "stop replication, report LSN", kStopReplication},
    {S::CatchingUp, S::ReportLsn, "stop replication, report LSN", kStopReplication},
    {S::WaitMaintenance, S::ReportLsn, "stop replication, report LSN", kStopReplication},
    {S::ReportLsn, S::ReportLsn, "report LSN", kStopReplication},
    // ...the elected one fetches what it misses, replays everything, and is promoted...
    {S::ReportLsn, S::FastForward, "fetch missing WAL", kFastForward},
    {S::FastForward, S::FastForward, "fetch missing WAL", kFastForward},
    {S::PreparePromotion, S::FastForward, "a late report has more WAL: fetch it", kFastForward},
    {S::ReportLsn, S::PreparePromotion, "replay all WAL", kReplayAll},
    {S::FastForward, S::PreparePromotion, "replay all WAL", kReplayAll},
    {S::PreparePromotion, S::PreparePromotion, "ready for promotion", kReplayAll},
    {S::PreparePromotion, S::WaitPrimary, "promote", kPromote},
    // ...and the others follow the new primary.
    {S::ReportLsn, S::CatchingUp, "follow the new primary", kRejoin},
    {S::FastForward, S::CatchingUp, "follow the new primary", kRejoin},
    {S::PreparePromotion, S::CatchingUp, "follow the new primary", kRejoin},
    // An elected node that failed before its promotion goes back to the election.
    {S::FastForward, S::ReportLsn, "elected node failed: report LSN again", kStopReplication},
    {S::PreparePromotion, S::ReportLsn, "elected node failed: report LSN again", kStopReplication},

    // The old primary rejoins as a standby (pg_rewind if its WAL went further).
    {S::Demoted, S::CatchingUp, "rejoin as standby", kRejoin},
    {S::Draining, S::CatchingUp, "rejoin as standby", kRejoin},
    // A primary that fenced itself, or drained for a switchover nobody could
    // complete, is told by the monitor to carry on as the primary.
    {S::Demoted, S::WaitPrimary, "resume as primary", kPromote},
    {S::Demoted, S::Primary, "resume as primary", kPromote},
    {S::Demoted, S::Single, "resume as primary", kPromote},
    {S::Draining, S::WaitPrimary, "resume as primary", kPromote},

    // Maintenance.
    {S::Secondary, S::WaitMaintenance, "prepare maintenance", kRunStandby},
    {S::CatchingUp, S::WaitMaintenance, "prepare maintenance", kRunStandby},
    {S::WaitMaintenance, S::WaitMaintenance, "wait for the primary", kRunStandby},
    {S::WaitMaintenance, S::Maintenance, "start maintenance", kStop},
    {S::Draining, S::Maintenance, "start maintenance", kStop},
    {S::Demoted, S::Maintenance, "start maintenance", kStop},
    {S::Maintenance, S::Maintenance, "in maintenance", kNone},
    {S::Maintenance, S::CatchingUp, "end maintenance", kRejoin},
    {S::WaitMaintenance, S::CatchingUp, "maintenance cancelled", kRunStandby},

    // Leaving the group: possible from every state, since the operator may drop
    // a node whose keeper comes back from anywhere.
    {S::Init, S::Dropped, "drop", kDrop},
    {S::Single, S::Dropped, "drop", kDrop},
    {S::WaitPrimary, S::Dropped, "drop", kDrop},
    {S::Primary, S::Dropped, "drop", kDrop},
    {S::Draining, S::Dropped, "drop", kDrop},
    {S::Demoted, S::Dropped, "drop", kDrop},
    {S::WaitStandby, S::Dropped, "drop", kDrop},
    {S::CatchingUp, S::Dropped, "drop", kDrop},
    {S::Secondary, S::Dropped, "drop", kDrop},
    {S::ReportLsn, S::Dropped, "drop", kDrop},
    {S::FastForward, S::Dropped, "drop", kDrop},
    {S::PreparePromotion, S::Dropped, "drop", kDrop},
    {S::WaitMaintenance, S::Dropped, "drop", kDrop},
    {S::Maintenance, S::Dropped, "drop", kDrop},
    {S::Dropped, S::Dropped, "dropped", kDrop},
};

}  // namespace

std::span<const Transition> transitions() { return kTable; }

const Transition* find_transition(NodeState current, NodeState goal) {
  for (const auto& t : kTable) {
    if (t.from == current && t.to == goal) return &t;
  }
  return nullptr;
}

const Transition& require_transition(NodeState current, NodeState goal) {
  if (const auto* t = find_transition(current, goal)) return *t;
  std::string allowed;
  for (const auto& t : kTable) {
    if (t.from == current && t.to != current) {
      if (!allowed.empty()) allowed += ", ";
      allowed += std::string(name(t.to));
    }
  }
  throw Error("no transition from {} to {} in the keeper's table (from {} it can go to: {}); refusing to guess",
              name(current), name(goal), name(current), allowed.empty() ? "nothing" : allowed);
}

Progress run_transition(const Transition& t, NodeActions& actions, const Goal& goal) {
  for (Action a : t.actions) {
    if (actions.run(a, goal) == Progress::Waiting) return Progress::Waiting;
  }
  return Progress::Done;
}

TurnPlan plan_turn(NodeState current, const KeeperTurnFacts& f) {
  TurnPlan plan;
  // Self-fencing comes first. Only a node in `primary` can be failed over behind
  // its back (the monitor never promotes a standby of a wait_primary or single),
  // so only it has to assume a new primary may exist where it cannot see. Its
  // commits already block (its synchronous standbys stopped following it); the
  // fence makes clients that reconnect find the new primary instead of hanging here.
  if (current == NodeState::Primary) {
    std::int64_t last_contact = std::max(f.last_monitor_contact_ms, f.last_standby_seen_ms);
    std::int64_t alone_for = f.now_ms - last_contact;
    if (alone_for >= f.network_partition_timeout_ms) {
      plan.kind = TurnPlan::Kind::Fence;
      plan.transition = &require_transition(NodeState::Primary, NodeState::Demoted);
      plan.next_state = NodeState::Demoted;
      plan.why = fmt::format(
          "fencing: no contact with the monitor nor any standby for {:.1f} s (network_partition_timeout {:.1f} s); "
          "stopping Postgres so it cannot accept writes a new primary would not have",
          alone_for / 1000.0, f.network_partition_timeout_ms / 1000.0);
      return plan;
    }
  }
  if (f.fresh_goal && *f.fresh_goal != current) {
    plan.kind = TurnPlan::Kind::Transition;
    plan.transition = &require_transition(current, *f.fresh_goal);
    plan.next_state = *f.fresh_goal;
    plan.why = fmt::format("{} -> {}: {}", name(current), name(*f.fresh_goal), plan.transition->name);
    return plan;
  }
  if (const auto* steady = find_transition(current, current)) {
    plan.kind = TurnPlan::Kind::Steady;
    plan.transition = steady;
    plan.next_state = current;
    plan.why = std::string(steady->name);
    return plan;
  }
  plan.kind = TurnPlan::Kind::Idle;
  plan.next_state = current;
  return plan;
}

}  // namespace pgf
