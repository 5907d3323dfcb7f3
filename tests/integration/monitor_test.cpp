// The monitor on real Postgres 15: create (from nothing and into an existing
// Postgres), migrations, the keepers' permissions, reports and decisions,
// health checks, bad input, and the decider's takeover between two `run`
// processes. Keepers are simulated with the SQL calls a keeper makes.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/log.h"
#include "common/pg_connection.h"
#include "monitor/migrations.h"
#include "monitor/monitor_setup.h"
#include "tests/support/harness.h"

namespace pgf::test {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A Postgres started by the test itself; stopped by PID whatever happens.
class RunningPostgres {
 public:
  RunningPostgres(const fs::path& pgdata, int port, const fs::path& socket_dir, LogSink& sink)
      : pg_(pgdata, port, socket_dir, PostgresBinaries::locate(), Logger(sink, "test-postgres")) {
    child_ = pg_.start(socket_dir / "test-postgres.log");
  }
  ~RunningPostgres() {
    try {
      pg_.stop(StopMode::Fast, 20s);
    } catch (...) {
    }
    kill_postmaster(pg_.pgdata());
  }
  const LocalPostgres& pg() const { return pg_; }

 private:
  LocalPostgres pg_;
  ChildProcess child_;
};

// A monitor made by `pgfailover create monitor` in a test directory.
struct MonitorDir {
  explicit MonitorDir(const TestDir& dir, const std::string& name = "monitor")
      : pgdata(dir / name), paths(InstancePaths::for_pgdata(pgdata)), port(free_port()) {}

  CommandResult create(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"create", "monitor", "--pgdata", pgdata.string(), "--pgport", std::to_string(port),
                                  "--ssl-self-signed"};
    args.insert(args.end(), extra.begin(), extra.end());
    return pgfailover_ok(args);
  }
  // As the schema's owner, over the local socket (what the service uses).
  std::string owner_conninfo() const {
    return "host=" + paths.socket_dir().string() + " port=" + std::to_string(port) + " dbname=pgfailover";
  }
  // As keepers connect: TCP, role pgfailover_node.
  std::string node_conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port) + " dbname=pgfailover user=pgfailover_node";
  }
  PgConnection owner() const { return PgConnection::connect(owner_conninfo(), "test monitor (owner)"); }
  PgConnection keeper() const { return PgConnection::connect(node_conninfo(), "test monitor (keeper)"); }

  fs::path pgdata;
  InstancePaths paths;
  int port;
};

// Everything the schema holds that migrations or the API could change: the
// catalog of schema pgfailover (tables, columns, functions, privileges) and
// the rows of its tables.
std::string schema_digest(PgConnection& db) {
  return db
      .query_value(
          "SELECT md5(concat_ws('#',"
          " (SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || coalesce(c.relacl::text, ''), ',' ORDER BY"
          "   c.relname) FROM pg_class c WHERE c.relnamespace = 'pgfailover'::regnamespace),"
          " (SELECT string_agg(a.attrelid::regclass::text || '.' || a.attname || ':' || format_type(a.atttypid,"
          "   a.atttypmod), ',' ORDER BY a.attrelid::regclass::text, a.attnum) FROM pg_attribute a JOIN pg_class c"
          "   ON c.oid = a.attrelid WHERE c.relnamespace = 'pgfailover'::regnamespace AND a.attnum > 0"
          "   AND NOT a.attisdropped),"
          " (SELECT string_agg(p.oid::regprocedure::text || md5(p.prosrc) || coalesce(p.proacl::text, ''), ','"
          "   ORDER BY p.oid::regprocedure::text) FROM pg_proc p WHERE p.pronamespace = 'pgfailover'::regnamespace),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.formation x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.formation, x.group_id) FROM pgfailover.node_group x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.node x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.event x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.monitor_setting x),"
          " (SELECT string_agg(version || ' ' || name, ',' ORDER BY version) FROM pgfailover.schema_migration)))")
      .value_or("");
}

std::string tables_digest(PgConnection& db) {
  return db
      .query_value(
          "SELECT md5(concat_ws('#',"
          " (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.formation x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.formation, x.group_id) FROM pgfailover.node_group x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.node x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM pgfailover.event x),"
          " (SELECT string_agg(x::text, '|' ORDER BY x.name) FROM pgfailover.monitor_setting x)))")
      .value_or("");
}

size_t migration_file_count() { return list_migrations(sql_dir()).size(); }

std::int64_t register_node(PgConnection& keeper, const std::string& name, int port, int group = 0) {
  auto r = keeper.exec("SELECT node_id FROM pgfailover.register_node('default', $1, '127.0.0.1', $2, NULL, 50, true, $3)",
                       {param(name), param(port), param(group)});
  return r.int64(0, "node_id");
}

std::string goal_of(PgConnection& owner, std::int64_t id) {
  return owner.query_value("SELECT goal_state FROM pgfailover.node WHERE id = $1", {param(id)}).value_or("");
}

// What a keeper sends on every poll, reduced to what decisions need: it
// reports its goal as reached at once, streams from its assigned upstream
// while it is a standby, and as a primary has everything ready for its peers
// and runs the synchronous replication it was assigned.
class SimulatedKeeper {
 public:
  SimulatedKeeper(std::string conninfo, std::int64_t id) : db_(PgConnection::connect(conninfo, "monitor")), id_(id) {}

  // One node_active round trip; returns the goal state it was given.
  std::string report() {
    bool stopped = reported_ == "init" || reported_ == "wait_standby";
    bool standby = reported_ == "catchingup" || reported_ == "secondary";
    auto r = db_.exec(
        "SELECT a.goal_state, a.upstream_id, a.sync_num, a.sync_standbys,"
        " (SELECT coalesce(array_agg((p->>'id')::bigint ORDER BY (p->>'id')::bigint), '{}')"
        "  FROM jsonb_array_elements(a.peers) p) AS peer_ids"
        " FROM pgfailover.node_active($1, $2, $3, 1, '0/3000000', $4, $5, $6, $7::bigint[], $8::bigint[], '[]', NULL) a",
        {param(id_), param(reported_), param(!stopped), param(standby ? upstream_ : std::nullopt),
         param(standby && upstream_.has_value()), param(sync_num_), param(sync_standbys_),
         param(accepts_writes_ ? peers_ : std::vector<std::int64_t>{})});
    goal_ = r.str(0, "goal_state");
    upstream_ = r.opt_int64(0, "upstream_id");
    peers_ = r.int64_array(0, "peer_ids");
    // Reached at once, as a keeper would after its transition.
    reported_ = goal_;
    accepts_writes_ = goal_ == "single" || goal_ == "wait_primary" || goal_ == "primary";
    sync_num_ = static_cast<int>(r.opt_int64(0, "sync_num").value_or(0));
    sync_standbys_ = r.int64_array(0, "sync_standbys");
    return goal_;
  }
  const std::string& goal() const { return goal_; }
  std::int64_t id() const { return id_; }

 private:
  PgConnection db_;
  std::int64_t id_;
  std::string reported_ = "init";
  std::string goal_ = "init";
  std::optional<std::int64_t> upstream_;
  std::vector<std::int64_t> peers_;
  bool accepts_writes_ = false;
  int sync_num_ = 0;
  std::vector<std::int64_t> sync_standbys_;
};

// Keepers polling in the background, as real ones do, until destroyed.
// Catch2 assertions are not thread-safe: the thread records, the test asserts.
class KeeperFleet {
 public:
  KeeperFleet(std::string conninfo, std::vector<std::int64_t> ids, std::chrono::milliseconds period = 200ms) {
    thread_ = std::thread([this, conninfo, ids, period] {
      try {
        std::vector<SimulatedKeeper> keepers;
        for (auto id : ids) keepers.emplace_back(conninfo, id);
        while (!stop_) {
          for (auto& k : keepers) {
            auto goal = k.report();
            std::lock_guard lock(mutex_);
            goals_[k.id()] = goal;
          }
          std::this_thread::sleep_for(period);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        error_ = e.what();
      }
    });
  }
  ~KeeperFleet() {
    stop_ = true;
    thread_.join();
  }
  std::string goal(std::int64_t id) {
    std::lock_guard lock(mutex_);
    if (!error_.empty()) FAIL("simulated keeper failed: " << error_);
    return goals_.count(id) ? goals_[id] : "";
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::map<std::int64_t, std::string> goals_;
  std::string error_;
  std::thread thread_;
};

struct EventRow {
  std::int64_t node_id;
  std::string from, to, rule, reason;
};

std::vector<EventRow> decision_events(PgConnection& owner) {
  auto r = owner.exec(
      "SELECT node_id, from_state, to_state, rule, reason FROM pgfailover.event"
      " WHERE from_state IS NOT NULL ORDER BY id");
  std::vector<EventRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.opt_int64(i, "node_id").value_or(0), r.str(i, "from_state"), r.str(i, "to_state"),
                   r.str(i, "rule"), r.str(i, "reason")});
  }
  return out;
}

const EventRow* find_event(const std::vector<EventRow>& events, std::int64_t node, const std::string& from,
                           const std::string& to) {
  for (const auto& e : events) {
    if (e.node_id == node && e.from == from && e.to == to) return &e;
  }
  return nullptr;
}

void wait_until_logged(const Service& s, const std::string& text, std::chrono::milliseconds timeout) {
  wait_until([&] { return contains(s.log(), text); }, timeout, "\"" + text + "\" in the service log");
}

}  // namespace

TEST_CASE("create monitor from nothing, again, and migrations applied twice", "[monitor]") {
  TestDir dir("monitor-create");
  MonitorDir m(dir);
  LogSink sink(stderr, LogLevel::Warning);

  auto first = m.create();
  INFO(first.out << first.err);
  CHECK(contains(first.out, "monitor created in " + m.paths.pgdata.string() + "; applied " +
                                std::to_string(migration_file_count()) + " migrations"));
  CHECK(contains(first.out, "postgresql://pgfailover_node@127.0.0.1:" + std::to_string(m.port) + "/pgfailover"));
  CHECK(fs::exists(m.pgdata / "PG_VERSION"));
  struct stat st {};
  REQUIRE(::stat(m.paths.config_file().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto conf = read_file(m.paths.config_file());
  CHECK(contains(conf, "role = monitor"));
  CHECK(contains(read_file(m.pgdata / "pg_hba.conf"), "hostssl pgfailover pgfailover_node 127.0.0.1/32 trust"));
  // create leaves no Postgres running behind: `run` supervises it.
  CHECK_FALSE(postmaster_pid(m.pgdata).has_value());

  auto second = m.create();
  CHECK(contains(second.out, "monitor already created in " + m.paths.pgdata.string() + "; applied 0 new migrations"));
  CHECK(read_file(m.paths.config_file()) == conf);
  auto hba = read_file(m.pgdata / "pg_hba.conf");
  CHECK(hba.find("# BEGIN pgfailover") == hba.rfind("# BEGIN pgfailover"));  // not added twice

  auto other_port = pgfailover({"create", "monitor", "--pgdata", m.pgdata.string(), "--pgport",
                                std::to_string(m.port + 1), "--ssl-self-signed"});
  CHECK_FALSE(other_port.status.ok());
  CHECK(contains(other_port.err, "refusing to change it"));

  RunningPostgres pg(m.pgdata, m.port, m.paths.socket_dir(), sink);
  auto db = m.owner();
  auto before = schema_digest(db);
  CHECK(db.query_value("SELECT count(*) FROM pgfailover.schema_migration") ==
        std::to_string(migration_file_count()));

  SECTION("the runner applied every file: applying again does nothing") {
    CHECK(apply_migrations(db, sql_dir(), Logger(sink, "test")) == 0);
    CHECK(schema_digest(db) == before);
  }
  SECTION("every file run again by hand, unrecorded, fails nothing and changes nothing") {
    for (const auto& mig : list_migrations(sql_dir())) {
      auto r = run_command({.argv = {PostgresBinaries::locate().tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                     "--single-transaction", "-h", m.paths.socket_dir().string(), "-p",
                                     std::to_string(m.port), "-d", "pgfailover", "-f", mig.path.string()},
                            .env = {{"PGOPTIONS", "-c client_min_messages=warning"}}});
      INFO(mig.name << ": " << r.out << r.err);
      CHECK(r.status.ok());
    }
    CHECK(schema_digest(db) == before);
  }
}

TEST_CASE("pgfailover_node may call the API and nothing else", "[monitor]") {
  TestDir dir("monitor-grants");
  MonitorDir m(dir);
  LogSink sink(stderr, LogLevel::Warning);
  m.create();
  RunningPostgres pg(m.pgdata, m.port, m.paths.socket_dir(), sink);
  auto keeper = m.keeper();

  CHECK(keeper.exec("SELECT * FROM pgfailover.get_monitor_settings()").rows() > 0);
  auto id = register_node(keeper, "a", 6001);
  CHECK(id > 0);

  for (const std::string sql : {"SELECT * FROM pgfailover.node", "SELECT * FROM pgfailover.event",
                                "UPDATE pgfailover.node SET goal_state = 'primary'",
                                "INSERT INTO pgfailover.formation (name, dbname) VALUES ('x', 'x')",
                                "DELETE FROM pgfailover.monitor_setting"}) {
    INFO(sql);
    try {
      keeper.exec(sql);
      FAIL("pgfailover_node was allowed: " << sql);
    } catch (const PgError& e) {
      CHECK(e.sqlstate() == "42501");
      CHECK(contains(e.what(), "permission denied"));
    }
  }
}

TEST_CASE("scram-sha-256: keepers need the password kept in the state directory", "[monitor]") {
  TestDir dir("monitor-scram");
  MonitorDir m(dir);
  LogSink sink(stderr, LogLevel::Warning);
  auto r = m.create({"--auth", "scram-sha-256"});
  CHECK(contains(r.out, "passwords are in " + m.paths.secrets_file().string()));
  struct stat st {};
  REQUIRE(::stat(m.paths.secrets_file().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto secrets = read_file(m.paths.secrets_file());
  auto passwords = RolePasswords::load(m.paths.secrets_file());
  REQUIRE(passwords.complete());  // keepers', health checks' and replication's, born here
  auto password = *passwords.keeper;
  CHECK(password.size() == 32);
  for (const auto& pw : passwords.all()) {
    CHECK_FALSE(contains(r.out + r.err, pw));  // never printed or logged
    CHECK_FALSE(contains(read_file(m.paths.postgres_log()), pw));
  }
  CHECK(contains(read_file(m.pgdata / "pg_hba.conf"), "hostssl pgfailover pgfailover_node 127.0.0.1/32 scram-sha-256"));

  // Running create again keeps the password.
  m.create();
  CHECK(read_file(m.paths.secrets_file()) == secrets);

  RunningPostgres pg(m.pgdata, m.port, m.paths.socket_dir(), sink);
  CHECK_THROWS_AS(PgConnection::connect(m.node_conninfo() + " password=wrong", "monitor"), PgConnectError);
  auto keeper = PgConnection::connect(m.node_conninfo() + " password=" + password, "monitor");
  CHECK(keeper.exec("SELECT * FROM pgfailover.get_monitor_settings()").rows() > 0);

  // A monitor reachable from other hosts lets in the subnets of its own
  // interfaces (and loopback for the local CLI).
  auto block = keeper_hba_block("10.20.30.40", KeeperAuth::ScramSha256);
  CHECK(contains(block, "host pgfailover pgfailover_node samenet scram-sha-256"));
  CHECK(contains(keeper_hba_block("10.20.30.40", KeeperAuth::ScramSha256, true),
                 "hostssl pgfailover pgfailover_node samenet scram-sha-256"));
  CHECK_FALSE(contains(keeper_hba_block("localhost", KeeperAuth::Trust), "samenet"));
}

TEST_CASE("create monitor into an existing Postgres", "[monitor]") {
  TestDir dir("monitor-existing");
  LogSink sink(stderr, LogLevel::Warning);
  fs::path plain = dir / "plain";
  fs::path plain_sock = dir / "plain.sock";
  make_dirs(plain_sock);
  int port = free_port();
  LocalPostgres init(plain, port, plain_sock, PostgresBinaries::locate(), Logger(sink, "test"));
  init.initdb(current_user_name());
  RunningPostgres pg(plain, port, plain_sock, sink);
  pg.pg().connect("postgres").exec("CREATE DATABASE monitordb");

  std::string uri = "postgresql:///monitordb?host=" + plain_sock.string() + "&port=" + std::to_string(port);
  fs::path instance = dir / "instance";
  // A plain test Postgres without TLS: pgfailover does not configure a server it did not create.
  auto r = pgfailover_ok({"create", "monitor", "--pgdata", instance.string(), "--monitor-db", uri, "--no-ssl"});
  CHECK(contains(r.out, "applied " + std::to_string(migration_file_count()) + " migrations"));
  CHECK(contains(r.out, "postgresql://pgfailover_node@localhost:" + std::to_string(port) + "/monitordb"));
  CHECK_FALSE(fs::exists(instance / "PG_VERSION"));  // no initdb
  auto paths = InstancePaths::for_pgdata(instance);
  CHECK(contains(read_file(paths.config_file()), "database_uri = " + uri));

  auto again = pgfailover_ok({"create", "monitor", "--pgdata", instance.string(), "--monitor-db", uri, "--no-ssl"});
  CHECK(contains(again.out, "monitor already created in " + paths.pgdata.string() + "; applied 0 new migrations"));

  // run decides on that database and supervises no Postgres of its own.
  auto db = pg.pg().connect("monitordb");
  Service service(instance);
  auto id = db.exec("SELECT node_id FROM pgfailover.register_node('default', 'solo', '127.0.0.1', 6101, NULL, 50, true)")
                .int64(0, "node_id");
  wait_until([&] { return goal_of(db, id) == "single"; }, 10s, "the decider to make the first node single");
  CHECK_FALSE(contains(service.log(), "starting Postgres"));
}

TEST_CASE("run supervises the monitor's Postgres: SIGTERM leaves it running, a crash restarts it", "[monitor]") {
  TestDir dir("monitor-supervise");
  MonitorDir m(dir);
  make_dirs(m.paths.state_dir);
  fs::path out = m.paths.state_dir / "create.log";
  // create --run goes on as `run`.
  auto created = ChildProcess::spawn({.argv = {pgfailover_binary(), "create", "monitor", "--pgdata", m.pgdata.string(),
                                               "--pgport", std::to_string(m.port), "--ssl-self-signed", "--run"},
                                      .stdout_path = out.string(),
                                      .stderr_path = out.string()});
  auto stop_created = [&] {
    if (created.valid() && created.running()) created.stop(10s);
  };
  try {
    wait_until([&] { return contains(read_file_if_exists(out).value_or(""), "this process now decides"); }, 30s,
               "create --run to decide");
    auto pg_pid = postmaster_pid(m.pgdata);
    REQUIRE(pg_pid);
    created.signal(SIGTERM);
    auto status = created.wait_for(10s);
    REQUIRE(status);
    CHECK(status->ok());
    CHECK(postmaster_pid(m.pgdata) == pg_pid);  // left running
  } catch (...) {
    stop_created();
    kill_postmaster(m.pgdata);
    throw;
  }

  Service service(m.pgdata);
  wait_until_logged(service, "this process now decides", 20s);
  CHECK_FALSE(contains(service.log(), "starting Postgres"));  // adopted the running one
  kill_postmaster(m.pgdata);
  auto took = wait_until([&] { return postmaster_pid(m.pgdata).has_value() && m.keeper().is_healthy(); }, 10s,
                         "the monitor's Postgres to be restarted");
  std::cout << "monitor's Postgres restarted " << took.count() << " ms after kill -9\n";
  // The decider lost its session with the crash and decides again.
  auto keeper = m.keeper();
  auto id = register_node(keeper, "after-crash", free_port());
  auto owner = m.owner();
  wait_until([&] { return goal_of(owner, id) == "single"; }, 10s, "a decision after the restart");

  auto clean_shutdowns = [&] {
    auto log = read_file_if_exists(m.paths.postgres_log()).value_or("");
    size_t n = 0;
    for (auto pos = log.find("database system is shut down"); pos != std::string::npos;
         pos = log.find("database system is shut down", pos + 1)) {
      ++n;
    }
    return n;
  };
  auto before = clean_shutdowns();
  service.stop();  // SIGINT: a clean shutdown of Postgres too
  CHECK(clean_shutdowns() == before + 1);
  CHECK(contains(service.log(), "stopping the monitor's Postgres"));
}

// A created monitor whose `run` process holds the decider's lock, and the two
// sessions the decision tests use: the schema's owner and a keeper.
struct DecidingMonitor {
  MonitorDir m;
  Service service;
  PgConnection owner;
  PgConnection keeper;
  explicit DecidingMonitor(const TestDir& dir)
      : m(dir), service((m.create(), m.pgdata)), owner((wait_for_lock(), m.owner())), keeper(m.keeper()) {}

 private:
  void wait_for_lock() { wait_until_logged(service, "this process now decides", 20s); }
};

TEST_CASE("reports, decisions and their events: two nodes become primary and secondary", "[monitor]") {
  TestDir dir("monitor-decide");
  DecidingMonitor monitor(dir);
  auto& [m, service, owner, keeper] = monitor;

  int port1 = free_port(), port2 = free_port();
  auto n1 = register_node(keeper, "n1", port1);
  SimulatedKeeper k1(m.node_conninfo(), n1);
  // A report round trip returns the goal state; the first node becomes single.
  wait_until([&] { return k1.report() == "single"; }, 10s, "n1 to be assigned single");

  auto n2 = register_node(keeper, "n2", port2);
  SimulatedKeeper k2(m.node_conninfo(), n2);
  auto start = steady_ms();
  wait_until(
      [&] {
        k1.report();
        k2.report();
        return k1.goal() == "primary" && k2.goal() == "secondary";
      },
      30s, "n1 primary and n2 secondary");
  std::cout << "two simulated keepers reached primary/secondary in " << (steady_ms() - start) << " ms\n";

  // The assignment the keepers act on.
  auto a = owner.exec("SELECT assigned_sync_num, assigned_sync_standbys, may_write FROM pgfailover.node WHERE id = $1",
                      {param(n1)});
  CHECK(a.int64(0, "assigned_sync_num") == 1);
  CHECK(a.int64_array(0, "assigned_sync_standbys") == std::vector<std::int64_t>{n2});
  CHECK(a.boolean(0, "may_write"));
  CHECK(owner.query_value("SELECT assigned_upstream FROM pgfailover.node WHERE id = $1", {param(n2)}) ==
        std::to_string(n1));
  CHECK(owner.query_value("SELECT last_primary FROM pgfailover.node_group WHERE formation = 'default' AND group_id = 0") ==
        std::to_string(n1));

  auto events = decision_events(owner);
  struct Step {
    std::int64_t node;
    const char *from, *to, *rule;
  };
  for (const auto& s : {Step{n1, "init", "single", "first-node"}, Step{n1, "single", "wait_primary", "standby-joining"},
                        Step{n2, "init", "wait_standby", "join-as-standby"},
                        Step{n2, "wait_standby", "catchingup", "primary-ready"},
                        Step{n2, "catchingup", "secondary", "caught-up"},
                        Step{n1, "wait_primary", "primary", "sync-standbys-ready"}}) {
    INFO("node " << s.node << " " << s.from << " -> " << s.to);
    const auto* e = find_event(events, s.node, s.from, s.to);
    REQUIRE(e != nullptr);
    CHECK(e->rule == s.rule);
    CHECK_FALSE(e->reason.empty());
    // One log line per decision, with its reason.
    CHECK(contains(service.log(), "node " + std::to_string(s.node) + " (127.0.0.1:" +
                                      std::to_string(s.node == n1 ? port1 : port2) + ") " + s.from + " -> " + s.to +
                                      ": " + e->reason));
  }
  // The API shows them too, as the CLI will.
  auto api = keeper.exec("SELECT rule, reason FROM pgfailover.last_events('default', 50) WHERE rule = 'caught-up'");
  CHECK(api.rows() == 1);

  // A switchover: the decider settles the request and remembers the new primary.
  keeper.exec("SELECT pgfailover.perform_switchover('default', 0)");
  start = steady_ms();
  wait_until(
      [&] {
        k1.report();
        k2.report();
        return k1.goal() == "secondary" && k2.goal() == "primary";
      },
      30s, "n2 primary and n1 secondary after the switchover");
  std::cout << "simulated switchover done in " << (steady_ms() - start) << " ms\n";
  CHECK(owner.query_value("SELECT switchover_requested_at FROM pgfailover.node_group WHERE group_id = 0") ==
        std::nullopt);
  CHECK(owner.query_value("SELECT last_primary FROM pgfailover.node_group WHERE group_id = 0") == std::to_string(n2));
  events = decision_events(owner);
  CHECK(find_event(events, n1, "primary", "draining") != nullptr);
  CHECK(find_event(events, n2, "prepare_promotion", "wait_primary") != nullptr);

  // Dropping a node: goal dropped; once its keeper reports it, the row goes.
  keeper.exec("SELECT pgfailover.drop_node('default', 'n1')");
  wait_until(
      [&] {
        k2.report();
        return k1.report() == "dropped";
      },
      10s, "n1 to be assigned dropped");
  wait_until([&] { return k2.report() == "single"; }, 10s, "n2 alone: single");
  try {
    k1.report();  // reports "dropped"
  } catch (const PgError&) {
  }
  wait_until([&] { return owner.exec("SELECT 1 FROM pgfailover.node WHERE id = $1", {param(n1)}).rows() == 0; }, 10s,
             "the dropped node's row to be removed");
  CHECK(find_event(decision_events(owner), n1, "dropped", "dropped") == nullptr);
  CHECK(owner.exec("SELECT 1 FROM pgfailover.event WHERE node_id = $1 AND rule = 'node-removed'", {param(n1)}).rows() ==
        1);
  try {
    k1.report();
    FAIL("a removed node's report was accepted");
  } catch (const PgError& e) {
    CHECK_THAT(e.what(), Catch::Contains("is not registered with this monitor"));
  }
}

TEST_CASE("a group decide() refuses (two writable nodes) is logged and left unchanged", "[monitor]") {
  TestDir dir("monitor-refuse");
  DecidingMonitor monitor(dir);
  auto& [m, service, owner, keeper] = monitor;
  auto n1 = register_node(keeper, "w1", free_port());
  wait_until([&] { return goal_of(owner, n1) == "single"; }, 10s, "the first node to be single");
  auto n2 = register_node(keeper, "w2", free_port());
  wait_until([&] { return goal_of(owner, n2) == "wait_standby"; }, 10s, "the second node to join");

  // Corrupt the group behind the decider's back, as only a bug or a hand edit could.
  owner.exec("UPDATE pgfailover.node SET goal_state = 'primary', may_write = true");
  auto events_before = owner.query_value("SELECT count(*) FROM pgfailover.event");
  auto assignments = [&] {
    return owner.query_value(
        "SELECT string_agg(concat_ws(',', id, goal_state, assigned_sync_num, assigned_sync_standbys, assigned_upstream,"
        " may_write, goal_changed_at), ';' ORDER BY id) FROM pgfailover.node");
  };
  auto before = assignments();
  owner.exec("SELECT pg_notify('pgfailover_decide', 'default/0')");
  wait_until_logged(service, "group default/0: refusing to decide", 10s);
  std::this_thread::sleep_for(1s);  // two more ticks
  CHECK(owner.query_value("SELECT count(*) FROM pgfailover.event") == events_before);
  CHECK(assignments() == before);
  CHECK(contains(service.log(), "ERROR monitor/decider: group default/0: refusing to decide"));
  CHECK(contains(service.log(), "two writable nodes"));
}

TEST_CASE("health checks: a live Postgres is good, a dead one bad within 3 s", "[monitor]") {
  TestDir dir("monitor-health");
  MonitorDir m(dir);
  LogSink sink(stderr, LogLevel::Warning);
  m.create();

  // A data node's Postgres that rejects the monitor's role in pg_hba.conf:
  // it answers, so it is up.
  fs::path node_data = dir / "node";
  fs::path node_sock = dir / "node.sock";
  make_dirs(node_sock);
  int node_port = free_port();
  LocalPostgres init(node_data, node_port, node_sock, PostgresBinaries::locate(), Logger(sink, "test"));
  init.initdb(current_user_name());
  init.write_settings({{"listen_addresses", "127.0.0.1"}});
  auto hba = read_file(node_data / "pg_hba.conf");
  write_file_atomic(node_data / "pg_hba.conf", "host all pgfailover_monitor 127.0.0.1/32 reject\n" + hba, 0600);
  auto node_pg = std::make_unique<RunningPostgres>(node_data, node_port, node_sock, sink);

  Service service(m.pgdata);
  wait_until_logged(service, "this process now decides", 20s);
  auto owner = m.owner();
  auto keeper = m.keeper();
  auto live = register_node(keeper, "live", node_port, 1);
  auto nothing = register_node(keeper, "nothing", free_port(), 2);
  // Its own Postgres asks for a password: up as well.
  auto monitor_itself = register_node(keeper, "itself", m.port, 3);
  auto health = [&](std::int64_t id) {
    return owner.query_value("SELECT health FROM pgfailover.node WHERE id = $1", {param(id)}).value_or("");
  };
  wait_until([&] { return health(live) == "good" && health(monitor_itself) == "good"; }, 10s,
             "both live nodes to be healthy");
  wait_until([&] { return health(nothing) == "bad"; }, 10s, "a node nobody listens for to be unhealthy");

  kill_postmaster(node_data);  // SIGKILL: a crash, not a clean stop
  auto dead_at = steady_ms();
  auto took = wait_until([&] { return health(live) == "bad"; }, 10s, "the killed node to be unhealthy");
  std::cout << "health check: killed node marked bad after " << took.count() << " ms\n";
  CHECK(took.count() <= 3000 + 200);  // the 200 ms: this test polls the table every 50 ms, over a busy machine
  (void)dead_at;
  CHECK(contains(service.log(), "node " + std::to_string(live) + " (127.0.0.1:" + std::to_string(node_port) +
                                    ") health good -> bad"));
  auto since = owner.exec(
      "SELECT health_failures, health_since IS NOT NULL AS has_since, last_health_check_at IS NOT NULL AS checked"
      " FROM pgfailover.node WHERE id = $1",
      {param(live)});
  CHECK(since.int64(0, "health_failures") >= 2);
  CHECK(since.boolean(0, "has_since"));
  CHECK(since.boolean(0, "checked"));

  node_pg.reset();
  node_pg = std::make_unique<RunningPostgres>(node_data, node_port, node_sock, sink);
  wait_until([&] { return health(live) == "good"; }, 10s, "the restarted node to be healthy again");
}

TEST_CASE("bad input is refused with its message and changes nothing", "[monitor]") {
  TestDir dir("monitor-bad-input");
  MonitorDir m(dir);
  LogSink sink(stderr, LogLevel::Warning);
  m.create();
  RunningPostgres pg(m.pgdata, m.port, m.paths.socket_dir(), sink);

  SECTION("the SQL engineer's tests in sql/test") {
    int ran = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(sql_dir()) / "test")) {
      auto file = entry.path().filename().string();
      if (entry.path().extension() != ".sql" || file.size() < 9 || file.substr(file.size() - 9) != "_test.sql") continue;
      auto r = run_command({.argv = {PostgresBinaries::locate().tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                                     m.paths.socket_dir().string(), "-p", std::to_string(m.port), "-d", "pgfailover",
                                     "-f", entry.path().string()}},
                           5min);
      INFO(file << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
      CHECK(r.status.ok());
      ++ran;
    }
    std::cout << "ran " << ran << " SQL test files from sql/test\n";
  }

  SECTION("each kind of bad input of the contract, as a keeper would send it") {
    auto keeper = m.keeper();
    auto owner = m.owner();
    register_node(keeper, "a", 6001);
    keeper.exec("SELECT pgfailover.node_active(n.node_id, 'init', false, 0, NULL, NULL, false, 0, '{}', '{}', '[]', 42)"
                " FROM pgfailover.register_node('default', 'b', '127.0.0.1', 6002, NULL, 50, true) n");
    struct Case {
      const char* sql;
      const char* sqlstate;
      const char* message;
    };
    const Case cases[] = {
        {"SELECT pgfailover.register_node('nope', 'x', 'h1', 5432, NULL, 50, true)", "P0002",
         "formation \"nope\" does not exist"},
        {"SELECT pgfailover.register_node('default', 'a', '127.0.0.1', 6100, NULL, 50, true)", "23505",
         "node name \"a\" is already used in formation \"default\""},
        {"SELECT pgfailover.register_node('default', 'c', '127.0.0.1', 6001, NULL, 50, true)", "23505",
         "host:port 127.0.0.1:6001 is already used by node \"a\""},
        {"SELECT pgfailover.register_node('default', 'c', '127.0.0.1', 6003, NULL, 101, true)", "22023",
         "candidate priority 101 is out of range 0..100"},
        {"SELECT pgfailover.register_node('default', 'c', '127.0.0.1', 70000, NULL, 50, true)", "22023",
         "port 70000 is out of range 1..65535"},
        {"SELECT pgfailover.register_node('default', 'c', 'bad host', 6003, NULL, 50, true)", "22023",
         "host \"bad host\" is invalid"},
        {"SELECT pgfailover.register_node('default', 'c', '127.0.0.1', 6003, 43, 50, true)", "55000",
         "system identifier 43 differs from 42"},
        {"SELECT pgfailover.node_active(999, 'init', false, 0, NULL, NULL, false, 0, '{}', '{}', '[]', NULL)", "P0002",
         "node 999 is not registered with this monitor (was it dropped?)"},
        {"SELECT pgfailover.node_active(1, 'bogus', false, 0, NULL, NULL, false, 0, '{}', '{}', '[]', NULL)", "22023",
         "reported state \"bogus\" is not a node state"},
        // Reports are input from the network: bounded (sql/005_report_limits.sql).
        {"SELECT pgfailover.node_active(1, 'init', false, 0, NULL, NULL, false, 0, '{}', '{}',"
         " (SELECT jsonb_agg(jsonb_build_object('application_name', 'x')) FROM generate_series(1, 200)), NULL)",
         "22023", "the report of node 1 has 200 pg_stat_replication rows: at most 128"},
        {"SELECT pgfailover.node_active(1, 'init', false, 0, NULL, NULL, false, 0, '{}', '{}',"
         " jsonb_build_array(jsonb_build_object('application_name', repeat('x', 70000))), NULL)",
         "22023", "bytes of pg_stat_replication rows: at most 65536"},
        {"SELECT pgfailover.node_active(1, 'init', false, 0, NULL, NULL, false, 0, '{}', '{-3}', '[]', NULL)", "22023",
         "the report of node 1 names a node id that cannot exist"},
        {"SELECT pgfailover.node_active(1, 'init', false, 0, NULL, -1, false, 0, '{}', '{}', '[]', NULL)", "22023",
         "the report of node 1 names a node id that cannot exist"},
        {"SELECT pgfailover.drop_node('default', 'ghost')", "P0002",
         "node \"ghost\" is not registered in formation \"default\""},
        {"SELECT pgfailover.perform_switchover('default', 0)", "55000", "group 0 in formation \"default\" has no primary"},
        {"SELECT pgfailover.set_node_candidate_priority('default', 'a', -1)", "22023",
         "candidate priority -1 is out of range 0..100"},
        {"SELECT pgfailover.set_formation_number_sync_standbys('default', -1)", "22023",
         "number_sync_standbys -1 is out of range"},
        {"SELECT pgfailover.create_formation('default', 'postgres', 1)", "23505", "formation \"default\" already exists"},
        {"SELECT pgfailover.formation_uri('default', 'odbc')", "22023", "URI format \"odbc\" is not supported"},
        {"SELECT pgfailover.set_monitor_setting('nope', '1')", "P0002", "monitor setting \"nope\" does not exist"},
        {"SELECT pgfailover.set_monitor_setting('decide_tick_ms', 'soon')", "22023", "is not an integer"},
    };
    for (const auto& c : cases) {
      INFO(c.sql);
      auto before = tables_digest(owner);
      try {
        keeper.exec(c.sql);
        FAIL("accepted: " << c.sql);
      } catch (const PgError& e) {
        CHECK(e.sqlstate() == c.sqlstate);
        CHECK_THAT(e.what(), Catch::Contains(c.message));
      }
      CHECK(tables_digest(owner) == before);
    }
  }
}

// Two `run` processes on one monitor database: `first` decides, `second`
// (created with --monitor-db on the first one's database) waits to take over.
struct TwoMonitorProcesses {
  MonitorDir a;
  Service first;
  std::optional<Service> second_service;  // started only once `first` holds the lock
  Service& second;
  explicit TwoMonitorProcesses(const TestDir& dir)
      : a(dir, "a"), first((a.create(), a.pgdata)), second(start_second(dir)) {}

 private:
  Service& start_second(const TestDir& dir) {
    wait_until_logged(first, "this process now decides", 20s);
    fs::path b = dir / "b";
    pgfailover_ok({"create", "monitor", "--pgdata", b.string(), "--monitor-db", a.owner_conninfo(), "--ssl-self-signed"});
    second_service.emplace(b);
    wait_until_logged(*second_service, "another monitor process decides", 20s);
    return *second_service;
  }
};

TEST_CASE("two monitor processes: the other takes over within 5 s of kill -9, no decision twice", "[monitor]") {
  TestDir dir("monitor-takeover");
  TwoMonitorProcesses both(dir);
  auto& a = both.a;
  auto& first = both.first;
  auto& second = both.second;

  auto owner = a.owner();
  auto keeper = a.keeper();
  auto n1 = register_node(keeper, "n1", free_port());
  auto n2 = register_node(keeper, "n2", free_port());
  {
    KeeperFleet fleet(a.node_conninfo(), {n1, n2});
    wait_until([&] { return fleet.goal(n1) == "primary" && fleet.goal(n2) == "secondary"; }, 30s,
               "n1 primary and n2 secondary, decided by the first process");
    CHECK_FALSE(contains(second.log(), "init -> single"));  // the standby process decided nothing

    first.kill9();
    auto killed_at = steady_ms();
    auto n3 = register_node(keeper, "n3", free_port());
    wait_until([&] { return goal_of(owner, n3) != "init"; }, 10s, "the second process to decide about n3");
    auto takeover = steady_ms() - killed_at;
    std::cout << "takeover after kill -9 of the decider: " << takeover << " ms (first decision by the other process)\n";
    CHECK(takeover < 5000);
    CHECK(contains(second.log(), "this process now decides"));
    CHECK(contains(second.log(), "node " + std::to_string(n3) + " ("));

    SECTION("a decider whose session is terminated stops deciding, then decides again") {
      auto terminated = owner.query_value(
          "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
          " AND l.objid = 1885824612");  // 0x70676664, the decider lock
      CHECK(terminated == "1");
      auto t0 = steady_ms();
      wait_until_logged(second, "no longer deciding", 5s);
      auto n4 = register_node(keeper, "n4", free_port());
      wait_until([&] { return goal_of(owner, n4) != "init"; }, 10s, "a decision after the session came back");
      std::cout << "decider session terminated: deciding again after " << (steady_ms() - t0) << " ms\n";
    }
  }

  // Each change was decided once: no transition of a node appears twice.
  auto dupes = owner.exec(
      "SELECT node_id, from_state, to_state, rule, count(*) AS n FROM pgfailover.event WHERE from_state IS NOT NULL"
      " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1");
  for (int i = 0; i < dupes.rows(); ++i) {
    UNSCOPED_INFO("decided twice: node " << dupes.str(i, "node_id") << " " << dupes.str(i, "from_state") << " -> "
                                         << dupes.str(i, "to_state") << " (" << dupes.str(i, "rule") << ")");
  }
  CHECK(dupes.rows() == 0);
}

TEST_CASE("a frozen decider loses the lock to the other process and writes nothing after it resumes", "[monitor]") {
  TestDir dir("monitor-frozen");
  TwoMonitorProcesses both(dir);
  auto& a = both.a;
  auto& first = both.first;
  auto owner = a.owner();
  auto keeper = a.keeper();
  auto n1 = register_node(keeper, "n1", free_port());
  wait_until([&] { return goal_of(owner, n1) == "single"; }, 10s, "the first process to decide");

  // A stopped process cannot handle the SIGINT that stops it: continue it first, whatever happens.
  struct Resume {
    int pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{first.pid()};
  ::kill(first.pid(), SIGSTOP);
  auto frozen_at = steady_ms();
  auto n2 = register_node(keeper, "n2", free_port());
  wait_until([&] { return goal_of(owner, n2) != "init"; }, 15s, "the second process to decide about n2");
  auto took = steady_ms() - frozen_at;
  std::cout << "takeover from a frozen (SIGSTOP) decider: " << took << " ms\n";
  CHECK(took < 5000);  // the server ends the silent session after 3 s; the other retries every second

  ::kill(first.pid(), SIGCONT);
  wait_until_logged(first, "no longer deciding", 10s);
  auto n3 = register_node(keeper, "n3", free_port());
  wait_until([&] { return goal_of(owner, n3) != "init"; }, 10s, "a decision about n3");
  CHECK_FALSE(contains(first.log(), "node " + std::to_string(n3) + " ("));  // the resumed one decided nothing

  auto dupes = owner.exec(
      "SELECT node_id, from_state, to_state, rule, count(*) AS n FROM pgfailover.event WHERE from_state IS NOT NULL"
      " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1");
  for (int i = 0; i < dupes.rows(); ++i) {
    UNSCOPED_INFO("decided twice: node " << dupes.str(i, "node_id") << " " << dupes.str(i, "from_state") << " -> "
                                         << dupes.str(i, "to_state") << " (" << dupes.str(i, "rule") << ")");
  }
  CHECK(dupes.rows() == 0);
}

}  // namespace pgf::test
