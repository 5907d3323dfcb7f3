// The keeper against real Postgres 15 on 127.0.0.1, run as the postgres user.
// First every action of the transition table through PostgresNode directly
// (no monitor), then whole nodes through `pgfailover create` and `run`.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>
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
#include "tests/support/cluster.h"
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
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess},
         goal(NodeState::Single, {Peer{2, "node_2", "127.0.0.1", 1}, Peer{3, "node_3", "localhost", 1}}));
  // A host name is granted by the addresses it resolves to, then by name.
  auto hba = read_file(n1.pgdata / "pg_hba.conf");
  REQUIRE_THAT(hba, Catch::Contains("host replication pgfailover_replicator 127.0.0.1/32 trust # node 3"));
  REQUIRE_THAT(hba, Catch::Contains("host replication pgfailover_replicator localhost trust # node 3"));
  REQUIRE(hba.find("127.0.0.1/32 trust # node 3") < hba.find("localhost trust # node 3"));
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

TEST_CASE("actions: an initdb or base backup interrupted by kill -9 is started over", "[keeper][actions]") {
  TestDir dir("keeper-interrupted");
  ActionNode n1(dir, 1), n2(dir, 2);
  // What a keeper killed during initdb leaves: part of a data directory.
  make_dirs(n1.pgdata / "base", 0700);
  write_file_atomic(n1.pgdata / "PG_VERSION", "15\n", 0600);
  n1.state->set_data_origin(DataOrigin::InitdbStarted);
  n1.run({Action::InitPrimary, Action::EnsureReplicationAccess}, goal(NodeState::Single, {n2.peer()}));
  REQUIRE(n1.value("SELECT 1") == "1");
  REQUIRE(n1.state->record().data_origin == DataOrigin::Initdb);

  // ... and during a base backup.
  make_dirs(n2.pgdata / "global", 0700);
  write_file_atomic(n2.pgdata / "backup_label", "partial", 0600);
  n2.state->set_data_origin(DataOrigin::BaseBackupStarted);
  n2.run({Action::InitStandby, Action::FollowUpstream}, goal(NodeState::CatchingUp, {n1.peer()}, n1.peer()));
  REQUIRE(n2.value("SELECT pg_is_in_recovery()") == "t");
  REQUIRE(n2.state->record().data_origin == DataOrigin::BaseBackup);
}

// ---------------------------------------------------------------- whole nodes

namespace {


// A primary `p` and its secondary `s`, with a table t.
void form_pair(const TestMonitor& m, TestNode& p, TestNode& s) {
  p.create(m);
  p.start();
  wait_states(m, {{p.name, "single"}}, 60s, {&p});
  s.create(m);
  s.start();
  wait_states(m, {{p.name, "primary"}, {s.name, "secondary"}}, 60s, {&p, &s});
}

// A standby that stops receiving WAL while it still looks like a streaming
// secondary to its keeper and the monitor: its walreceiver is frozen (SIGSTOP),
// so commits are acknowledged by the other standbys only. lose_unreceived()
// kills the walreceiver, which drops what sits in its socket (Postgres
// restarts its processes and recovers from its own WAL).
struct LaggingStandby {
  int receiver;
  bool killed = false;
  explicit LaggingStandby(const TestNode& n) : receiver(std::stoi(n.value("SELECT pid FROM pg_stat_wal_receiver"))) {
    REQUIRE(::kill(receiver, SIGSTOP) == 0);
    wait_until(
        [&] {
          auto stat = read_file("/proc/" + std::to_string(receiver) + "/stat");
          return stat[stat.rfind(')') + 2] == 'T';
        },
        5s, n.name + "'s walreceiver stopped");
  }
  void lose_unreceived() {
    ::kill(receiver, SIGKILL);
    killed = true;
  }
  ~LaggingStandby() {
    if (!killed) ::kill(receiver, SIGCONT);
  }
};

}  // namespace

TEST_CASE("e2e: primary and streaming secondary, kill -9 of the postmaster alone is restarted, no failover",
          "[keeper][e2e]") {
  TestDir dir("keeper-e2e-pair");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b");
  form_pair(m, a, b);
  REQUIRE(a.value("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1");
  REQUIRE(b.value("SELECT pg_is_in_recovery()") == "t");
  {
    // Goal versions travel both ways: each keeper reports the version of the
    // goal it reached, the one the decider last assigned.
    auto mc = PgConnection::connect("host=" + InstancePaths::for_pgdata(m.pgdata).state_dir.string() +
                                        " port=" + std::to_string(m.port) + " dbname=pgfailover",
                                    "test monitor (owner)");
    auto r = mc.exec("SELECT name, goal_version, reported_goal_version FROM pgfailover.node ORDER BY id");
    REQUIRE(r.rows() == 2);
    for (int i = 0; i < r.rows(); ++i) {
      INFO("node " << r.str(i, "name"));
      REQUIRE(r.int64(i, "goal_version") > 0);
      REQUIRE(r.int64(i, "reported_goal_version") == r.int64(i, "goal_version"));
    }
  }
  a.sql().exec("CREATE TABLE t (x int)");
  a.sql().exec("INSERT INTO t VALUES (1)");  // synchronous: b has it once this returns
  b.eventually("SELECT count(*) FROM t", "1");

  auto old_pid = postmaster_pid(a.pgdata);
  REQUIRE(old_pid.has_value());
  kill_postmaster(a.pgdata);
  auto restarted = wait_until(
      [&] {
        auto now = m.states();
        // No failover, ever: a keeps a writable role, b stays a standby of it
        // (b may be counted out of sync for a moment while a restarts).
        bool a_primary = now["a"].second == "primary" || now["a"].second == "wait_primary";
        bool b_standby = now["b"].second == "secondary" || now["b"].second == "catchingup";
        if (!a_primary || !b_standby) FAIL("a failover started: " << m.service->log());
        auto pid = postmaster_pid(a.pgdata);
        return pid && pid != old_pid && a.value("SELECT count(*) FROM t") == "1";
      },
      30s, "the keeper restarting its Postgres");
  INFO("Postgres back after " << restarted.count() << " ms");
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}}, 30s, {&a, &b});
  REQUIRE(a.log().find("exited unexpectedly") != std::string::npos);
  a.sql().exec("INSERT INTO t VALUES (2)");
  b.eventually("SELECT count(*) FROM t", "2");
}

TEST_CASE("e2e: an existing data directory with a table is adopted as primary and reaches the standby",
          "[keeper][e2e]") {
  TestDir dir("keeper-e2e-adopt");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b");
  {
    // An existing, running database: not initialised by pgfailover, not on its socket.
    LocalPostgres theirs(a.pgdata, a.port, dir.path(), PostgresBinaries::locate(), Logger(test_log(), "theirs"));
    run_checked({.argv = {theirs.binaries().tool("initdb"), "-D", a.pgdata.string(), "-A", "trust"}}, "initdb");
    auto child = theirs.start(dir / "theirs.log");
    auto c = theirs.connect();
    c.exec("CREATE TABLE users (name text)");
    c.exec("INSERT INTO users VALUES ('alice')");
    child.release();
  }
  a.create(m, {"--dbname", "keycloak"});
  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  b.create(m);
  b.start();
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}}, 60s, {&a, &b});
  REQUIRE(a.value("SELECT name FROM users") == "alice");
  b.eventually("SELECT count(*) FROM pg_database WHERE datname = 'keycloak'", "1");
  b.eventually("SELECT name FROM users", "alice");
  a.sql().exec("INSERT INTO users VALUES ('bob')");
  b.eventually("SELECT string_agg(name, ',' ORDER BY name) FROM users", "alice,bob");
}

TEST_CASE("e2e: the whole primary node lost: the secondary is promoted, the old node rejoins by itself",
          "[keeper][e2e]") {
  TestDir dir("keeper-e2e-failover");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b");
  form_pair(m, a, b);
  a.sql().exec("CREATE TABLE t (x int)");
  a.sql().exec("INSERT INTO t VALUES (1)");

  auto t0 = steady_ms();
  a.service->kill9_with_postgres();
  wait_states(m, {{"b", "wait_primary"}}, 30s, {&b});
  INFO("failover took " << steady_ms() - t0 << " ms");
  REQUIRE(b.value("SELECT pg_is_in_recovery()") == "f");
  b.eventually("SELECT count(*) FROM t", "1");  // acknowledged before the loss: kept
  b.sql().exec("INSERT INTO t VALUES (2)");

  t0 = steady_ms();
  a.start();
  wait_states(m, {{"a", "secondary"}, {"b", "primary"}}, 60s, {&a, &b});
  INFO("rejoin took " << steady_ms() - t0 << " ms");
  REQUIRE(a.value("SELECT pg_is_in_recovery()") == "t");
  a.eventually("SELECT string_agg(x::text, ',' ORDER BY x) FROM t", "1,2");
  b.sql().exec("INSERT INTO t VALUES (3)");
  a.eventually("SELECT count(*) FROM t", "3");
}

TEST_CASE("e2e: three nodes, primary lost: the most advanced standby is promoted and the third follows it",
          "[keeper][e2e]") {
  TestDir dir("keeper-e2e-three");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b"), c(dir, "c");
  form_pair(m, a, b);
  // c prefers to be promoted, but it will have less WAL: WAL wins (I4).
  c.create(m, {"--candidate-priority", "100"});
  c.start();
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}, {"c", "secondary"}}, 60s, {&a, &b, &c});
  a.sql().exec("CREATE TABLE t (x int)");
  wait_until([&] { return c.value("SELECT count(*) FROM pg_class WHERE relname = 't'") == "1"; }, 10s, "t on c");

  // c stops receiving WAL: the next commit is acknowledged by b alone.
  LaggingStandby lagging(c);
  a.sql().exec("INSERT INTO t VALUES (1)");
  b.eventually("SELECT count(*) FROM t", "1");
  REQUIRE(c.value("SELECT count(*) FROM t") == "0");
  a.service->kill9_with_postgres();
  lagging.lose_unreceived();

  wait_states(m, {{"b", "wait_primary"}}, 30s, {&b, &c});
  wait_states(m, {{"b", "primary"}, {"c", "secondary"}}, 60s, {&b, &c});
  c.eventually("SELECT count(*) FROM t", "1");
  b.sql().exec("INSERT INTO t VALUES (2)");
  c.eventually("SELECT count(*) FROM t", "2");
}

TEST_CASE("e2e: kill -9 of a keeper in the middle of a promotion and of a rejoin", "[keeper][e2e]") {
  TestDir dir("keeper-e2e-crash");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b");
  a.create(m);
  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  b.create(m);
  // b's keeper dies right after pg_promote returned, before it records wait_primary.
  b.start({{"PGFAILOVER_FAULT_KILL_AFTER_ACTION", "promote"}});
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}}, 60s, {&a, &b});
  a.sql().exec("CREATE TABLE t (x int)");
  a.sql().exec("INSERT INTO t VALUES (1)");

  a.service->kill9_with_postgres();
  wait_until([&] { return !b.service->running(); }, 30s, "b's keeper killed in the middle of its promotion");
  REQUIRE(b.log().find("killing the keeper after promote") != std::string::npos);
  REQUIRE(b.value("SELECT pg_is_in_recovery()") == "f");  // Postgres was promoted and kept running
  {
    auto st = KeeperState::open(b.state_dir / "keeper.db");
    REQUIRE(st.record().current == NodeState::PreparePromotion);
    REQUIRE(st.record().in_progress.has_value());
  }
  b.start();
  wait_states(m, {{"b", "wait_primary"}}, 30s, {&b});

  // a's keeper dies right after pg_rewind, before it follows b.
  a.start({{"PGFAILOVER_FAULT_KILL_AFTER_ACTION", "rewind_if_needed"}});
  wait_until([&] { return !a.service->running(); }, 60s, "a's keeper killed in the middle of its rejoin");
  REQUIRE(a.log().find("killing the keeper after rewind_if_needed") != std::string::npos);
  a.start();
  wait_states(m, {{"a", "secondary"}, {"b", "primary"}}, 60s, {&a, &b});
  b.sql().exec("INSERT INTO t VALUES (2)");
  a.eventually("SELECT string_agg(x::text, ',' ORDER BY x) FROM t", "1,2");
}

TEST_CASE("e2e: bad input, a second keeper and a second create get one clear line", "[keeper][e2e]") {
  TestDir dir("keeper-e2e-input");
  TestNode a(dir, "a");
  auto unreachable_port = free_port();
  auto unreachable = "postgresql://pgfailover_node@127.0.0.1:" + std::to_string(unreachable_port) + "/pgfailover";
  auto one_line = [](const CommandResult& r) {
    auto e = r.err;
    while (!e.empty() && e.back() == '\n') e.pop_back();
    return !r.status.ok() && !e.empty() && e.find('\n') == std::string::npos;
  };
  auto r = pgfailover({"create", "postgres", "--pgdata", a.pgdata.string(), "--pgport", "70000", "--hostname",
                       "127.0.0.1", "--monitor", unreachable, "--ssl-self-signed"});
  REQUIRE(one_line(r));
  r = pgfailover({"create", "postgres", "--pgdata", a.pgdata.string(), "--pgport", std::to_string(a.port),
                  "--hostname", "bad host", "--monitor", unreachable, "--ssl-self-signed"});
  REQUIRE(one_line(r));
  REQUIRE_THAT(r.err, Catch::Contains("--hostname \"bad host\" is invalid"));
  r = pgfailover({"create", "postgres", "--pgdata", a.pgdata.string(), "--pgport", std::to_string(a.port),
                  "--hostname", "127.0.0.1", "--monitor", "postgresql://x:5/db?nonsense=1", "--ssl-self-signed"});
  REQUIRE(one_line(r));
  REQUIRE_THAT(r.err, Catch::Contains("malformed monitor URI"));
  r = pgfailover({"create", "postgres", "--pgdata", a.pgdata.string(), "--pgport", std::to_string(a.port),
                  "--hostname", "127.0.0.1", "--monitor", unreachable, "--ssl-self-signed"});
  REQUIRE(one_line(r));
  REQUIRE_THAT(r.err, Catch::Contains("cannot reach monitor at 127.0.0.1:" + std::to_string(unreachable_port) +
                                      ": connection refused"));
  REQUIRE_FALSE(fs::exists(a.state_dir / "pgfailover.conf"));  // nothing changed

  TestMonitor m(dir);
  a.create(m);
  auto again = pgfailover_ok({"create", "postgres", "--pgdata", a.pgdata.string(), "--pgport", std::to_string(a.port),
                              "--hostname", "127.0.0.1", "--monitor", m.uri(), "--name", "a", "--ssl-self-signed"});
  REQUIRE_THAT(again.out, Catch::Contains("already created"));
  auto mode = fs::status(a.state_dir / "pgfailover.conf").permissions() & fs::perms::all;
  REQUIRE(mode == (fs::perms::owner_read | fs::perms::owner_write));

  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  r = pgfailover({"run", "--pgdata", a.pgdata.string()});
  REQUIRE(one_line(r));
  REQUIRE_THAT(r.err, Catch::Contains("already running"));

  // SIGTERM (pgfailover stop): the keeper exits, Postgres keeps running.
  auto pm = postmaster_pid(a.pgdata);
  auto stop = pgfailover_ok({"stop", "--pgdata", a.pgdata.string()});
  REQUIRE_FALSE(a.service->running());
  REQUIRE(postmaster_pid(a.pgdata) == pm);
  // A new keeper adopts the running postmaster.
  a.start();
  wait_until([&] { return a.log().find("keeper of node a (id 1)") != std::string::npos; }, 10s, "the keeper started");
  std::this_thread::sleep_for(1500ms);
  REQUIRE(postmaster_pid(a.pgdata) == pm);
  // SIGINT (stop --postgres): both stop.
  pgfailover_ok({"stop", "--pgdata", a.pgdata.string(), "--postgres"});
  REQUIRE_FALSE(a.service->running());
  REQUIRE_FALSE(postmaster_pid(a.pgdata).has_value());

  // Dropped by the operator: Postgres stops, the monitor forgets the node,
  // the keeper exits by itself and its data stays.
  a.start();
  wait_states(m, {{"a", "single"}}, 30s, {&a});
  {
    auto c = PgConnection::connect("host=127.0.0.1 port=" + std::to_string(m.port) +
                                   " dbname=pgfailover user=pgfailover_node", "test monitor");
    c.exec("SELECT pgfailover.drop_node('default', 'a', false)");
  }
  wait_until([&] { return !a.service->running(); }, 30s, "the dropped node's keeper exiting");
  REQUIRE_FALSE(postmaster_pid(a.pgdata).has_value());
  REQUIRE(fs::exists(a.pgdata / "PG_VERSION"));
  wait_until([&] { return m.states().empty(); }, 10s, "the monitor forgetting the node");
  REQUIRE(KeeperState::open(a.state_dir / "keeper.db").record().current == NodeState::Dropped);
  r = pgfailover({"run", "--pgdata", a.pgdata.string()});
  REQUIRE(r.status.ok());  // a dropped node's keeper has nothing to run
}

TEST_CASE("e2e: a primary alone fences itself, and resumes when the monitor says so", "[keeper][e2e]") {
  TestDir dir("keeper-e2e-fence");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b");
  form_pair(m, a, b);
  {
    auto c = PgConnection::connect("host=127.0.0.1 port=" + std::to_string(m.port) +
                                   " dbname=pgfailover user=pgfailover_node", "test monitor");
    c.exec("SELECT pgfailover.set_monitor_setting('network_partition_timeout_ms', '1000')");
  }
  wait_until([&] { return KeeperState::open(a.state_dir / "keeper.db").record().network_partition_timeout_ms == 1000; },
             10s, "a's keeper learning the new timeout");

  // Partition a from everything: its standby and the monitor are gone.
  b.service->kill9_with_postgres();
  m.service->kill9_with_postgres();
  auto t0 = steady_ms();
  wait_until([&] { return KeeperState::open(a.state_dir / "keeper.db").record().current == NodeState::Demoted; }, 15s,
             "a fencing itself");
  INFO("fenced after " << steady_ms() - t0 << " ms");
  REQUIRE(a.log().find("fencing: no contact with the monitor nor any standby") != std::string::npos);
  REQUIRE_FALSE(postmaster_pid(a.pgdata).has_value());
  REQUIRE(fs::exists(a.pgdata / "standby.signal"));
  std::this_thread::sleep_for(1500ms);
  REQUIRE_FALSE(postmaster_pid(a.pgdata).has_value());  // stays down while alone

  // The monitor is back; b is still lost, so nobody took over: a resumes.
  m.service = std::make_unique<Service>(m.pgdata);
  wait_until(
      [&] {
        auto s = m.states()["a"];
        return (s.first == "primary" || s.first == "wait_primary") && s.first == s.second &&
               a.value("SELECT pg_is_in_recovery()") == "f";
      },
      60s, "a resuming as the primary");
  a.sql().exec("CREATE TABLE after_fence (x int)");
}

TEST_CASE("e2e: the elected standby fetches the WAL it misses from a more advanced one (fast_forward)", "[keeper][e2e]") {
  TestDir dir("keeper-e2e-ff");
  TestMonitor m(dir);
  TestNode a(dir, "a"), b(dir, "b"), c(dir, "c");
  a.create(m);
  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  b.create(m, {"--candidate-priority", "0"});  // may hold WAL, never promoted
  b.start();
  c.create(m);
  c.start();
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}, {"c", "secondary"}}, 60s, {&a, &b, &c});
  a.sql().exec("CREATE TABLE t (x int)");
  c.eventually("SELECT count(*) FROM pg_class WHERE relname = 't'", "1");

  LaggingStandby lagging(c);
  a.sql().exec("INSERT INTO t VALUES (1)");  // only b has it
  b.eventually("SELECT count(*) FROM t", "1");
  a.service->kill9_with_postgres();
  lagging.lose_unreceived();

  wait_states(m, {{"c", "primary"}, {"b", "secondary"}}, 60s, {&b, &c});
  REQUIRE(c.log().find("report_lsn -> fast_forward") != std::string::npos);
  c.eventually("SELECT count(*) FROM t", "1");  // fetched from b before the promotion
  c.sql().exec("INSERT INTO t VALUES (2)");
  b.eventually("SELECT count(*) FROM t", "2");
}
