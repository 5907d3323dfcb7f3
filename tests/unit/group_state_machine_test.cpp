// One test per scenario of the group state machine, on hand-built snapshots.
// Each test drives decide() step by step, feeding back the goals it assigns and
// the facts keepers would report, like the monitor service does.
#include <catch2/catch.hpp>

#include <algorithm>

#include "monitor/group_state_machine.h"

using namespace pgf;
using S = NodeState;

// On failure, shows every decision taken so far and the nodes' states.
#define REQUIRE_GOAL(group, id, state)        \
  do {                                        \
    INFO((group).trace());                    \
    REQUIRE((group).n(id).goal == (state));   \
  } while (0)

namespace {

constexpr TimeMs kStart = 1'000'000;

// A group under test: snapshot + clock; helpers play the keepers' part.
struct Group {
  GroupSnapshot snap;
  DecisionSettings settings;
  TimeMs now = kStart + 60'000;  // well past the monitor's startup grace
  std::vector<DecisionEvent> events;

  Group() { snap.monitor_started_at = kStart; }

  NodeSnapshot& add(NodeId id, std::string name = "") {
    NodeSnapshot n;
    n.id = id;
    n.name = name.empty() ? "node" + std::to_string(id) : name;
    n.host = "10.0.0." + std::to_string(id);
    n.port = 5432;
    n.health = Health::Good;
    snap.nodes.push_back(n);
    return snap.nodes.back();
  }
  NodeSnapshot& n(NodeId id) {
    auto it = std::find_if(snap.nodes.begin(), snap.nodes.end(), [&](auto& x) { return x.id == id; });
    REQUIRE(it != snap.nodes.end());
    return *it;
  }

  // The monitor's step: decide and store the assignment.
  Decision decide() {
    Decision d = pgf::decide(snap, settings, now);
    REQUIRE(d.nodes.size() == snap.nodes.size());
    for (size_t i = 0; i < d.nodes.size(); ++i) {
      auto& node = snap.nodes[i];
      node.goal = d.nodes[i].goal;
      node.goal_version = d.nodes[i].goal_version;
      node.assigned_sync = d.nodes[i].sync;
      node.assigned_upstream = d.nodes[i].upstream;
      node.assigned_target_lsn = d.nodes[i].target_lsn;
      node.may_write = d.nodes[i].may_write;
    }
    snap.last_primary = d.last_primary;
    if (d.switchover_settled) snap.switchover.reset();
    events.insert(events.end(), d.events.begin(), d.events.end());
    return d;
  }

  // A keeper's step: it reached its goal and reports healthy facts.
  void reach(NodeId id) {
    auto& x = n(id);
    x.reported = x.goal;
    x.reported_goal_version = x.goal_version;
    x.last_report_at = now;
    x.pg_running = !keeps_postgres_stopped(x.goal);
    x.pg_down_since.reset();
    x.reported_sync = x.assigned_sync;
    x.reported_upstream = x.assigned_upstream;
    x.streaming = x.assigned_upstream.has_value() && is_following_standby(x.goal);
    if (x.streaming) {
      x.last_streaming_at = now;
      x.lsn = n(*x.assigned_upstream).lsn;
    }
    if (x.goal == S::FastForward) x.lsn = n(*x.assigned_upstream).lsn;
    x.health = Health::Good;
    if (accepts_writes(x.goal)) {
      x.peers_ready.clear();
      for (auto& o : snap.nodes) {
        if (o.id != id) x.peers_ready.push_back(o.id);
      }
    }
  }
  void reach_all() {
    for (auto& x : snap.nodes) {
      if (x.health != Health::Bad) reach(x.id);
    }
  }
  // Decide and let every live keeper apply, until nothing changes.
  void settle(int max_rounds = 20) {
    for (int i = 0; i < max_rounds; ++i) {
      auto before = snap;
      decide();
      reach_all();
      now += 100;
      bool same = true;
      for (size_t k = 0; k < snap.nodes.size(); ++k) {
        same = same && snap.nodes[k].goal == before.nodes[k].goal && snap.nodes[k].reported == before.nodes[k].reported &&
               snap.nodes[k].assigned_sync == before.nodes[k].assigned_sync;
      }
      if (same) return;
    }
  }
  void lose(NodeId id) {  // host gone: no reports, health checks fail
    auto& x = n(id);
    x.health = Health::Bad;
    x.health_since = now;
    x.streaming = false;
  }
  void pass(TimeMs ms) { now += ms; }
  bool has_event(std::string_view rule) const {
    return std::any_of(events.begin(), events.end(), [&](auto& e) { return e.rule == rule; });
  }
  // What happened, for failure messages.
  std::string trace() const {
    std::string out;
    for (const auto& e : events) {
      out += "  node " + std::to_string(e.node) + " " + std::string(name(e.from)) + " -> " + std::string(name(e.to)) +
             " [" + e.rule + "] " + e.reason + "\n";
    }
    for (const auto& x : snap.nodes) {
      out += "  node " + std::to_string(x.id) + ": goal " + std::string(name(x.goal)) + ", reported " +
             (x.reported ? std::string(name(*x.reported)) : "-") + ", may_write " + (x.may_write ? "yes" : "no") +
             ", sync " + x.assigned_sync.describe() + "\n";
    }
    auto d = pgf::decide(snap, settings, now);
    (void)d;
    return out;
  }
  int writable_count() const {
    return static_cast<int>(std::count_if(snap.nodes.begin(), snap.nodes.end(), [](auto& x) { return accepts_writes(x.goal); }));
  }
};

// Two nodes in primary + secondary, synchronous replication on.
Group two_node_group() {
  Group g;
  g.add(1, "idp001");
  g.settle();
  g.add(2, "idp002");
  g.settle();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE_GOAL(g, 2, S::Secondary);
  return g;
}

Group three_node_group() {
  Group g = two_node_group();
  g.add(3, "node3");
  g.settle();
  REQUIRE_GOAL(g, 3, S::Secondary);
  return g;
}

// The primary's host is lost; time passes until the monitor may call it failed.
void lose_primary(Group& g, NodeId primary) {
  g.lose(primary);
  for (auto& x : g.snap.nodes) {
    if (x.id != primary) x.streaming = false;
  }
  g.pass(g.settings.node_lost_timeout + 100);
  for (auto& x : g.snap.nodes) {
    if (x.id != primary) x.last_report_at = g.now;
  }
}

}  // namespace

TEST_CASE("the first node becomes single", "[fsm][bootstrap]") {
  Group g;
  g.add(1);
  g.decide();
  REQUIRE_GOAL(g, 1, S::Single);
  REQUIRE(g.n(1).may_write);
  REQUIRE(g.snap.last_primary == 1);
}

TEST_CASE("a second node joins: wait_standby, catchingup, secondary, primary single -> wait_primary -> primary",
          "[fsm][bootstrap]") {
  Group g;
  g.add(1);
  g.settle();
  g.add(2);
  g.decide();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  REQUIRE_GOAL(g, 2, S::WaitStandby);
  g.reach(1);
  g.reach(2);
  g.n(1).peers_ready.clear();  // hba and slot not created yet
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitStandby);
  g.reach(1);  // now the primary reports peers_ready = [2]
  g.decide();
  REQUIRE_GOAL(g, 2, S::CatchingUp);
  REQUIRE(g.n(2).assigned_upstream == 1);
  g.reach(2);
  g.n(2).lsn = g.n(1).lsn - 100 * 1024 * 1024;  // far behind
  g.n(1).lsn = 200 * 1024 * 1024;
  g.n(2).lsn = 1;
  g.decide();
  REQUIRE_GOAL(g, 2, S::CatchingUp);
  g.n(2).lsn = g.n(1).lsn - 1000;
  g.decide();
  REQUIRE_GOAL(g, 2, S::Secondary);
  g.reach(2);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::off());
  g.decide();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::any(1, {2}));
  REQUIRE(g.has_event("sync-settings"));
}

TEST_CASE("standby failure relaxes synchronous replication, it comes back", "[fsm][standby]") {
  Group g = two_node_group();
  g.lose(2);
  g.pass(g.settings.standby_stream_timeout + 100);
  g.n(1).last_report_at = g.now;
  g.decide();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  REQUIRE_GOAL(g, 2, S::CatchingUp);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::off());
  // The standby returns, catches up; the primary turns synchronous replication on again.
  g.n(2).health = Health::Good;
  g.settle();
  REQUIRE_GOAL(g, 2, S::Secondary);
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::any(1, {2}));
}

TEST_CASE("primary failure with two nodes: the secondary is promoted, the old primary rejoins", "[fsm][failover]") {
  Group g = two_node_group();
  lose_primary(g, 1);
  g.decide();
  REQUIRE_GOAL(g, 1, S::Demoted);
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  REQUIRE(g.writable_count() == 0);
  REQUIRE(g.events.back().reason.find("unreachable") != std::string::npos);
  g.reach(2);
  g.decide();
  REQUIRE_GOAL(g, 2, S::PreparePromotion);
  g.reach(2);
  g.decide();
  // The old primary ran ANY 1 (node2) and node2 stopped following it: it cannot
  // acknowledge writes (I3), so the promotion goes ahead without waiting.
  REQUIRE_GOAL(g, 2, S::WaitPrimary);
  g.reach(2);
  // The old primary comes back: demoted, then it rejoins as a standby.
  g.n(1).health = Health::Good;
  g.settle();
  REQUIRE_GOAL(g, 1, S::Secondary);
  REQUIRE_GOAL(g, 2, S::Primary);
  REQUIRE(g.n(2).assigned_sync == SyncConfig::any(1, {1}));
  REQUIRE(g.has_event("rejoin"));
}

TEST_CASE("no promotion while the standby still follows the old primary (I3)", "[fsm][failover][i3]") {
  Group g = two_node_group();
  lose_primary(g, 1);
  g.decide();
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  // The keeper of node 2 reports report_lsn but its upstream is still node 1.
  g.n(2).reported = S::ReportLsn;
  g.n(2).reported_goal_version = g.n(2).goal_version;
  g.n(2).reported_upstream = 1;
  g.decide();
  g.n(2).reported = S::PreparePromotion;
  g.n(2).reported_goal_version = g.n(2).goal_version;
  g.decide();
  REQUIRE(g.n(2).goal != S::WaitPrimary);
  g.n(2).reported_upstream.reset();
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitPrimary);
}

TEST_CASE("no failover while a standby still streams from the primary", "[fsm][failover]") {
  Group g = two_node_group();
  g.lose(1);  // the monitor lost sight of it...
  g.pass(g.settings.node_lost_timeout + 100);
  g.n(2).last_report_at = g.now;
  g.n(2).streaming = true;  // ...but the standby has not
  g.n(2).last_streaming_at = g.now;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE_GOAL(g, 2, S::Secondary);
}

TEST_CASE("a primary whose Postgres is down is failed over only after the restart timeout", "[fsm][failover]") {
  Group g = two_node_group();
  g.n(1).pg_running = false;
  g.n(1).pg_down_since = g.now;
  g.n(2).streaming = false;
  g.pass(g.settings.postgres_restart_timeout - 500);
  g.n(1).last_report_at = g.now;
  g.n(2).last_report_at = g.now;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Primary);
  g.pass(1000);
  g.n(1).last_report_at = g.now;
  g.n(2).last_report_at = g.now;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Demoted);
  REQUIRE(g.events.back().reason.find("Postgres down") != std::string::npos);
}

TEST_CASE("no failover during the monitor's startup grace", "[fsm][failover]") {
  Group g = two_node_group();
  lose_primary(g, 1);
  g.snap.monitor_started_at = g.now - 100;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Primary);
}

TEST_CASE("three nodes: the most advanced standby wins, the third follows it", "[fsm][failover][i4]") {
  Group g = three_node_group();
  lose_primary(g, 1);
  g.decide();
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  REQUIRE_GOAL(g, 3, S::ReportLsn);
  g.reach(2);
  g.decide();  // node 3 has not reported yet: wait
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  g.reach(3);
  g.n(2).lsn = 5000;
  g.n(3).lsn = 6000;
  g.decide();
  REQUIRE_GOAL(g, 3, S::PreparePromotion);
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  g.reach(3);
  g.decide();
  REQUIRE_GOAL(g, 3, S::WaitPrimary);
  g.reach(3);
  g.decide();
  REQUIRE_GOAL(g, 2, S::CatchingUp);
  REQUIRE(g.n(2).assigned_upstream == 3);
}

TEST_CASE("equal WAL: candidate priority breaks the tie", "[fsm][failover][i4]") {
  Group g = three_node_group();
  g.n(2).candidate_priority = 10;
  g.n(3).candidate_priority = 90;
  lose_primary(g, 1);
  g.decide();
  g.reach(2);
  g.reach(3);
  g.n(2).lsn = g.n(3).lsn = 7000;
  g.decide();
  REQUIRE_GOAL(g, 3, S::PreparePromotion);
  REQUIRE_GOAL(g, 2, S::ReportLsn);
}

TEST_CASE("priority 0 is never promoted, the elected node fetches its WAL first", "[fsm][failover][i4]") {
  Group g = three_node_group();
  g.n(3).candidate_priority = 0;
  lose_primary(g, 1);
  g.decide();
  g.reach(2);
  g.reach(3);
  g.n(2).lsn = 5000;
  g.n(3).lsn = 9000;  // most advanced, but may not be promoted
  g.decide();
  REQUIRE_GOAL(g, 2, S::FastForward);
  REQUIRE_GOAL(g, 3, S::ReportLsn);
  auto d = pgf::decide(g.snap, g.settings, g.now);
  REQUIRE(d.nodes[1].upstream == 3);
  REQUIRE(d.nodes[1].target_lsn == 9000);
  g.reach(2);
  g.n(2).lsn = 9000;
  g.decide();
  REQUIRE_GOAL(g, 2, S::PreparePromotion);
  g.reach(2);
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitPrimary);
  REQUIRE(g.n(3).goal != S::WaitPrimary);
}

TEST_CASE("only priority-0 standbys: no failover", "[fsm][failover][i4]") {
  Group g = two_node_group();
  g.n(2).candidate_priority = 0;
  lose_primary(g, 1);
  g.decide();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE_GOAL(g, 2, S::Secondary);
}

TEST_CASE("a lost quorum standby that may hold acknowledged writes blocks the failover", "[fsm][failover][i2]") {
  Group g = three_node_group();
  REQUIRE(g.n(1).assigned_sync == SyncConfig::any(1, {2, 3}));
  lose_primary(g, 1);
  g.lose(3);
  g.pass(g.settings.node_lost_timeout + 100);
  g.n(2).last_report_at = g.now;
  g.decide();
  // ANY 1 (2, 3): a write acknowledged by node 3 alone would be lost.
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE_GOAL(g, 2, S::Secondary);
}

TEST_CASE("number_sync_standbys 2 with three nodes, and replication_quorum false", "[fsm][settings]") {
  Group g;
  g.settings.number_sync_standbys = 2;
  g.add(1);
  g.settle();
  g.add(2);
  g.settle();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);  // only one secondary
  g.add(3);
  g.settle();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::any(2, {2, 3}));
  g.n(3).replication_quorum = false;
  g.settle();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  g.settings.number_sync_standbys = 1;
  g.settle();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::any(1, {2}));
}

TEST_CASE("asynchronous mode: an unreachable primary is not failed over, a confirmed-down one is", "[fsm][settings]") {
  Group g;
  g.settings.number_sync_standbys = 0;
  g.add(1);
  g.settle();
  g.add(2);
  g.settle();
  REQUIRE_GOAL(g, 1, S::Primary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::off());
  lose_primary(g, 1);
  g.settle();
  // Failover starts (the standby stops following), but nobody proves node 1
  // cannot acknowledge writes, so nobody is promoted.
  REQUIRE(g.n(2).goal != S::WaitPrimary);
  REQUIRE(g.writable_count() == 0);
  // The keeper comes back and confirms it is demoted: now the promotion is safe.
  g.n(1).health = Health::Good;
  g.settle();
  INFO(g.trace());
  REQUIRE(g.writable_count() == 1);
  REQUIRE((g.n(2).goal == S::Primary || g.n(1).goal == S::Primary));
}

TEST_CASE("planned switchover", "[fsm][switchover]") {
  Group g = two_node_group();
  g.snap.switchover = SwitchoverRequest{};
  g.decide();
  REQUIRE_GOAL(g, 1, S::Draining);
  REQUIRE(g.snap.switchover.has_value());  // pending until the promotion
  REQUIRE_GOAL(g, 2, S::Secondary);  // keeps streaming until the primary has drained
  g.reach(1);
  g.decide();
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  g.settle();
  REQUIRE_GOAL(g, 2, S::Primary);
  REQUIRE_GOAL(g, 1, S::Secondary);
  REQUIRE(g.writable_count() == 1);
  REQUIRE_FALSE(g.snap.switchover.has_value());
}

TEST_CASE("promotion of a named node", "[fsm][switchover]") {
  Group g = three_node_group();
  g.snap.switchover = SwitchoverRequest{2, g.now};
  g.n(3).lsn = g.n(2).lsn + 10;  // the other standby even has more WAL
  g.settle();
  REQUIRE_GOAL(g, 2, S::Primary);
  REQUIRE_GOAL(g, 1, S::Secondary);
  REQUIRE_GOAL(g, 3, S::Secondary);
}

TEST_CASE("switchover without a standby is dropped with an event", "[fsm][switchover]") {
  Group g;
  g.add(1);
  g.settle();
  g.snap.switchover = SwitchoverRequest{};
  g.decide();
  REQUIRE_GOAL(g, 1, S::Single);
  REQUIRE_FALSE(g.snap.switchover.has_value());
  REQUIRE(g.has_event("switchover-void"));
}

TEST_CASE("maintenance of a standby waits until the primary stops waiting for it", "[fsm][maintenance]") {
  Group g = two_node_group();
  g.n(2).maintenance_requested = true;
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitMaintenance);
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  REQUIRE(g.n(1).assigned_sync == SyncConfig::off());
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitMaintenance);  // the primary has not confirmed yet
  g.reach(1);
  g.reach(2);
  g.decide();
  REQUIRE_GOAL(g, 2, S::Maintenance);
  g.settle();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  g.n(2).maintenance_requested = false;
  g.settle();
  REQUIRE_GOAL(g, 2, S::Secondary);
  REQUIRE_GOAL(g, 1, S::Primary);
}

TEST_CASE("maintenance of the primary: switch over first", "[fsm][maintenance]") {
  Group g = two_node_group();
  g.n(1).maintenance_requested = true;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Draining);
  g.settle();
  REQUIRE_GOAL(g, 1, S::Maintenance);
  REQUIRE_GOAL(g, 2, S::WaitPrimary);
  g.n(1).maintenance_requested = false;
  g.settle();
  REQUIRE_GOAL(g, 1, S::Secondary);
  REQUIRE_GOAL(g, 2, S::Primary);
}

TEST_CASE("dropping a standby and then the last node", "[fsm][drop]") {
  Group g = two_node_group();
  g.n(2).drop_requested = true;
  g.decide();
  REQUIRE_GOAL(g, 2, S::Dropped);
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
  g.reach_all();
  g.snap.nodes.erase(g.snap.nodes.begin() + 1);  // the monitor deletes the row once the keeper confirmed
  g.settle();
  REQUIRE_GOAL(g, 1, S::Single);
  g.n(1).drop_requested = true;
  g.decide();
  REQUIRE_GOAL(g, 1, S::Dropped);
}

TEST_CASE("dropping the primary hands over first", "[fsm][drop]") {
  Group g = two_node_group();
  g.n(1).drop_requested = true;
  g.settle();
  REQUIRE_GOAL(g, 1, S::Dropped);
  REQUIRE(accepts_writes(g.n(2).goal));
}

TEST_CASE("the old primary resumes when no standby can take over", "[fsm][failover]") {
  Group g = two_node_group();
  lose_primary(g, 1);
  g.decide();
  REQUIRE_GOAL(g, 2, S::ReportLsn);
  // The standby dies too before reporting; then the old primary comes back.
  g.lose(2);
  g.n(1).health = Health::Good;
  g.pass(g.settings.node_lost_timeout + 100);
  g.n(1).reported = S::Demoted;
  g.n(1).reported_goal_version = g.n(1).goal_version;
  g.n(1).last_report_at = g.now;
  g.decide();
  REQUIRE_GOAL(g, 1, S::WaitPrimary);
}

TEST_CASE("a stale report naming the new goal is not taken for having reached it", "[fsm][versions]") {
  Group g = two_node_group();
  // Node 2 is catchingup again after a failover elsewhere, but its last report
  // (catchingup) predates that goal: it must not be moved on as if it were there.
  g.n(2).goal = S::CatchingUp;
  g.n(2).goal_version += 2;
  g.n(2).reported = S::CatchingUp;
  g.n(2).maintenance_requested = true;
  g.decide();
  REQUIRE_GOAL(g, 2, S::CatchingUp);
  g.reach(2);
  g.decide();
  REQUIRE_GOAL(g, 2, S::WaitMaintenance);
}

TEST_CASE("I1 holds whatever the snapshot: decide refuses a second writer", "[fsm][i1]") {
  Group g = two_node_group();
  g.n(2).goal = S::Single;  // a corrupt snapshot
  REQUIRE_THROWS(pgf::decide(g.snap, g.settings, g.now));
}
