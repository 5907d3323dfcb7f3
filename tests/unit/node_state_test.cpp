#include <catch2/catch.hpp>

#include "common/node_state.h"
#include "common/sync_config.h"

using namespace pgf;

TEST_CASE("every node state has a unique name that parses back", "[node_state]") {
  for (const auto& i : kNodeStates) {
    REQUIRE(parse_node_state(i.name) == i.state);
    REQUIRE(!i.meaning.empty());
  }
  REQUIRE_FALSE(parse_node_state("stop_replication").has_value());
}

TEST_CASE("only single, wait_primary and primary accept writes", "[node_state]") {
  int writable = 0;
  for (const auto& i : kNodeStates) writable += accepts_writes(i.state) ? 1 : 0;
  REQUIRE(writable == 3);
  REQUIRE(is_primary_role(NodeState::Draining));
  REQUIRE_FALSE(accepts_writes(NodeState::Draining));
}

TEST_CASE("synchronous_standby_names round-trips", "[sync_config]") {
  auto c = SyncConfig::any(1, {3, 2, 3});
  REQUIRE(c.standbys == std::vector<NodeId>{2, 3});
  REQUIRE(c.to_guc() == "ANY 1 (pgfailover_node_2, pgfailover_node_3)");
  REQUIRE(SyncConfig::from_guc(c.to_guc()) == c);
  REQUIRE(SyncConfig::from_guc("") == SyncConfig::off());
  REQUIRE_FALSE(SyncConfig::from_guc("FIRST 1 (a)").has_value());
  REQUIRE_FALSE(SyncConfig::from_guc("ANY 0 (pgfailover_node_2)").has_value());
  REQUIRE_FALSE(SyncConfig::from_guc("ANY 1 (pgfailover_node_x)").has_value());
  REQUIRE(SyncConfig::any(2, {}) == SyncConfig::off());
}
