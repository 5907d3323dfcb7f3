// The keeper against real Postgres 15 on 127.0.0.1, run as the postgres user.
// First every action of the transition table through PostgresNode directly
// (no monitor), then whole nodes through `pgfailover create` and `run`.
#include <catch2/catch.hpp>

#include <signal.h>

#include <memory>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/log.h"
#include "common/pg_connection.h"
#include "keeper/keeper_state.h"
#include "keeper/postgres_node.h"
#include "keeper/transition_table.h"
#include "tests/support/harness.h"

using namespace pgf;
using namespace pgf::test;
using namespace std::chrono_literals;

namespace {

LogSink& test_log() {
  static LogSink sink(stderr, LogLevel::Warning);
  return sink;
}

// One data node driven action by action: its keeper state, its PostgresNode,
// and on destruction its postmaster killed by PID.
struct ActionNode {
  NodeId id;
  int port;
  fs::path pgdata;
  fs::path state_dir;
  std::unique_ptr<KeeperState> state;
  std::unique_ptr<PostgresNode> node;

  ActionNode(const TestDir& dir, NodeId id_, bool replace_data = false)
      : id(id_), port(free_port()), pgdata(dir / ("n" + std::to_string(id_))) {
    auto paths = InstancePaths::for_pgdata(pgdata);
    state_dir = paths.state_dir;
    make_dirs(state_dir, 0700);
    KeeperRecord rec;
    rec.node_id = id;
    rec.formation = "default";
    rec.name = "node_" + std::to_string(id);
    state = std::make_unique<KeeperState>(KeeperState::create(paths.keeper_db(), rec));
    PostgresNodeOptions o;
    o.pgdata = pgdata;
    o.port = port;
    o.hostname = "127.0.0.1";
    o.replace_data = replace_data;
    o.monitor_hosts = {"127.0.0.1"};
    o.socket_dir = paths.socket_dir();
    o.postgres_log = paths.postgres_log();
    o.binaries = PostgresBinaries::locate();
    node = std::make_unique<PostgresNode>(o, *state, Logger(test_log(), "node" + std::to_string(id)));
  }
  ~ActionNode() {
    node.reset();
    kill_postmaster(pgdata);
  }
  Peer peer() const { return Peer{id, "node_" + std::to_string(id), "127.0.0.1", port}; }
  PgConnection sql() const { return node->postgres().connect(); }
  // Runs each statement in turn (libpq's extended protocol takes one at a time).
  void exec(std::initializer_list<std::string> statements) {
    auto c = sql();
    for (const auto& s : statements) c.exec(s);
  }
  std::string value(const std::string& q) { return sql().query_value(q).value_or("NULL"); }

  // Runs the actions in order, each until it is Done.
  void run(std::initializer_list<Action> actions, const Goal& g, std::chrono::seconds timeout = 30s) {
    for (Action a : actions) {
      auto deadline = steady_ms() + std::chrono::milliseconds(timeout).count();
      while (node->run(a, g) == Progress::Waiting) {
        if (steady_ms() > deadline) FAIL("action " << name(a) << " still waiting after " << timeout.count() << " s");
        std::this_thread::sleep_for(50ms);
      }
    }
  }
};

Goal goal(NodeState s, std::vector<Peer> peers, std::optional<Peer> upstream = std::nullopt) {
  Goal g;
  g.state = s;
  g.peers = std::move(peers);
  g.upstream = std::move(upstream);
  return g;
}

bool streams_to(ActionNode& primary, NodeId standby) {
  return primary.value("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '" +
                       standby_application_name(standby) + "'") == "1";
}

}  // namespace

TEST_CASE("actions: bootstrap a primary, clone a standby, promote it, rewind the old primary", "[keeper][actions]") {
  TestDir dir("keeper-actions");
  ActionNode n1(dir, 1), n2(dir, 2);

  // Bootstrap: initdb, roles, slot and pg_hba entries for the peer.
  auto g1 = goal(NodeState::Single, {n2.peer()});
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess, Action::ApplySyncConfig}, g1);
  auto f1 = n1.node->collect_facts({n2.peer()});
  REQUIRE(f1.pg_running);
  REQUIRE_FALSE(f1.in_recovery);
  REQUIRE(f1.timeline == 1u);
  REQUIRE(f1.peers_ready == std::vector<NodeId>{2});
  REQUIRE(f1.system_identifier.has_value());
  REQUIRE(n1.value("SHOW wal_log_hints") == "on");
  REQUIRE(n1.value("SELECT rolreplication FROM pg_roles WHERE rolname = 'pgfailover_replicator'") == "t");
  REQUIRE(n1.value("SELECT count(*) FROM pg_roles WHERE rolname = 'pgfailover_monitor'") == "1");
  REQUIRE(n1.state->record().data_origin == DataOrigin::Initdb);
  // Idempotent: running the whole list again changes nothing.
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess, Action::ApplySyncConfig}, g1);

  // A standby: base backup with the slot, streaming.
  auto g2 = goal(NodeState::CatchingUp, {n1.peer()}, n1.peer());
  n2.run({Action::InitStandby, Action::FollowUpstream}, g2);
  wait_until([&] { return streams_to(n1, 2); }, 20s, "node 2 streaming from node 1");
  n1.exec({"CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"});
  wait_until([&] { return n2.value("SELECT count(*) FROM t") == "1"; }, 10s, "the row on the standby");
  auto f2 = n2.node->collect_facts({n1.peer()});
  REQUIRE(f2.in_recovery);
  REQUIRE(f2.upstream == NodeId{1});
  REQUIRE(f2.streaming);
  REQUIRE(f2.system_identifier == f1.system_identifier);
  REQUIRE(n2.state->record().data_origin == DataOrigin::BaseBackup);
  // Steady state of a standby: nothing to do, nothing restarted.
  auto pid2 = postmaster_pid(n2.pgdata);
  n2.run({Action::StartPostgres, Action::FollowUpstream}, g2);
  REQUIRE(postmaster_pid(n2.pgdata) == pid2);

  // Synchronous replication as assigned, reported as in effect.
  g1.state = NodeState::Primary;
  g1.sync = SyncConfig::any(1, {2});
  n1.run({Action::StartPostgres, Action::EnsureReplicationAccess, Action::ApplySyncConfig}, g1);
  REQUIRE(n1.node->collect_facts({n2.peer()}).sync == SyncConfig::any(1, {2}));
  n1.sql().exec("INSERT INTO t VALUES (2)");  // acknowledged by the synchronous standby
  auto f1s = n1.node->collect_facts({n2.peer()});
  REQUIRE(f1s.standby_streaming);
  REQUIRE(f1s.replication_json.find("pgfailover_node_2") != std::string::npos);

  // Failover: node 2 stops following, replays everything and is promoted. Node
  // 1 goes on alone for a moment (as if partitioned) and writes a row nobody has.
  g1.sync = SyncConfig::off();
  n1.run({Action::ApplySyncConfig}, g1);
  auto report = goal(NodeState::ReportLsn, {n1.peer()});
  n2.run({Action::StartPostgres, Action::StopReplication}, report);
  REQUIRE_FALSE(n2.node->collect_facts({n1.peer()}).upstream.has_value());
  n2.run({Action::StartPostgres, Action::StopReplication, Action::WaitForReplay}, report);
  n1.sql().exec("INSERT INTO t VALUES (99)");  // diverges from node 2's future timeline
  auto promote = goal(NodeState::WaitPrimary, {n1.peer()});
  auto t0 = steady_ms();
  n2.run({Action::Promote, Action::Checkpoint, Action::EnsureReplicationAccess, Action::ApplySyncConfig}, promote);
  INFO("promotion took " << steady_ms() - t0 << " ms");
  auto f2p = n2.node->collect_facts({n1.peer()});
  REQUIRE_FALSE(f2p.in_recovery);
  REQUIRE(f2p.timeline == 2u);
  REQUIRE(f2p.peers_ready == std::vector<NodeId>{1});
  n2.sql().exec("INSERT INTO t VALUES (3)");

  // The old primary: demoted (stopped, standby.signal), then rewound and following node 2.
  auto demote = goal(NodeState::Demoted, {n2.peer()});
  n1.run({Action::StopPostgres, Action::EnterStandbyMode}, demote);
  REQUIRE_FALSE(postmaster_pid(n1.pgdata).has_value());
  REQUIRE(fs::exists(n1.pgdata / "standby.signal"));
  auto rejoin = goal(NodeState::CatchingUp, {n2.peer()}, n2.peer());
  t0 = steady_ms();
  n1.run({Action::RewindIfNeeded, Action::FollowUpstream}, rejoin);
  INFO("rejoin took " << steady_ms() - t0 << " ms");
  wait_until([&] { return streams_to(n2, 1); }, 20s, "node 1 streaming from node 2");
  wait_until([&] { return n1.value("SELECT string_agg(x::text, ',' ORDER BY x) FROM t") == "1,2,3"; }, 10s,
             "node 1 with node 2's rows and without its own diverged row");
  auto f1r = n1.node->collect_facts({n2.peer()});
  REQUIRE(f1r.in_recovery);
  REQUIRE(f1r.timeline == 2u);
  REQUIRE(f1r.upstream == NodeId{2});
  // Nothing was moved aside: pg_rewind did the job.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    REQUIRE(e.path().filename().string().find("rewind-failed") == std::string::npos);
  }
  // Running the rejoin again is a no-op.
  auto pid1 = postmaster_pid(n1.pgdata);
  n1.run({Action::RewindIfNeeded, Action::FollowUpstream}, rejoin);
  REQUIRE(postmaster_pid(n1.pgdata) == pid1);
}

TEST_CASE("actions: pg_rewind that cannot work falls back to a fresh base backup", "[keeper][actions]") {
  TestDir dir("keeper-fallback");
  ActionNode n1(dir, 1), n2(dir, 2);
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess, Action::ApplySyncConfig},
         goal(NodeState::Single, {n2.peer()}));
  n2.run({Action::InitStandby, Action::FollowUpstream}, goal(NodeState::CatchingUp, {n1.peer()}, n1.peer()));
  n1.exec({"CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"});
  wait_until([&] { return n2.value("SELECT count(*) FROM t") == "1"; }, 20s, "the row on the standby");

  auto report = goal(NodeState::ReportLsn, {n1.peer()});
  n2.run({Action::StartPostgres, Action::StopReplication, Action::WaitForReplay}, report);
  n1.exec({"INSERT INTO t VALUES (99)", "SELECT pg_switch_wal()"});
  n2.run({Action::Promote, Action::Checkpoint, Action::EnsureReplicationAccess}, goal(NodeState::WaitPrimary, {n1.peer()}));
  n2.sql().exec("INSERT INTO t VALUES (2)");
  n1.run({Action::StopPostgres, Action::EnterStandbyMode}, goal(NodeState::Demoted, {n2.peer()}));
  // Lose the old primary's WAL: pg_rewind cannot find where it forked.
  for (const auto& e : fs::directory_iterator(n1.pgdata / "pg_wal")) {
    if (e.is_regular_file() && e.path().filename().string().size() == 24) fs::remove(e.path());
  }
  n1.run({Action::RewindIfNeeded, Action::FollowUpstream}, goal(NodeState::CatchingUp, {n2.peer()}, n2.peer()));
  wait_until([&] { return n1.value("SELECT string_agg(x::text, ',' ORDER BY x) FROM t") == "1,2"; }, 20s,
             "node 1 cloned again from node 2");
  int moved = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("n1.rewind-failed.", 0) == 0) {
      ++moved;
      REQUIRE(fs::exists(e.path() / "PG_VERSION"));  // moved aside, not deleted
    }
  }
  REQUIRE(moved == 1);
  REQUIRE(n1.state->record().data_origin == DataOrigin::BaseBackup);
}

TEST_CASE("actions: adopt a running data directory with a table in it", "[keeper][actions]") {
  TestDir dir("keeper-adopt");
  ActionNode n1(dir, 1), n2(dir, 2);
  // Somebody's Postgres: initdb without checksums, started on its own socket
  // directory, not a child of the keeper.
  {
    LocalPostgres theirs(n1.pgdata, n1.port, dir.path(), PostgresBinaries::locate(), Logger(test_log(), "theirs"));
    run_checked({.argv = {theirs.binaries().tool("initdb"), "-D", n1.pgdata.string(), "-A", "trust"}}, "initdb");
    auto child = theirs.start(dir / "theirs.log");
    auto c = theirs.connect();
    c.exec("CREATE TABLE adopted (x int)");
    c.exec("INSERT INTO adopted VALUES (42)");
    child.release();
  }
  auto foreign_pid = postmaster_pid(n1.pgdata);
  REQUIRE(foreign_pid.has_value());
  REQUIRE_THROWS(n1.sql());  // not reachable where the keeper looks

  auto g1 = goal(NodeState::Single, {n2.peer()});
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess, Action::ApplySyncConfig}, g1);
  REQUIRE(postmaster_pid(n1.pgdata) != foreign_pid);  // restarted under the keeper
  REQUIRE(n1.value("SELECT x FROM adopted") == "42");
  REQUIRE(n1.value("SHOW wal_log_hints") == "on");
  REQUIRE(n1.state->record().data_origin == DataOrigin::Adopted);

  // The table reaches a standby.
  n2.run({Action::InitStandby, Action::FollowUpstream}, goal(NodeState::CatchingUp, {n1.peer()}, n1.peer()));
  wait_until([&] { return n2.value("SELECT x FROM adopted") == "42"; }, 20s, "the adopted table on the standby");
}

TEST_CASE("actions: a standby refuses a non-empty data directory unless told to move it aside", "[keeper][actions]") {
  TestDir dir("keeper-replace");
  ActionNode n1(dir, 1);
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess}, goal(NodeState::Single, {Peer{2, "node_2", "127.0.0.1", 1}, Peer{3, "node_3", "127.0.0.1", 1}}));
  ActionNode n2(dir, 2), n3(dir, 3, /*replace_data=*/true);
  for (auto* n : {&n2, &n3}) {
    make_dirs(n->pgdata, 0700);
    write_file_atomic(n->pgdata / "precious.txt", "keep me");
  }
  auto g = goal(NodeState::CatchingUp, {n1.peer()}, n1.peer());
  REQUIRE_THROWS_WITH(n2.node->run(Action::InitStandby, g), Catch::Contains("refusing to replace the non-empty data directory"));
  REQUIRE(fs::exists(n2.pgdata / "precious.txt"));

  n3.run({Action::InitStandby, Action::FollowUpstream}, g);
  REQUIRE(n3.value("SELECT pg_is_in_recovery()") == "t");
  int moved = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("n3.replaced.", 0) == 0) {
      ++moved;
      REQUIRE(read_file(e.path() / "precious.txt") == "keep me");
    }
  }
  REQUIRE(moved == 1);
}
