// docs/state-machine.md explains every state and every rule the code has.
#include <catch2/catch.hpp>

#include "common/fs.h"
#include "keeper/transition_table.h"
#include "monitor/group_state_machine.h"

using namespace pgf;

TEST_CASE("docs/state-machine.md names every state and every group rule", "[docs]") {
  std::string doc = read_file(std::string(PGFAILOVER_DOCS_DIR) + "/state-machine.md");
  for (const auto& s : kNodeStates) {
    INFO("state " << s.name);
    REQUIRE(doc.find("`" + std::string(s.name) + "`") != std::string::npos);
  }
  for (const auto& r : group_rules()) {
    INFO("rule " << r.name);
    REQUIRE(doc.find("`" + std::string(r.name) + "`") != std::string::npos);
  }
}

TEST_CASE("the keeper table refuses pairs it does not have, naming what it allows", "[keeper][table]") {
  REQUIRE(find_transition(NodeState::Init, NodeState::Primary) == nullptr);
  try {
    require_transition(NodeState::Init, NodeState::Primary);
    FAIL("no error");
  } catch (const std::exception& e) {
    std::string msg = e.what();
    REQUIRE(msg.find("no transition from init to primary") != std::string::npos);
    REQUIRE(msg.find("single") != std::string::npos);
  }
  // Every state can leave the group, and every pair appears once.
  for (const auto& s : kNodeStates) REQUIRE(find_transition(s.state, NodeState::Dropped) != nullptr);
  for (const auto& a : transitions()) {
    int same = 0;
    for (const auto& b : transitions()) same += a.from == b.from && a.to == b.to;
    REQUIRE(same == 1);
  }
}

TEST_CASE("a primary alone for network_partition_timeout fences itself, others never do", "[keeper][fence]") {
  KeeperTurnFacts f;
  f.now_ms = 100'000;
  f.network_partition_timeout_ms = 10'000;
  f.last_monitor_contact_ms = 89'000;
  f.last_standby_seen_ms = 85'000;
  auto plan = plan_turn(NodeState::Primary, f);
  REQUIRE(plan.kind == TurnPlan::Kind::Fence);
  REQUIRE(plan.next_state == NodeState::Demoted);
  REQUIRE(plan.why.find("fencing") != std::string::npos);
  f.last_standby_seen_ms = 95'000;  // a standby streams: not alone
  REQUIRE(plan_turn(NodeState::Primary, f).kind == TurnPlan::Kind::Steady);
  f.last_standby_seen_ms = 0;
  REQUIRE(plan_turn(NodeState::WaitPrimary, f).kind == TurnPlan::Kind::Steady);  // nobody can fail it over
  REQUIRE(plan_turn(NodeState::Single, f).kind == TurnPlan::Kind::Steady);
  f.fresh_goal = NodeState::Primary;
  f.last_monitor_contact_ms = f.now_ms;
  REQUIRE(plan_turn(NodeState::Primary, f).kind == TurnPlan::Kind::Steady);
  f.fresh_goal = NodeState::Draining;
  auto t = plan_turn(NodeState::Primary, f);
  REQUIRE(t.kind == TurnPlan::Kind::Transition);
  REQUIRE(t.next_state == NodeState::Draining);
}
