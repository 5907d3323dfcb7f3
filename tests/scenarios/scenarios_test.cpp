// Fault-injection scenarios: the monitor, each data node and the client on
// hosts of their own (network namespaces joined by a bridge that lives in a
// namespace; see netlab.h), the real binary, a writer and a sampler on the
// client host. After each scenario the checker asserts, against the final
// primary: every acknowledged write is there (I2), no two nodes acknowledged
// writes at once (I1), the group is back to one primary and its secondaries by
// itself, and nothing the test made is left (processes, namespaces, mounts).
//
// Runs as root (namespaces, tmpfs); product processes run as the postgres user.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "tests/scenarios/scenario.h"

using namespace pgf;
using namespace pgf::scenario;
using namespace std::chrono_literals;

namespace {

NodeSpec node(std::string name, std::vector<std::string> args = {}) { return NodeSpec{std::move(name), std::move(args), {}, {}}; }

ClusterOptions two_nodes() { return ClusterOptions{{node("a"), node("b")}}; }

bool namespaces_available(std::string* why) {
  NetLab probe({"probe"});
  *why = probe.fallback_reason();
  return probe.isolated();
}

// Sets up the group, runs `body` (which returns the node that must be the
// final primary, or "" for any), checks I1/I2/stability and that nothing is
// left. Prints the scenario's duration and the checker's figures.
void run_scenario(const std::string& name, const ClusterOptions& options, bool needs_partitions,
                  const std::function<std::string(Cluster&)>& body) {
  if (needs_partitions) {
    std::string why;
    if (!namespaces_available(&why)) {
      WARN("scenario " << name << " skipped: it cuts network links, which needs network namespaces (" << why << ")");
      std::printf("scenario %s: SKIPPED (no network namespaces: %s)\n", name.c_str(), why.c_str());
      return;
    }
  }
  auto t0 = steady_ms();
  CheckResult result;
  std::vector<std::string> leftovers;
  std::string want_primary, final_primary, diag;
  {
    Cluster c(name, options);
    std::printf("scenario %s: group formed in %.1f s (%s)\n", name.c_str(), (steady_ms() - t0) / 1000.0,
                c.isolated() ? ("hosts in network namespaces, subnet " + c.lab().subnet()).c_str()
                             : ("127.0.0.1 fallback: " + c.lab().fallback_reason()).c_str());
    std::fflush(stdout);
    try {
      want_primary = body(c);
      result = c.check();
      final_primary = c.wait_stable(10s);
      if (!result.violations.empty()) diag = c.diagnostics();
    } catch (...) {
      std::fprintf(stderr, "scenario %s failed after %.1f s\n%s", name.c_str(), (steady_ms() - t0) / 1000.0,
                   c.diagnostics().c_str());
      for (const auto& l : c.teardown()) std::fprintf(stderr, "after the failure: %s\n", l.c_str());
      throw;
    }
    leftovers = c.teardown();
  }
  std::printf("scenario %s: %s in %.1f s\n%s", name.c_str(), result.violations.empty() && leftovers.empty() ? "passed" : "FAILED",
              (steady_ms() - t0) / 1000.0, result.summary().c_str());
  std::fflush(stdout);
  INFO(result.summary() << diag);
  CHECK(result.violations.empty());
  for (const auto& l : leftovers) FAIL_CHECK(l);
  if (!want_primary.empty()) CHECK(final_primary == want_primary);
}

std::int64_t ms_since(std::int64_t t0_ms) { return steady_ms() - t0_ms; }

// The client's view of a failover: from `t0_us` to the first acknowledged
// write on `node`.
double first_ack_after(Cluster& c, std::int64_t t0_us, const std::string& node) {
  for (const auto& a : c.read_client_log().writes) {
    if (a.node == node && a.acked_us > t0_us) return (a.acked_us - t0_us) / 1e6;
  }
  return -1;
}

// A standby whose walreceiver is frozen (SIGSTOP): it looks like a streaming
// secondary, but commits are acknowledged by the other standby only.
struct FrozenReceiver {
  int pid = 0;
  explicit FrozenReceiver(Cluster& c, const std::string& node) {
    auto p = c.walreceiver_pid(node);
    REQUIRE(p.has_value());
    pid = *p;
    REQUIRE(::kill(pid, SIGSTOP) == 0);
  }
  // Drops what sits unreceived in its socket (Postgres restarts the process).
  void lose_unreceived() {
    ::kill(pid, SIGKILL);
    pid = 0;
  }
  ~FrozenReceiver() {
    if (pid) ::kill(pid, SIGCONT);
  }
};

bool node_was_assigned(Cluster& c, const std::string& node, const std::vector<std::string>& states) {
  auto ev = nlohmann::json::parse(c.cli_ok({"show", "events", "--count", "500", "--json"}).out);
  for (const auto& e : ev.at("events")) {
    if (!e.at("node_name").is_string() || e.at("node_name").get<std::string>() != node) continue;
    if (!e.at("to_state").is_string()) continue;
    for (const auto& s : states) {
      if (e.at("to_state").get<std::string>() == s) return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("scenario: the primary's Postgres crashes, its keeper restarts it, no failover", "[scenario]") {
  run_scenario("postgres-crash", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    auto before = c.postmaster_pid("a");
    c.crash_postgres("a");
    poll_until([&] { auto p = c.postmaster_pid("a"); return p && p != before; }, 30s, "a's Postgres restarted");
    c.wait_writes(20, 30s, "a");
    return std::string("a");
  });
}

TEST_CASE("scenario: the primary host is lost, the standby takes over and the old primary rejoins", "[scenario]") {
  run_scenario("host-lost", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    auto t0 = now_us();
    c.lose_host("a");
    c.wait_writes(5, 60s, "b");
    std::printf("host-lost: first write acknowledged by b %.2f s after the loss\n", first_ack_after(c, t0, "b"));
    c.start_keeper("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 90s);
    return std::string("b");
  });
}

TEST_CASE("scenario: the primary is cut off from the monitor and the standby, then healed", "[scenario]") {
  run_scenario("partition", two_nodes(), true, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    auto t0 = now_us();
    c.cut("a");
    c.wait_writes(5, 60s, "b");
    std::printf("partition: first write acknowledged by b %.2f s after the cut\n", first_ack_after(c, t0, "b"));
    // a, alone, fences itself (stops Postgres) after network_partition_timeout.
    poll_until([&] { return !c.postmaster_pid("a"); }, 30s, "a fencing itself");
    REQUIRE(c.keeper_log("a").find("fencing") != std::string::npos);
    c.heal("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 90s);
    return std::string("b");
  });
}

TEST_CASE("scenario: the standby is lost and comes back, the primary keeps serving", "[scenario]") {
  run_scenario("standby-lost", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    c.lose_host("b");
    c.wait_states({{"a", "wait_primary"}}, 30s);
    c.wait_writes(20, 30s, "a");
    c.start_keeper("b");
    c.wait_states({{"a", "primary"}, {"b", "secondary"}}, 90s);
    return std::string("a");
  });
}

TEST_CASE("scenario: the monitor is lost: no failover, writes go on, it comes back", "[scenario]") {
  run_scenario("monitor-lost", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    c.kill_monitor();
    auto t0 = steady_ms();
    // Without the monitor nothing changes roles; the primary keeps acknowledging.
    while (ms_since(t0) < 6000) {
      REQUIRE(c.psql("b", "SELECT pg_is_in_recovery()") == "t");
      std::this_thread::sleep_for(500ms);
    }
    c.wait_writes(50, 20s, "a");
    c.start_monitor();
    c.wait_states({{"a", "primary"}, {"b", "secondary"}}, 60s);
    c.wait_writes(20, 20s, "a");
    return std::string("a");
  });
}

TEST_CASE("scenario: the monitor is lost and then the primary: no promotion until the monitor is back", "[scenario]") {
  run_scenario("monitor-and-primary-lost", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    c.kill_monitor();
    c.lose_host("a");
    auto acked_before = c.read_client_log().writes.size();
    auto t0 = steady_ms();
    while (ms_since(t0) < 8000) {
      REQUIRE(c.psql("b", "SELECT pg_is_in_recovery()") == "t");  // nobody promotes it
      std::this_thread::sleep_for(500ms);
    }
    REQUIRE(c.read_client_log().writes.size() == acked_before);
    auto t1 = now_us();
    c.start_monitor();
    c.wait_writes(5, 60s, "b");
    std::printf("monitor-and-primary-lost: b acknowledged %.2f s after the monitor returned\n",
                first_ack_after(c, t1, "b"));
    c.start_keeper("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 90s);
    return std::string("b");
  });
}

TEST_CASE("scenario: switchover under write load", "[scenario]") {
  run_scenario("switchover", two_nodes(), false, [](Cluster& c) {
    c.wait_writes(50, 20s, "a");
    auto t0 = now_us();
    c.cli_ok({"perform", "switchover", "--wait", "60"}, 90s);
    c.wait_writes(20, 30s, "b");
    // The longest gap between acknowledged writes around the switchover.
    auto log = c.read_client_log();
    std::int64_t gap = 0;
    for (size_t i = 1; i < log.writes.size(); ++i) {
      if (log.writes[i].acked_us > t0) gap = std::max(gap, log.writes[i].acked_us - log.writes[i - 1].acked_us);
    }
    std::printf("switchover: longest gap between acknowledged writes %.3f s\n", gap / 1e6);
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 60s);
    return std::string("b");
  });
}

TEST_CASE("scenario: the old primary wrote WAL the new one does not have, it rejoins with pg_rewind", "[scenario]") {
  run_scenario("rewind", two_nodes(), true, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    c.cut("a");
    // Written on a alone, locally committed, never acknowledged to a client
    // through the cluster: b never sees this WAL.
    c.psql("a",
           "SET synchronous_commit = local; INSERT INTO pgf_writes (seq) VALUES (-1); "
           "INSERT INTO pgf_probe (node) SELECT 'diverged' FROM generate_series(1, 5000)");
    c.lose_host("a");
    c.wait_writes(5, 60s, "b");
    // a comes back while its network is still down: its keeper cannot reach
    // the monitor and, on its last goal, starts Postgres as a primary whose
    // synchronous standby follows someone else. It must not get stuck there.
    c.start_keeper("a");
    poll_until([&] { return c.keeper_log("a").find("cannot reach monitor") != std::string::npos; }, 30s,
               "a's keeper trying the monitor while cut off");
    std::this_thread::sleep_for(2s);
    c.heal("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 90s);
    REQUIRE(c.keeper_log("a").find("pg_rewind done") != std::string::npos);
    REQUIRE(c.psql("a", "SELECT count(*) FROM pgf_writes WHERE seq = -1") == "0");
    REQUIRE(c.psql("a", "SELECT count(*) FROM pgf_probe WHERE node = 'diverged'") == "0");
    return std::string("b");
  });
}

TEST_CASE("scenario: three nodes, one standby lagging: the most advanced standby is promoted", "[scenario]") {
  // c prefers to be promoted but will have less WAL: WAL wins (I4).
  ClusterOptions o{{node("a"), node("b"), node("c", {"--candidate-priority", "100"})}};
  run_scenario("lagging-standby", o, false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    {
      FrozenReceiver lag(c, "c");
      c.wait_writes(20, 10s, "a");  // acknowledged by b alone
      c.lose_host("a");
      lag.lose_unreceived();
    }
    c.wait_writes(5, 60s, "b");
    REQUIRE_FALSE(node_was_assigned(c, "c", {"wait_primary", "primary", "prepare_promotion"}));
    c.start_keeper("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}, {"c", "secondary"}}, 90s);
    return std::string("b");
  });
}

TEST_CASE("scenario: a node with candidate priority 0 is never promoted, even with the most WAL", "[scenario]") {
  ClusterOptions o{{node("a"), node("b", {"--candidate-priority", "0"}), node("c")}};
  run_scenario("priority-zero", o, false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    {
      FrozenReceiver lag(c, "c");  // b holds the most WAL
      c.wait_writes(20, 10s, "a");
      c.lose_host("a");
      lag.lose_unreceived();
    }
    c.wait_writes(5, 60s, "c");
    REQUIRE_FALSE(node_was_assigned(c, "b", {"wait_primary", "primary", "prepare_promotion", "single"}));
    c.start_keeper("a");
    c.wait_states({{"a", "secondary"}, {"b", "secondary"}, {"c", "primary"}}, 90s);
    return std::string("c");
  });
}

TEST_CASE("scenario: the standby's keeper is killed (kill -9) in the middle of its promotion", "[scenario]") {
  ClusterOptions o = two_nodes();
  o.nodes[1].env["PGFAILOVER_FAULT_KILL_AFTER_ACTION"] = "promote";
  run_scenario("keeper-killed-in-promotion", o, false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    c.lose_host("a");
    poll_until([&] { return !c.keeper_running("b"); }, 60s, "b's keeper killing itself after promote");
    REQUIRE(c.keeper_log("b").find("killing the keeper after promote") != std::string::npos);
    c.start_keeper("b");  // as systemd would
    c.wait_writes(5, 60s, "b");
    c.start_keeper("a");
    c.wait_states({{"a", "secondary"}, {"b", "primary"}}, 90s);
    return std::string("b");
  });
}

TEST_CASE("scenario: the standby's disk fills up, the primary keeps serving, the standby recovers", "[scenario]") {
  ClusterOptions o = two_nodes();
  o.nodes[1].pgdata_tmpfs_mb = 192;
  run_scenario("standby-disk-full", o, false, [](Cluster& c) {
    c.wait_writes(20, 20s, "a");
    auto filler = c.pgdata("b") / "pgf-filler";
    struct statvfs vfs{};
    REQUIRE(statvfs(c.pgdata("b").c_str(), &vfs) == 0);
    auto free_bytes = static_cast<std::int64_t>(vfs.f_bavail) * static_cast<std::int64_t>(vfs.f_frsize);
    auto fill = free_bytes - 2 * 1024 * 1024;
    REQUIRE(fill > 0);
    {
      std::ofstream f(filler, std::ios::binary);
      std::string block(1 << 20, '\0');
      for (std::int64_t done = 0; done + static_cast<std::int64_t>(block.size()) <= fill; done += block.size()) {
        f.write(block.data(), static_cast<std::streamsize>(block.size()));
      }
    }
    // Enough WAL (about 60 MB) that b needs new WAL segment files, which it
    // cannot create.
    c.psql("a", "INSERT INTO pgf_probe (node) SELECT repeat('x', 2000) FROM generate_series(1, 30000)", 120s);
    c.wait_states({{"a", "wait_primary"}}, 60s);
    c.wait_writes(20, 30s, "a");
    REQUIRE(c.postgres_log("b").find("No space left on device") != std::string::npos);
    std::error_code ec;
    fs::remove(filler, ec);
    c.wait_states({{"a", "primary"}, {"b", "secondary"}}, 120s);
    return std::string("a");
  });
}
