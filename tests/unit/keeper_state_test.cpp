// KeeperState on a temporary SQLite file: round trips, transitions, and one
// clear error line for a missing, corrupt or foreign database.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "common/error.h"
#include "common/fs.h"
#include "keeper/keeper_state.h"

using namespace pgf;

namespace {

KeeperRecord identity() {
  KeeperRecord r;
  r.node_id = 7;
  r.formation = "default";
  r.group_id = 0;
  r.name = "idp001";
  return r;
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos; }

}  // namespace

TEST_CASE("keeper state: create, reopen, and every field round-trips", "[keeper][state]") {
  TempDir dir("keeper-state");
  auto file = dir / "keeper.db";
  REQUIRE_FALSE(KeeperState::exists(file));
  {
    auto s = KeeperState::create(file, identity());
    REQUIRE(s.record().node_id == 7);
    REQUIRE(s.record().current == NodeState::Init);
    REQUIRE(s.record().created_at_ms > 0);
    REQUIRE_FALSE(s.record().in_progress.has_value());
  }
  REQUIRE(KeeperState::exists(file));
  REQUIRE_FALSE(fs::exists(dir / "keeper.db.creating"));
  REQUIRE_THROWS_WITH(KeeperState::create(file, identity()), Catch::Contains("already exists"));

  auto s = KeeperState::open(file);
  KeeperRecord r = s.record();
  r.current = NodeState::Secondary;
  r.state_changed_at_ms = 1234;
  r.upstream_id = 3;
  r.upstream_conninfo = "host='10.0.0.3' port='5432'";
  r.last_goal = NodeState::ReportLsn;
  r.last_goal_at_ms = 5678;
  r.in_progress = TransitionInProgress{NodeState::Secondary, NodeState::ReportLsn, 999};
  r.last_monitor_contact_ms = 111;
  r.last_standby_seen_ms = 222;
  r.network_partition_timeout_ms = 20000;
  r.keeper_poll_ms = 500;
  r.data_origin = DataOrigin::BaseBackup;
  s.save(r);
  auto again = KeeperState::open(file);
  KeeperRecord expect = s.record();
  REQUIRE(again.record() == expect);
  REQUIRE(again.record().upstream_id == NodeId{3});
  REQUIRE(again.record().in_progress == TransitionInProgress{NodeState::Secondary, NodeState::ReportLsn, 999});
}

TEST_CASE("keeper state: the current state advances only when a transition finishes", "[keeper][state]") {
  TempDir dir("keeper-state");
  auto file = dir / "keeper.db";
  KeeperState::create(file, identity());
  {
    auto s = KeeperState::open(file);
    s.begin_transition(NodeState::Init, NodeState::Single, 100);
    // kill -9 here: the next run sees the old state and the transition in progress.
  }
  {
    auto s = KeeperState::open(file);
    REQUIRE(s.record().current == NodeState::Init);
    REQUIRE(s.record().in_progress == TransitionInProgress{NodeState::Init, NodeState::Single, 100});
    REQUIRE(s.record().last_goal == NodeState::Single);
    s.finish_transition(NodeState::Single, 3, 200);
  }
  auto s = KeeperState::open(file);
  REQUIRE(s.record().current == NodeState::Single);
  REQUIRE(s.record().state_changed_at_ms == 200);
  REQUIRE_FALSE(s.record().in_progress.has_value());

  s.set_upstream(2, "host=a");
  s.set_data_origin(DataOrigin::Adopted);
  auto t = KeeperState::open(file);
  REQUIRE(t.record().upstream_id == NodeId{2});
  REQUIRE(t.record().data_origin == DataOrigin::Adopted);
  t.set_upstream(std::nullopt, "");
  REQUIRE_FALSE(KeeperState::open(file).record().upstream_id.has_value());
}

TEST_CASE("keeper state: missing, corrupt and foreign files are one clear error", "[keeper][state]") {
  TempDir dir("keeper-state");
  auto missing = dir / "missing.db";
  REQUIRE_THROWS_WITH(KeeperState::open(missing), Catch::Contains("does not exist"));

  auto garbage = dir / "garbage.db";
  write_file_atomic(garbage, std::string(4096, 'x'));
  try {
    KeeperState::open(garbage);
    FAIL("opened a garbage file");
  } catch (const Error& e) {
    std::string msg = e.what();
    REQUIRE(one_line(msg));
    REQUIRE_THAT(msg, Catch::Contains("is corrupt or not a pgfailover keeper database"));
    REQUIRE_THAT(msg, Catch::Contains(garbage.string()));
  }

  auto foreign = dir / "foreign.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(foreign.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  REQUIRE_THROWS_WITH(KeeperState::open(foreign), Catch::Contains("not pgfailover's"));

  // Ours, but with a state name we do not know (written by hand).
  auto file = dir / "keeper.db";
  KeeperState::create(file, identity());
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE keeper SET current_state = 'bogus'", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  REQUIRE_THROWS_WITH(KeeperState::open(file), Catch::Contains("unknown current state \"bogus\""));

  // A truncated file.
  auto truncated = dir / "truncated.db";
  KeeperState::create(truncated, identity());
  auto content = read_file(truncated);
  write_file_atomic(truncated, content.substr(0, 1500));
  REQUIRE_THROWS_WITH(KeeperState::open(truncated), Catch::Contains("is corrupt or not a pgfailover keeper database"));
}
