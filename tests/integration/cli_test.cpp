// The operator CLI from the built binary against a real monitor and data nodes
// on 127.0.0.1: every command's table and JSON, bad input as one line and a
// non-zero exit, pgjdbc and psql following the primary through switchover and
// failover with the URIs `show uri` prints, and the demo end to end.
#include <catch2/catch.hpp>

#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/instance_paths.h"
#include "tests/support/cluster.h"
#include "tests/support/harness.h"

using namespace pgf;
using namespace pgf::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The row of a text table whose first cell is `first`.
std::string row(const std::string& table, const std::string& first) {
  for (const auto& line : lines_of(table)) {
    auto start = line.find_first_not_of(' ');  // right-aligned first columns
    if (start != std::string::npos && line.compare(start, first.size() + 1, first + " ") == 0) return line.substr(start);
  }
  FAIL("no row \"" << first << "\" in:\n" << table);
  return "";
}

// Failed, and said why in exactly one line on stderr, nothing on stdout.
void require_one_line_error(const CommandResult& r, const std::string& expected) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE_FALSE(r.status.ok());
  auto err = trim(r.err);
  REQUIRE(err.find('\n') == std::string::npos);
  REQUIRE(err.rfind("pgfailover: ", 0) == 0);
  REQUIRE_THAT(err, Catch::Contains(expected));
}

json json_of(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status.ok());
  return json::parse(r.out);
}

void require_keys(const json& object, std::initializer_list<const char*> keys) {
  INFO(object.dump());
  REQUIRE(object.is_object());
  for (const char* k : keys) {
    INFO("key " << k);
    REQUIRE(object.contains(k));
  }
}

const std::initializer_list<const char*> kStateNodeKeys = {
    "name",           "id",     "host",      "port",        "group",           "timeline",          "lsn",
    "reported_state", "assigned_state", "health", "lag_bytes", "lag_seconds", "candidate_priority", "replication_quorum"};

// Every process whose command line mentions `needle` (a test directory).
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = read_file_if_exists(e.path() / "cmdline").value_or("");
    for (auto& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(needle) != std::string::npos && std::stoi(name) != getpid()) out.push_back(std::stoi(name));
  }
  return out;
}

// Every process whose process group is one of `leaders` (Postgres backends
// are in their postmaster's group).
std::vector<int> processes_in_groups(const std::set<int>& leaders) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = read_file_if_exists(e.path() / "stat").value_or("");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    int ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (leaders.count(pgrp) && state != "Z") out.push_back(std::stoi(name));
  }
  return out;
}

// psql through a libpq URI, as an application: user and password from the environment.
CommandResult psql_write(const std::string& uri, const std::string& table, const std::string& note,
                         const std::string& password) {
  ProcessSpec spec;
  spec.argv = {"psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", uri, "-c",
               "INSERT INTO " + table + " (note) VALUES ('" + note + "') RETURNING inet_server_port()"};
  spec.env = {{"PGUSER", "app"}, {"PGPASSWORD", password}};
  return run_command(spec, 30s);
}

// Retries while a failover is in progress; the port of the server that took the write.
int psql_write_eventually(const std::string& uri, const std::string& note, const std::string& password) {
  CommandResult r;
  auto deadline = steady_ms() + 30000;
  do {
    r = psql_write(uri, "psql_writes", note, password);
    if (r.status.ok()) return std::stoi(trim(r.out));
    std::this_thread::sleep_for(200ms);
  } while (steady_ms() < deadline);
  FAIL("psql could not write through " << uri << ": " << r.err);
  return 0;
}

int jdbc_write(const std::string& url, const std::string& note, const std::string& password) {
  fs::path program = fs::path(sql_dir()).parent_path() / "tests/integration/jdbc/JdbcWrite.java";
  ProcessSpec spec;
  spec.argv = {"java", "-cp", "/usr/share/java/postgresql.jar", program.string(), url, note};
  spec.env = {{"PGF_JDBC_USER", "app"}, {"PGF_JDBC_PASSWORD", password}, {"PGF_RETRY_SECONDS", "30"}};
  auto r = run_command(spec, 90s);
  INFO("java: " << r.status.describe() << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status.ok());
  std::smatch m;
  auto out = trim(r.out);
  REQUIRE(std::regex_search(out, m, std::regex("wrote " + note + " port ([0-9]+) in_recovery false")));
  return std::stoi(m[1]);
}

}  // namespace

TEST_CASE("cli: show, set/get, maintenance, perform, watch, config and drop against a monitor and two nodes",
          "[cli]") {
  auto t0 = steady_ms();
  TestCluster cluster("cli-ops", {"a", "b"});
  auto& m = cluster.monitor();
  auto& a = cluster.node("a");
  auto& b = cluster.node("b");
  INFO("cluster up in " << steady_ms() - t0 << " ms");
  // Every command below also finds the monitor through --monitor.
  auto cli = [&](std::vector<std::string> args) {
    args.push_back("--monitor");
    args.push_back(m.uri());
    return pgfailover(args);
  };
  auto cli_ok = [&](std::vector<std::string> args) {
    args.push_back("--monitor");
    args.push_back(m.uri());
    return pgfailover_ok(args);
  };
  auto settle = [&](const std::map<std::string, std::string>& want) {
    wait_states(m, want, 60s, cluster.all_nodes());
  };
  // One primary and every other node a secondary, whichever node is which.
  auto settle_any = [&](size_t count) {
    wait_until(
        [&] {
          auto now = m.states();
          size_t primaries = 0, secondaries = 0;
          for (const auto& [name, s] : now) {
            primaries += s.first == "primary" && s.second == "primary";
            secondaries += s.first == "secondary" && s.second == "secondary";
          }
          return now.size() == count && primaries == 1 && secondaries == count - 1;
        },
        60s, "one primary and " + std::to_string(count - 1) + " secondaries");
  };

  // Health checks run every second: wait for the first good one of each node.
  wait_until(
      [&] {
        auto r = m.api().exec("SELECT count(*) FROM pgfailover.current_state('default') WHERE health = 'good'");
        return r.str(0, "count") == "2";
      },
      10s, "both nodes health-checked");

  // ---- show state
  auto table = cli_ok({"show", "state"}).out;
  auto header = lines_of(table).at(0);
  for (const char* column : {"Name", "Id", "Host:Port", "Group", "TLI:LSN", "Reported", "Assigned", "Health", "Lag",
                             "Lag (s)", "Priority", "Quorum"}) {
    REQUIRE_THAT(header, Catch::Contains(column));
  }
  REQUIRE_THAT(row(table, "a"), Catch::Matches(".*127\\.0\\.0\\.1:" + std::to_string(a.port) +
                                               " +0 +1:[0-9A-F]+/[0-9A-F]+ +primary +primary +good +- +- +50 +yes"));
  REQUIRE_THAT(row(table, "b"), Catch::Matches(".*127\\.0\\.0\\.1:" + std::to_string(b.port) +
                                               " +0 +1:[0-9A-F]+/[0-9A-F]+ +secondary +secondary +good .* 50 +yes"));

  auto state = json_of(cli({"show", "state", "--json"}));
  REQUIRE(state["formation"] == "default");
  REQUIRE(state["nodes"].size() == 2);
  for (const auto& n : state["nodes"]) require_keys(n, kStateNodeKeys);
  auto& ja = state["nodes"][0];
  auto& jb = state["nodes"][1];
  REQUIRE(ja["name"] == "a");
  REQUIRE(ja["host"] == "127.0.0.1");
  REQUIRE(ja["port"] == a.port);
  REQUIRE(ja["group"] == 0);
  REQUIRE(ja["timeline"] == 1);
  REQUIRE(ja["lsn"].is_string());
  REQUIRE(ja["reported_state"] == "primary");
  REQUIRE(ja["assigned_state"] == "primary");
  REQUIRE(ja["health"] == "good");
  REQUIRE(ja["lag_bytes"].is_null());  // the primary itself
  REQUIRE(ja["candidate_priority"] == 50);
  REQUIRE(ja["replication_quorum"] == true);
  REQUIRE(jb["name"] == "b");
  REQUIRE(jb["assigned_state"] == "secondary");
  REQUIRE(jb["lag_bytes"].is_number_integer());
  REQUIRE(jb["lag_bytes"].get<std::int64_t>() >= 0);
  REQUIRE((jb["lag_seconds"].is_null() || jb["lag_seconds"].is_number()));

  // ---- show events
  auto events_table = cli_ok({"show", "events", "--count", "50"}).out;
  REQUIRE_THAT(lines_of(events_table).at(0), Catch::Matches("Time +Id +Node +Group +Change +Rule +Reason"));
  REQUIRE_THAT(events_table, Catch::Contains("register"));
  REQUIRE_THAT(events_table, Catch::Contains("-> primary"));
  auto events = json_of(cli({"show", "events", "--count", "3", "--json"}));
  REQUIRE(events["formation"] == "default");
  REQUIRE(events["events"].size() == 3);
  std::int64_t previous = 0;
  for (const auto& e : events["events"]) {
    require_keys(e, {"id", "at", "group", "node_id", "node_name", "from_state", "to_state", "rule", "reason"});
    REQUIRE(e["id"].get<std::int64_t>() > previous);  // oldest first
    previous = e["id"].get<std::int64_t>();
  }

  // ---- show uri
  auto hosts = "127.0.0.1:" + std::to_string(a.port) + ",127.0.0.1:" + std::to_string(b.port);
  auto uris = cli_ok({"show", "uri"}).out;
  REQUIRE_THAT(row(uris, "monitor"), Catch::Contains(m.uri()));
  REQUIRE_THAT(uris, Catch::Contains("postgresql://" + hosts + "/postgres?target_session_attrs=read-write"));
  REQUIRE_THAT(uris, Catch::Contains("jdbc:postgresql://" + hosts + "/postgres?targetServerType=primary"));
  // The monitor speaks TLS, so the applications' URIs ask for it too.
  REQUIRE(trim(cli_ok({"show", "uri", "--format", "jdbc"}).out) ==
          "jdbc:postgresql://" + hosts +
              "/postgres?targetServerType=primary&hostRecheckSeconds=2&connectTimeout=2&ssl=true&sslmode=require");
  REQUIRE(trim(cli_ok({"show", "uri", "--format", "libpq", "--sslmode", "verify-full"}).out) ==
          "postgresql://" + hosts + "/postgres?target_session_attrs=read-write&connect_timeout=2&sslmode=verify-full");
  REQUIRE(trim(cli_ok({"show", "uri", "--format", "libpq", "--sslmode", "require"}).out) ==
          "postgresql://" + hosts + "/postgres?target_session_attrs=read-write&connect_timeout=2&sslmode=require");
  auto juri = json_of(cli({"show", "uri", "--json"}));
  require_keys(juri, {"formation", "monitor", "libpq", "jdbc"});
  REQUIRE(juri["monitor"] == m.uri());
  // A password in the monitor URI is used, never printed.
  auto with_password =
      "postgresql://pgfailover_node:s3cretpw@127.0.0.1:" + std::to_string(m.port) + "/pgfailover?sslmode=require";
  auto r = pgfailover({"show", "uri", "--monitor", with_password});
  REQUIRE(r.status.ok());
  REQUIRE(r.out.find("s3cretpw") == std::string::npos);
  REQUIRE_THAT(r.out, Catch::Contains(m.uri()));

  // ---- where the monitor comes from: --pgdata of a node or of the monitor, the environment
  REQUIRE(trim(pgfailover_ok({"show", "uri", "--format", "libpq", "--pgdata", a.pgdata.string()}).out) ==
          "postgresql://" + hosts + "/postgres?target_session_attrs=read-write&connect_timeout=2&sslmode=require");
  REQUIRE_THAT(pgfailover_ok({"show", "state", "--pgdata", m.pgdata.string()}).out, Catch::Contains("secondary"));
  r = pgfailover_env({"show", "state", "--json"}, {{"PGFAILOVER_MONITOR", m.uri()}}, {"PGDATA"});
  REQUIRE(json_of(r)["nodes"].size() == 2);
  r = pgfailover_env({"get", "node", "candidate-priority"}, {{"PGDATA", b.pgdata.string()}}, {"PGFAILOVER_MONITOR"});
  REQUIRE(r.status.ok());
  REQUIRE(trim(r.out) == "50");  // b's own node, from its configuration
  require_one_line_error(pgfailover_env({"show", "state"}, {}, {"PGDATA", "PGFAILOVER_MONITOR"}), "no monitor given");

  // ---- show settings, show standby-names
  auto settings = cli_ok({"show", "settings"}).out;
  REQUIRE_THAT(settings, Catch::Contains("number_sync_standbys 1"));
  REQUIRE_THAT(settings, Catch::Contains("node_lost_timeout_ms"));
  REQUIRE_THAT(row(settings, "b"), Catch::Matches("b +0 +50 +true"));
  auto jsettings = json_of(cli({"show", "settings", "--json"}));
  require_keys(jsettings, {"formation", "dbname", "number_sync_standbys", "nodes", "monitor"});
  require_keys(jsettings["nodes"][0], {"name", "group", "candidate_priority", "replication_quorum"});
  require_keys(jsettings["monitor"][0], {"name", "value", "min_value", "max_value", "description"});
  auto names = cli_ok({"show", "standby-names"}).out;
  REQUIRE_THAT(row(names, "0"), Catch::Matches("0 +a +ANY 1 \\(pgfailover_node_[0-9]+\\) +b"));
  auto jnames = json_of(cli({"show", "standby-names", "--json"}));
  REQUIRE(jnames["groups"].size() == 1);
  require_keys(jnames["groups"][0], {"group", "primary", "standby_names", "standbys"});
  REQUIRE(jnames["groups"][0]["standbys"] == json::array({"b"}));

  // ---- set / get
  REQUIRE(trim(cli_ok({"set", "node", "candidate-priority", "80", "--name", "b"}).out) == "80");
  REQUIRE(trim(cli_ok({"get", "node", "candidate-priority", "--name", "b"}).out) == "80");
  REQUIRE(trim(pgfailover_ok({"get", "node", "candidate-priority", "--pgdata", b.pgdata.string()}).out) == "80");
  auto jnode = json_of(cli({"get", "node", "candidate-priority", "--name", "b", "--json"}));
  REQUIRE(jnode == json{{"name", "b"}, {"candidate_priority", 80}, {"replication_quorum", true}});
  require_one_line_error(cli({"set", "node", "replication-quorum", "false", "--name", "b"}),
                         "node \"b\" is needed for replication quorum");
  REQUIRE(trim(cli_ok({"set", "formation", "number-sync-standbys", "0"}).out) == "0");
  REQUIRE(trim(cli_ok({"set", "node", "replication-quorum", "false", "--name", "b"}).out) == "false");
  REQUIRE(trim(cli_ok({"get", "node", "replication-quorum", "--name", "b"}).out) == "false");
  REQUIRE(trim(cli_ok({"set", "node", "replication-quorum", "true", "--name", "b"}).out) == "true");
  REQUIRE(trim(cli_ok({"set", "formation", "number-sync-standbys", "1"}).out) == "1");
  auto jformation = json_of(cli({"get", "formation", "number-sync-standbys", "--json"}));
  REQUIRE(jformation == json{{"formation", "default"}, {"dbname", "postgres"}, {"number_sync_standbys", 1}});
  REQUIRE(trim(cli_ok({"get", "monitor", "keeper_poll_ms"}).out) == "1000");
  REQUIRE(trim(cli_ok({"set", "monitor", "startup_grace_ms", "3000"}).out) == "3000");

  // ---- bad input: one line, non-zero exit
  require_one_line_error(cli({"set", "node", "candidate-priority", "101", "--name", "b"}),
                         "candidate priority 101 is out of range 0..100");
  require_one_line_error(cli({"set", "node", "candidate-priority", "-1", "--name", "b"}),
                         "candidate priority -1 is out of range 0..100");
  require_one_line_error(cli({"set", "node", "candidate-priority", "high", "--name", "b"}),
                         "candidate priority \"high\" is not an integer");
  require_one_line_error(cli({"get", "node", "candidate-priority", "--name", "nope"}),
                         "node \"nope\" is not registered in formation \"default\"");
  require_one_line_error(cli({"enable", "maintenance", "--name", "nope"}),
                         "node \"nope\" is not registered in formation \"default\"");
  require_one_line_error(cli({"show", "state", "--formation", "nope"}), "formation \"nope\" does not exist");
  require_one_line_error(cli({"show", "events", "--formation", "nope", "--json"}), "formation \"nope\" does not exist");
  require_one_line_error(cli({"set", "monitor", "nope", "1"}), "monitor setting \"nope\" does not exist");
  require_one_line_error(pgfailover({"show", "state", "--monitor", "postgresql://x:5/db?nonsense=1"}),
                         "malformed monitor URI");
  auto closed_port = std::to_string(free_port());
  require_one_line_error(
      pgfailover({"show", "state", "--monitor", "postgresql://pgfailover_node@127.0.0.1:" + closed_port + "/pgfailover"}),
      "cannot reach monitor at 127.0.0.1:" + closed_port + ": connection refused");
  require_one_line_error(pgfailover({"show", "state", "--bogus"}), "--bogus");
  require_one_line_error(pgfailover({"get", "node", "candidate-priority", "--pgdata", (cluster.dir() / "nothing").string()}),
                         "is not managed by pgfailover");

  // ---- maintenance, and what it forbids
  auto maint = cli_ok({"enable", "maintenance", "--name", "b"}).out;
  REQUIRE_THAT(maint, Catch::Contains("node b: secondary -> "));  // events as they happen
  REQUIRE_THAT(maint, Catch::Contains("node b is in maintenance"));
  REQUIRE(m.states()["b"] == std::make_pair(std::string("maintenance"), std::string("maintenance")));
  require_one_line_error(cli({"enable", "maintenance", "--name", "a"}), "node \"a\" is the last healthy node");
  require_one_line_error(cli({"perform", "switchover"}),
                         "group 0 in formation \"default\" has no healthy secondary with candidate priority above 0");
  require_one_line_error(pgfailover({"enable", "maintenance", "--pgdata", b.pgdata.string()}),
                         "maintenance is already requested for node \"b\"");
  auto back = pgfailover_ok({"disable", "maintenance", "--pgdata", b.pgdata.string()}).out;
  REQUIRE_THAT(back, Catch::Contains("node b is back in service"));
  settle({{"a", "primary"}, {"b", "secondary"}});

  // ---- perform switchover, promotion, failover; a too short --wait exits non-zero
  auto sw = cli_ok({"perform", "switchover"}).out;
  REQUIRE_THAT(sw, Catch::Contains("switchover of group 0 in formation \"default\" requested (primary: a)"));
  REQUIRE_THAT(sw, Catch::Contains("node a: primary -> draining"));
  REQUIRE_THAT(sw, Catch::Contains("switchover done"));
  REQUIRE(m.states()["b"] == std::make_pair(std::string("primary"), std::string("primary")));
  REQUIRE(m.states()["a"] == std::make_pair(std::string("secondary"), std::string("secondary")));
  auto promo = cli_ok({"perform", "promotion", "--name", "a"}).out;
  REQUIRE_THAT(promo, Catch::Contains("promotion done"));
  REQUIRE(m.states()["a"].second == "primary");
  require_one_line_error(cli({"perform", "promotion", "--name", "a"}), "node \"a\" is already the primary");
  // b's keeper stopped (its Postgres runs on, so b stays a healthy candidate):
  // the failover cannot complete, and --wait says so with a non-zero exit.
  pgfailover_ok({"stop", "--pgdata", b.pgdata.string()});
  auto fo = cli({"perform", "failover", "--wait", "2"});
  require_one_line_error(fo, "failover of group 0 in formation \"default\" did not complete within 2 s");
  REQUIRE_THAT(fo.out, Catch::Contains("failover of group 0 in formation \"default\" requested (primary: a)"));
  b.start();
  settle_any(2);  // the monitor may also give up the election and let a resume

  // ---- watch, not on a terminal: one snapshot per change; SIGTERM ends it cleanly
  {
    auto out_file = cluster.dir() / "watch.out";
    ProcessSpec spec;
    spec.argv = {pgfailover_binary(), "watch", "--monitor", m.uri(), "--interval", "200"};
    spec.stdout_path = out_file.string();
    spec.stderr_path = (cluster.dir() / "watch.err").string();
    auto watch = ChildProcess::spawn(spec);
    auto watched = [&] { return read_file_if_exists(out_file).value_or(""); };
    wait_until([&] { return watched().find("Latest events") != std::string::npos; }, 10s, "the first snapshot");
    REQUIRE_THAT(watched(), Catch::Contains("Formation \"default\" on monitor 127.0.0.1:" + std::to_string(m.port)));
    cli_ok({"set", "node", "candidate-priority", "70", "--name", "a"});
    wait_until([&] { return std::regex_search(watched(), std::regex("\na +.* 70 +yes\n")); }, 10s,
               "a snapshot with the new priority");
    REQUIRE_THAT(watched(), Catch::Contains("set-candidate-priority"));  // the event, in the same view
    watch.signal(SIGTERM);
    auto status = watch.wait_for(5s);
    REQUIRE(status.has_value());
    REQUIRE(status->ok());
      REQUIRE(lines_of(watched()).size() > 10);
  }

  // ---- config get / set / check
  auto conf = pgfailover_ok({"config", "get", "--pgdata", a.pgdata.string()}).out;
  REQUIRE_THAT(conf, Catch::Contains("pgfailover.role = keeper"));
  REQUIRE_THAT(conf, Catch::Contains("monitor.uri = " + m.uri()));
  REQUIRE(trim(pgfailover_ok({"config", "get", "postgres.port", "--pgdata", a.pgdata.string()}).out) ==
          std::to_string(a.port));
  auto check = pgfailover_ok({"config", "check", "--pgdata", a.pgdata.string()}).out;
  REQUIRE_THAT(check, Catch::Contains("ok    monitor reachable at 127.0.0.1:" + std::to_string(m.port) +
                                      "; node a is registered in formation \"default\""));
  REQUIRE_THAT(pgfailover_ok({"config", "check", "--pgdata", m.pgdata.string()}).out,
               Catch::Contains("monitor reachable"));
  require_one_line_error(pgfailover({"config", "set", "node.name", "x", "--pgdata", a.pgdata.string()}),
                         "node.name cannot be changed here");
  require_one_line_error(pgfailover({"config", "set", "postgres.port", "70000", "--pgdata", a.pgdata.string()}),
                         "70000 is out of range");
  require_one_line_error(pgfailover({"config", "set", "bogus.key", "1", "--pgdata", a.pgdata.string()}),
                         "bogus.key is not a setting of a keeper");
  auto unreachable = "postgresql://pgfailover_node:s3cretpw@127.0.0.1:" + closed_port + "/pgfailover";
  r = pgfailover({"config", "set", "monitor.uri", unreachable, "--pgdata", a.pgdata.string()});
  REQUIRE(r.status.ok());
  REQUIRE(r.out.find("s3cretpw") == std::string::npos);
  r = pgfailover({"config", "get", "monitor.uri", "--pgdata", a.pgdata.string()});
  REQUIRE(r.out.find("s3cretpw") == std::string::npos);
  r = pgfailover({"config", "check", "--pgdata", a.pgdata.string()});
  require_one_line_error(r, "cannot reach monitor at 127.0.0.1:" + closed_port + ": connection refused");
  REQUIRE((r.out + r.err).find("s3cretpw") == std::string::npos);
  pgfailover_ok({"config", "set", "monitor.uri", m.uri(), "--pgdata", a.pgdata.string()});
  pgfailover_ok({"config", "check", "--pgdata", a.pgdata.string()});

  // ---- drop node: --destroy only with a local --pgdata; then data and state are gone
  require_one_line_error(cli({"drop", "node", "--name", "a", "--destroy"}), "--destroy deletes the local data directory");
  require_one_line_error(cli({"drop", "node", "--name", "nope"}), "node \"nope\" is not registered");
  auto& c = cluster.add_node("c");
  settle_any(3);
  require_one_line_error(
      pgfailover({"drop", "node", "--name", "a", "--pgdata", c.pgdata.string(), "--destroy"}),
      "not the node of --pgdata");
  auto dropped = pgfailover_ok({"drop", "node", "--pgdata", c.pgdata.string(), "--destroy"}).out;
  INFO(dropped);
  REQUIRE_THAT(dropped, Catch::Contains("node c has left formation \"default\""));
  REQUIRE_THAT(dropped, Catch::Contains("removed " + c.pgdata.string()));
  REQUIRE_FALSE(fs::exists(c.pgdata));
  REQUIRE_FALSE(fs::exists(c.state_dir));
  REQUIRE_FALSE(c.service->running());
  REQUIRE(m.states().count("c") == 0);
  settle_any(2);
  INFO("whole test " << steady_ms() - t0 << " ms");
  std::printf("cli operations test: %.1f s\n", (steady_ms() - t0) / 1000.0);
}

TEST_CASE("cli: pgjdbc and psql write through the URIs of show uri across switchover and failover", "[cli][clients]") {
  auto t0 = steady_ms();
  TestCluster cluster("cli-clients", {"a", "b"});
  auto& m = cluster.monitor();
  auto& a = cluster.node("a");
  auto& b = cluster.node("b");
  REQUIRE(fs::exists("/usr/share/java/postgresql.jar"));  // libpostgresql-jdbc-java (scripts/install-deps.sh)
  const std::string password = "app-test-password";
  {
    auto c = a.sql();
    c.exec("CREATE ROLE app LOGIN PASSWORD '" + password + "'");
    c.exec("CREATE TABLE jdbc_writes (note text)");
    c.exec("CREATE TABLE psql_writes (note text)");
    c.exec("GRANT INSERT, SELECT ON jdbc_writes, psql_writes TO app");
  }
  auto jdbc = trim(pgfailover_ok({"show", "uri", "--format", "jdbc", "--monitor", m.uri()}).out);
  auto libpq = trim(pgfailover_ok({"show", "uri", "--format", "libpq", "--monitor", m.uri()}).out);
  REQUIRE_THAT(jdbc, Catch::Contains("targetServerType=primary"));
  REQUIRE_THAT(libpq, Catch::Contains("target_session_attrs=read-write"));
  // Both clients speak TLS to the nodes (--ssl-self-signed): encrypted, not verified.
  REQUIRE_THAT(jdbc, Catch::EndsWith("&ssl=true&sslmode=require"));
  REQUIRE_THAT(libpq, Catch::EndsWith("&sslmode=require"));

  REQUIRE(jdbc_write(jdbc, "first", password) == a.port);
  REQUIRE(psql_write_eventually(libpq, "first", password) == a.port);

  auto sw = pgfailover_ok({"perform", "switchover", "--monitor", m.uri()});
  REQUIRE_THAT(sw.out, Catch::Contains("switchover done"));
  REQUIRE(jdbc_write(jdbc, "after_switchover", password) == b.port);
  REQUIRE(psql_write_eventually(libpq, "after_switchover", password) == b.port);

  // Failover: the whole primary node is lost (keeper and Postgres, kill -9).
  b.service->kill9_with_postgres();
  auto failover_start = steady_ms();
  REQUIRE(jdbc_write(jdbc, "after_failover", password) == a.port);
  INFO("pgjdbc wrote again " << steady_ms() - failover_start << " ms after the primary was killed");
  REQUIRE(psql_write_eventually(libpq, "after_failover", password) == a.port);
  REQUIRE(a.value("SELECT string_agg(note, ',' ORDER BY note) FROM jdbc_writes") == "after_failover,after_switchover,first");
  REQUIRE(a.value("SELECT string_agg(note, ',' ORDER BY note) FROM psql_writes") == "after_failover,after_switchover,first");
  std::printf("cli clients test: %.1f s (writes back %.1f s after the kill)\n", (steady_ms() - t0) / 1000.0,
              0.0 + (steady_ms() - failover_start) / 1000.0);
}

TEST_CASE("cli: demo up, failover and down from the built binary, under a minute, nothing left behind",
          "[cli][demo]") {
  TestDir dir("cli-demo");
  auto demo_dir = (dir / "demo").string();
  // Whatever happens below, nothing of the demo outlives the test.
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (fs::exists(fs::path(dir) / "demo.json")) pgfailover({"demo", "down", "--dir", dir});
      for (int pid : processes_mentioning(dir)) ::kill(pid, SIGKILL);
    }
  } cleanup{demo_dir};

  auto t0 = steady_ms();
  auto up = pgfailover({"demo", "up", "--dir", demo_dir}, 120s);
  INFO("demo up: " << up.out << up.err);
  REQUIRE(up.status.ok());
  auto up_ms = steady_ms() - t0;
  REQUIRE_THAT(up.out, Catch::Contains("Application (libpq): postgresql://demo@127.0.0.1:"));
  REQUIRE_THAT(up.out, Catch::Contains("Application (JDBC):  jdbc:postgresql://127.0.0.1:"));
  REQUIRE_THAT(up.out, Catch::Contains("targetServerType=primary"));
  REQUIRE_THAT(row(up.out, "node1"), Catch::Matches(".* primary +primary +good .*"));
  REQUIRE_THAT(row(up.out, "node2"), Catch::Matches(".* secondary +secondary +good .*"));
  auto pgpass = read_file(fs::path(demo_dir) / "pgpass");
  auto password = pgpass.substr(pgpass.rfind(':') + 1);
  REQUIRE(up.out.find(trim(password)) == std::string::npos);  // the password is in the file only

  auto t1 = steady_ms();
  auto failover = pgfailover({"demo", "failover", "--dir", demo_dir}, 120s);
  INFO("demo failover: " << failover.out << failover.err);
  REQUIRE(failover.status.ok());
  auto failover_ms = steady_ms() - t1;
  REQUIRE_THAT(failover.out, Catch::Contains("killed node1: keeper (pid"));
  REQUIRE_THAT(failover.out, Catch::Contains("write accepted by node2"));
  REQUIRE_THAT(failover.out, Catch::Contains("node1 is a secondary again"));
  REQUIRE_THAT(row(failover.out, "node2"), Catch::Matches(".* primary +primary +good .*"));

  // Everything `down` must stop: the services and the postmasters.
  std::set<int> pids;
  for (const auto& d : fs::directory_iterator(demo_dir)) {
    if (auto text = read_file_if_exists(d.path() / "postmaster.pid")) pids.insert(std::atoi(text->c_str()));
    if (auto text = read_file_if_exists(d.path() / "pgfailover.pid")) pids.insert(std::atoi(text->c_str()));
  }
  REQUIRE(pids.size() >= 6);  // monitor and two nodes: a service and a postmaster each
  REQUIRE_FALSE(processes_mentioning(demo_dir).empty());

  auto t2 = steady_ms();
  auto down = pgfailover({"demo", "down", "--dir", demo_dir}, 120s);
  INFO("demo down: " << down.out << down.err);
  REQUIRE(down.status.ok());
  auto down_ms = steady_ms() - t2;
  REQUIRE_FALSE(fs::exists(demo_dir));
  for (int pid : pids) {
    INFO("pid " << pid);
    REQUIRE_FALSE(process_alive(pid));
  }
  REQUIRE(processes_mentioning(demo_dir).empty());
  REQUIRE(processes_in_groups(pids).empty());  // no orphaned Postgres backend either
  auto total_ms = steady_ms() - t0;
  std::printf("demo: up %.1f s, failover %.1f s, down %.1f s, total %.1f s\n", up_ms / 1000.0, failover_ms / 1000.0,
              down_ms / 1000.0, total_ms / 1000.0);
  REQUIRE(total_ms < 60000);
  REQUIRE_THAT(failover.out, Catch::Contains("Writes were refused for"));
}
