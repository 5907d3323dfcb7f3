// Security on real Postgres 15 (issue 8), through the real binary:
// - TLS: every connection of the keepers, the health checks and replication
//   (streaming, pg_basebackup, pg_rewind) is encrypted, seen in pg_stat_ssl
//   and in each server's connection log; plain TCP is refused; verify-full
//   with the operator's CA works and bad certificates are refused at create.
// - scram-sha-256: during a run with a switchover, no password appears in a
//   log, an event, the output of show/config, a command line or environment
//   that ps shows, or any file but the 0600 secrets and pgpass files.
// - Least privilege: the health-check role can only connect, the replication
//   role only replicates, pg_hba entries name addresses.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/log.h"
#include "common/pg_connection.h"
#include "common/process.h"
#include "common/secrets.h"
#include "tests/support/cluster.h"

using namespace pgf;
using namespace pgf::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

// Superuser over the monitor's Unix socket.
PgConnection monitor_owner(const TestMonitor& m) {
  auto paths = InstancePaths::for_pgdata(m.pgdata);
  return PgConnection::connect("host=" + paths.socket_dir().string() + " port=" + std::to_string(m.port) +
                                   " dbname=pgfailover connect_timeout=2",
                               "test monitor (owner)");
}

// Turns on log_connections: every connection a server accepts is logged with
// its user, database and whether (and how) it is encrypted.
void log_connections(PgConnection c) {
  c.exec("ALTER SYSTEM SET log_connections = on");
  c.exec("SELECT pg_reload_conf()");
}

struct SslRow {
  std::string user;
  std::string application;
  std::string backend_type;
  bool ssl = false;
};

// The TCP connections of these roles the server has now, with pg_stat_ssl.
std::vector<SslRow> tls_of_connections(PgConnection& c, const std::vector<std::string>& roles) {
  std::string list;
  for (const auto& r : roles) list += (list.empty() ? "" : ",") + r;
  auto r = c.exec(
      "SELECT a.usename::text AS usename, coalesce(a.application_name, '') AS app, a.backend_type, s.ssl"
      " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
      " WHERE a.usename = ANY (string_to_array($1, ',')) AND a.client_addr IS NOT NULL",
      {param(list)});
  std::vector<SslRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.str(i, "usename"), r.str(i, "app"), r.str(i, "backend_type"), r.boolean(i, "ssl")});
  }
  return out;
}

// Every "connection authorized" line of a server log for pgfailover's roles.
std::vector<std::string> authorized_connections(const std::string& log) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(log)) {
    if (!contains(line, "connection authorized: user=pgfailover_")) continue;
    out.push_back(line);
  }
  return out;
}

// Fails unless a connection attempt is refused, with `why` in the message.
void require_refused(const std::string& conninfo, const std::string& why) {
  INFO(redact_secrets(conninfo));
  try {
    PgConnection::connect(conninfo, "plain");
    FAIL("connected: " << conninfo);
  } catch (const PgConnectError& e) {
    INFO(e.what());
    REQUIRE(contains(e.what(), why));
  }
}

std::string node_conninfo(const TestNode& n, const std::string& user, const std::string& extra) {
  return "host=127.0.0.1 port=" + std::to_string(n.port) + " user=" + user + " dbname=postgres connect_timeout=2 " +
         extra;
}

// Samples the command line (what ps shows) and the environment of every
// process this user may read, until stopped. Short-lived ones (pg_basebackup,
// pg_rewind, psql) are what it is for.
class ProcessWatcher {
 public:
  ProcessWatcher() : thread_([this] { loop(); }) {}
  ~ProcessWatcher() { stop(); }
  void stop() {
    if (stop_.exchange(true)) return;
    thread_.join();
  }
  // Each distinct command line and environment seen, joined.
  std::string seen() {
    std::lock_guard lk(mutex_);
    std::string out;
    for (const auto& s : seen_) out += s + "\n";
    return out;
  }
  size_t samples() const { return samples_; }

 private:
  void loop() {
    while (!stop_) {
      DIR* proc = ::opendir("/proc");
      if (proc) {
        while (dirent* e = ::readdir(proc)) {
          if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
          for (const char* what : {"cmdline", "environ"}) {
            std::optional<std::string> text;
            try {
              text = read_file_if_exists(fs::path("/proc") / e->d_name / what);
            } catch (const Error&) {
              continue;  // another user's process, or one that just exited
            }
            if (!text || text->empty()) continue;
            std::replace(text->begin(), text->end(), '\0', ' ');
            std::lock_guard lk(mutex_);
            seen_.insert(*text);
          }
        }
        ::closedir(proc);
      }
      ++samples_;
      std::this_thread::sleep_for(5ms);
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<size_t> samples_{0};
  std::mutex mutex_;
  std::set<std::string> seen_;
  std::thread thread_;  // last: starts once the members above exist
};

// The test's copy of the monitor's secrets file, as an operator would make it.
fs::path copy_secrets(const TestMonitor& m, const TestDir& dir) {
  auto copy = dir / "secrets-copy";
  write_file_atomic(copy, read_file(InstancePaths::for_pgdata(m.pgdata).secrets_file()), 0600);
  return copy;
}

// Every file under `root` smaller than 1 MB (WAL segments and relation files
// are larger or binary; passwords never reach them as text) whose content
// holds one of `needles`.
std::vector<fs::path> files_holding(const fs::path& root, const std::vector<std::string>& needles) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->file_size(ec) > (1u << 20)) continue;
    std::string text;
    try {
      text = read_file(it->path());
    } catch (const Error&) {
      continue;  // a socket, or a file that vanished
    }
    for (const auto& n : needles) {
      if (contains(text, n)) {
        out.push_back(it->path());
        break;
      }
    }
  }
  return out;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// The pg_hba.conf lines between pgfailover's markers.
std::vector<std::string> hba_block(const fs::path& pgdata) {
  std::vector<std::string> out;
  bool in = false;
  for (const auto& line : lines_of(read_file(pgdata / "pg_hba.conf"))) {
    if (line.rfind("# BEGIN pgfailover", 0) == 0) in = true;
    if (line.rfind("# END pgfailover", 0) == 0) break;
    if (in && !line.empty() && line[0] != '#') out.push_back(line);
  }
  return out;
}

// The audit: every line that lets someone in over TCP is hostssl, names one
// role and one address or host; wildcards only on lines that refuse.
void audit_hba(const fs::path& pgdata) {
  auto block = hba_block(pgdata);
  REQUIRE_FALSE(block.empty());
  for (const auto& line : block) {
    INFO(pgdata.string() << "/pg_hba.conf: " << line);
    std::vector<std::string> f;
    for (size_t i = 0; i < line.size();) {
      auto sp = line.find(' ', i);
      if (sp != i) f.push_back(line.substr(i, sp - i));
      if (sp == std::string::npos) break;
      i = sp + 1;
    }
    if (f[0] == "local") continue;  // the keeper's own peer login over the socket
    REQUIRE(f.size() >= 5);
    if (f[4] == "reject") continue;
    REQUIRE(f[0] == "hostssl");
    REQUIRE(f[2] != "all");
    for (const char* wildcard : {"all", "samenet", "samehost", "0.0.0.0/0", "::/0"}) REQUIRE(f[3] != wildcard);
  }
}

}  // namespace

TEST_CASE("security: with TLS every connection of keepers, health checks and replication is encrypted, plain is refused",
          "[security][tls]") {
  TestCluster cluster("sec-tls", {"a", "b"});
  auto& m = cluster.monitor();
  auto& a = cluster.node("a");
  auto& b = cluster.node("b");
  log_connections(monitor_owner(m));
  log_connections(a.sql());
  log_connections(b.sql());
  // Health checks ten times a second: their short connections are easy to catch.
  m.api().exec("SELECT pgfailover.set_monitor_setting('health_check_period_ms', '100')");

  // c is cloned from a (pg_basebackup), then a switchover makes b the primary
  // and a rejoins it (CHECKPOINT and pg_rewind's source connection).
  auto& c = cluster.add_node("c");
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}, {"c", "secondary"}}, 60s, cluster.all_nodes());

  // ---- pg_stat_ssl on the monitor: the keepers' sessions (and their heartbeats)
  auto owner = monitor_owner(m);
  wait_until([&] { return tls_of_connections(owner, {"pgfailover_node"}).size() >= 3; }, 20s,
             "the three keepers' sessions on the monitor");
  for (const auto& row : tls_of_connections(owner, {"pgfailover_node"})) {
    INFO("monitor: " << row.user << " " << row.application);
    REQUIRE(row.ssl);
  }
  // ---- pg_stat_ssl on the primary: both walsenders, and a health check caught in the act
  auto primary = a.sql();
  wait_until(
      [&] {
        int walsenders = 0;
        for (const auto& row : tls_of_connections(primary, {"pgfailover_replicator"})) {
          walsenders += row.backend_type == "walsender";
        }
        return walsenders == 2;
      },
      20s, "a's walsenders for b and c");
  for (const auto& row : tls_of_connections(primary, {"pgfailover_replicator"})) {
    INFO("primary: " << row.user << " " << row.application << " " << row.backend_type);
    REQUIRE(row.ssl);
  }
  std::optional<SslRow> health_check;
  auto deadline = steady_ms() + 30000;
  while (!health_check && steady_ms() < deadline) {
    for (const auto& row : tls_of_connections(primary, {"pgfailover_monitor"})) health_check = row;
  }
  REQUIRE(health_check.has_value());
  REQUIRE(health_check->application == "pgfailover_health_check");
  REQUIRE(health_check->ssl);

  auto sw = pgfailover_ok({"perform", "switchover", "--monitor", m.uri()});
  REQUIRE_THAT(sw.out, Catch::Contains("switchover done"));
  wait_states(m, {{"a", "secondary"}, {"b", "primary"}, {"c", "secondary"}}, 60s, cluster.all_nodes());

  // ---- every connection each server accepted from pgfailover's roles was encrypted
  std::map<std::string, int> seen;
  for (const auto* n : cluster.all_nodes()) {
    auto log = read_file(n->state_dir / "postgres.log");
    for (const auto& line : authorized_connections(log)) {
      INFO(n->name << ": " << line);
      REQUIRE(contains(line, " SSL enabled (protocol=TLSv1."));
      if (contains(line, "replication connection authorized: user=pgfailover_replicator")) ++seen["replication"];
      else if (contains(line, "user=pgfailover_replicator")) ++seen["rewind or checkpoint"];
      else if (contains(line, "user=pgfailover_monitor")) ++seen["health check"];
    }
  }
  auto monitor_log = read_file(InstancePaths::for_pgdata(m.pgdata).postgres_log());
  for (const auto& line : authorized_connections(monitor_log)) {
    INFO("monitor: " << line);
    REQUIRE(contains(line, " SSL enabled (protocol=TLSv1."));
    ++seen["keeper"];
  }
  INFO("connections seen by kind: " << seen["replication"] << " replication, " << seen["rewind or checkpoint"]
                                    << " rewind/checkpoint, " << seen["health check"] << " health checks, "
                                    << seen["keeper"] << " keepers");
  REQUIRE(seen["replication"] >= 3);  // c's base backup and walreceiver, a's walreceiver after its rejoin
  REQUIRE(seen["rewind or checkpoint"] >= 1);
  REQUIRE(seen["health check"] >= 5);
  REQUIRE(seen["keeper"] >= 1);  // c's create and keeper, after log_connections was turned on

  // ---- plain TCP is refused, for every role and both kinds of connection
  for (const auto* n : {&a, &b}) {
    require_refused(node_conninfo(*n, "pgfailover_replicator", "sslmode=disable"), "no encryption");
    require_refused(node_conninfo(*n, "pgfailover_replicator", "sslmode=disable replication=true"), "no encryption");
    require_refused(node_conninfo(*n, "pgfailover_monitor", "sslmode=disable"), "no encryption");
  }
  require_refused("host=127.0.0.1 port=" + std::to_string(m.port) +
                      " user=pgfailover_node dbname=pgfailover sslmode=disable connect_timeout=2",
                  "no encryption");
  // ... while the same over TLS gets in (trust on loopback, the default here).
  REQUIRE(PgConnection::connect(node_conninfo(b, "pgfailover_monitor", "sslmode=require"), "tls").ssl_in_use());

  // ---- what was configured: hostssl per address, ssl on, replication with sslmode=require
  for (const auto* n : cluster.all_nodes()) {
    audit_hba(n->pgdata);
    REQUIRE(n->value("SHOW ssl") == "on");
  }
  REQUIRE_THAT(c.value("SHOW primary_conninfo"), Catch::Contains("sslmode='require'"));
  REQUIRE_THAT(read_file(m.pgdata / "pg_hba.conf"), Catch::Contains("hostssl pgfailover pgfailover_node 127.0.0.1/32"));
  auto key = InstancePaths::for_pgdata(a.pgdata).state_dir / "server.key";
  REQUIRE(mode_of(key) == 0600);
  REQUIRE(mode_of(InstancePaths::for_pgdata(m.pgdata).state_dir / "server.key") == 0600);
  REQUIRE_THAT(pgfailover_ok({"config", "get", "ssl.mode", "--pgdata", a.pgdata.string()}).out,
               Catch::Contains("self-signed"));

  // ---- the URIs applications get ask for TLS too
  auto libpq = pgfailover_ok({"show", "uri", "--format", "libpq", "--pgdata", a.pgdata.string()}).out;
  auto jdbc = pgfailover_ok({"show", "uri", "--format", "jdbc", "--pgdata", a.pgdata.string()}).out;
  REQUIRE_THAT(libpq, Catch::Contains("&sslmode=require"));
  REQUIRE_THAT(jdbc, Catch::Contains("&ssl=true&sslmode=require"));
  REQUIRE_THAT(pgfailover_ok({"show", "uri", "--pgdata", m.pgdata.string()}).out,
               Catch::Contains("pgfailover?sslmode=require"));
}

TEST_CASE("security: no TLS choice, or a bad one, is one clear line and creates nothing", "[security][tls]") {
  TestDir dir("sec-tls-input");
  auto one_line = [](const CommandResult& r, const std::string& what) {
    INFO(r.out << r.err);
    REQUIRE_FALSE(r.status.ok());
    auto e = r.err;
    while (!e.empty() && e.back() == '\n') e.pop_back();
    REQUIRE(e.find('\n') == std::string::npos);
    REQUIRE_THAT(e, Catch::Contains(what));
  };
  auto monitor = dir / "m";
  auto node = dir / "n";
  one_line(pgfailover({"create", "monitor", "--pgdata", monitor.string(), "--pgport", "5999"}),
           "an explicit TLS choice is required: --ssl-self-signed, --ssl-ca-file F --server-cert F --server-key F "
           "(verify-full), or --no-ssl");
  one_line(pgfailover({"create", "postgres", "--pgdata", node.string(), "--hostname", "127.0.0.1", "--monitor",
                       "postgresql://pgfailover_node@127.0.0.1:5999/pgfailover"}),
           "an explicit TLS choice is required");
  one_line(pgfailover({"create", "monitor", "--pgdata", monitor.string(), "--pgport", "5999", "--no-ssl",
                       "--ssl-self-signed"}),
           "exclude each other");
  one_line(pgfailover({"create", "postgres", "--pgdata", node.string(), "--hostname", "127.0.0.1", "--monitor",
                       "postgresql://pgfailover_node@127.0.0.1:5999/pgfailover?sslmode=disable", "--ssl-self-signed"}),
           "asks for sslmode=disable, but TLS is on");
  one_line(pgfailover({"create", "postgres", "--pgdata", node.string(), "--hostname", "10.11.12.13", "--monitor",
                       "postgresql://pgfailover_node@127.0.0.1:5999/pgfailover", "--ssl-self-signed"}),
           "--auth scram-sha-256 needs the formation's passwords");

  // The operator's certificates: made here with openssl, checked at create.
  auto tls = dir / "tls";
  make_dirs(tls, 0700);
  auto ssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    run_checked({.argv = args, .cwd = tls.string()}, "openssl", 60s);
  };
  ssl({"req", "-x509", "-new", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt"});
  ssl({"req", "-x509", "-new", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=other CA", "-keyout", "other.key", "-out", "other.crt"});
  ssl({"req", "-x509", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-CA", "ca.crt", "-CAkey", "ca.key",
       "-keyout", "server.key", "-out", "server.crt"});
  auto ca_args = [&](const std::string& ca, const std::string& cert, const std::string& key) {
    return std::vector<std::string>{"create", "monitor", "--pgdata", monitor.string(), "--pgport", "5999",
                                    "--ssl-ca-file", (tls / ca).string(), "--server-cert", (tls / cert).string(),
                                    "--server-key", (tls / key).string()};
  };
  one_line(pgfailover(ca_args("other.crt", "server.crt", "server.key")), "is not signed by --ssl-ca-file");
  one_line(pgfailover(ca_args("ca.crt", "server.crt", "other.key")), "does not belong to --server-cert");
  one_line(pgfailover(ca_args("ca.crt", "server.crt", "missing.key")), "--server-key " + (tls / "missing.key").string());
  ::chmod((tls / "server.key").c_str(), 0644);
  one_line(pgfailover(ca_args("ca.crt", "server.crt", "server.key")), "must be mode 0600");
  REQUIRE_FALSE(fs::exists(monitor));
  REQUIRE_FALSE(fs::exists(InstancePaths::for_pgdata(node).config_file()));
}

TEST_CASE("security: verify-full with the operator's CA on every link", "[security][tls]") {
  TestDir dir("sec-verify-full");
  auto tls = dir / "tls";
  make_dirs(tls, 0700);
  auto ssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    run_checked({.argv = args, .cwd = tls.string()}, "openssl", 60s);
  };
  ssl({"req", "-x509", "-new", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt"});
  // One certificate for 127.0.0.1, where every server of this test listens.
  ssl({"req", "-x509", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-CA", "ca.crt", "-CAkey", "ca.key",
       "-keyout", "server.key", "-out", "server.crt"});
  std::vector<std::string> ca{"--ssl-ca-file", (tls / "ca.crt").string(), "--server-cert",
                              (tls / "server.crt").string(), "--server-key", (tls / "server.key").string()};
  TestMonitor m(dir, "monitor", ca);
  REQUIRE_THAT(m.uri(), Catch::EndsWith("?sslmode=verify-full"));
  TestNode a(dir, "a"), b(dir, "b");
  a.create(m, ca);
  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  b.create(m, ca);
  b.start();
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}}, 60s, {&a, &b});

  auto conninfo = b.value("SHOW primary_conninfo");
  REQUIRE_THAT(conninfo, Catch::Contains("sslmode='verify-full'"));
  REQUIRE_THAT(conninfo, Catch::Contains("sslrootcert='" + (tls / "ca.crt").string() + "'"));
  REQUIRE(a.value("SELECT bool_and(s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)") == "t");
  auto owner = monitor_owner(m);
  for (const auto& row : tls_of_connections(owner, {"pgfailover_node"})) REQUIRE(row.ssl);
  // The CLI of a node verifies the monitor the same way, and hands out verify-full URIs.
  REQUIRE_THAT(pgfailover_ok({"show", "uri", "--format", "libpq", "--pgdata", a.pgdata.string()}).out,
               Catch::Contains("&sslmode=verify-full&sslrootcert=" + (tls / "ca.crt").string()));
  // A client that trusts another CA is turned away by its own libpq.
  ssl({"req", "-x509", "-new", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-subj", "/CN=other CA", "-keyout", "other.key", "-out", "other.crt"});
  require_refused("host=127.0.0.1 port=" + std::to_string(m.port) +
                      " user=pgfailover_node dbname=pgfailover sslmode=verify-full connect_timeout=2 sslrootcert=" +
                      (tls / "other.crt").string(),
                  "certificate verify failed");
}

TEST_CASE("security: scram-sha-256 passwords appear in no log, event, show output, command line or stray file",
          "[security][scram]") {
  TestDir dir("sec-scram");
  ProcessWatcher ps;
  TestMonitor m(dir, "monitor", {"--auth", "scram-sha-256"});
  auto secrets_file = InstancePaths::for_pgdata(m.pgdata).secrets_file();
  auto passwords = RolePasswords::load(secrets_file).all();
  REQUIRE(passwords.size() == 3);
  auto copy = copy_secrets(m, dir);

  TestNode a(dir, "a"), b(dir, "b");
  a.create(m, {"--auth", "scram-sha-256", "--secrets-file", copy.string()});
  a.start();
  wait_states(m, {{"a", "single"}}, 60s, {&a});
  // b takes the passwords from the environment instead, as an operator may.
  auto created = pgfailover_env({"create", "postgres", "--pgdata", b.pgdata.string(), "--pgport",
                                 std::to_string(b.port), "--hostname", "127.0.0.1", "--monitor", m.uri(), "--name",
                                 "b", "--ssl-self-signed", "--auth", "scram-sha-256"},
                                {{"PGFAILOVER_SECRETS_FILE", copy.string()}});
  INFO(created.out << created.err);
  REQUIRE(created.status.ok());
  b.start();
  wait_states(m, {{"a", "primary"}, {"b", "secondary"}}, 60s, {&a, &b});

  // A switchover: a rejoins with pg_rewind, whose source connection needs the password.
  std::string output;
  auto run = [&](std::vector<std::string> args) {
    auto r = pgfailover_ok(args);
    output += r.out + r.err;
    return r;
  };
  run({"perform", "switchover", "--pgdata", a.pgdata.string()});
  wait_states(m, {{"a", "secondary"}, {"b", "primary"}}, 60s, {&a, &b});
  REQUIRE(contains(a.log(), "pg_rewind"));
  for (const auto* where : {&a.pgdata, &b.pgdata, &m.pgdata}) {
    for (const std::string what : {"state", "events", "uri", "settings", "standby-names"}) {
      run({"show", what, "--pgdata", where->string()});
      run({"show", what, "--json", "--pgdata", where->string()});
    }
    run({"config", "get", "--pgdata", where->string()});
    run({"config", "check", "--pgdata", where->string()});
  }
  run({"show", "events", "--count", "1000", "--json", "--pgdata", m.pgdata.string()});
  ps.stop();
  REQUIRE(ps.samples() > 100);
  REQUIRE(contains(ps.seen(), "pgfailover run --pgdata"));
  // pg_rewind and pg_basebackup live for a few milliseconds: usually caught.
  if (!contains(ps.seen(), "pg_basebackup") && !contains(ps.seen(), "pg_rewind")) {
    WARN("the process watcher caught neither pg_basebackup nor pg_rewind this time");
  }

  std::string logs = read_file(InstancePaths::for_pgdata(m.pgdata).postgres_log()) + m.service->log();
  for (const auto* n : {&a, &b}) logs += read_file(n->state_dir / "postgres.log") + n->log();
  std::string events = monitor_owner(m).query_value("SELECT string_agg(e::text, E'\\n') FROM pgfailover.event e").value_or("");
  REQUIRE(contains(events, "switchover"));
  for (const auto& pw : passwords) {
    REQUIRE_FALSE(contains(logs, pw));
    REQUIRE_FALSE(contains(events, pw));
    REQUIRE_FALSE(contains(output, pw));
    REQUIRE_FALSE(contains(ps.seen(), pw));
  }
  // On disk the passwords are in the secrets and pgpass files only, each 0600.
  std::set<fs::path> allowed{secrets_file, copy};
  for (const auto* n : {&a, &b}) {
    allowed.insert(n->state_dir / "secrets");
    allowed.insert(n->state_dir / "pgpass");
  }
  auto holding = files_holding(dir.path(), passwords);
  REQUIRE(holding.size() == allowed.size());
  for (const auto& f : holding) {
    INFO(f.string());
    REQUIRE(allowed.count(f) == 1);
    REQUIRE(mode_of(f) == 0600);
  }

  // The roles' passwords are SCRAM verifiers; pg_hba asks for them.
  REQUIRE(b.value("SELECT string_agg(rolname || '=' || left(rolpassword, 14), ',' ORDER BY rolname) FROM pg_authid "
                  "WHERE rolname IN ('pgfailover_replicator', 'pgfailover_monitor')") ==
          "pgfailover_monitor=SCRAM-SHA-256$,pgfailover_replicator=SCRAM-SHA-256$");
  for (const auto* n : {&a, &b}) {
    for (const auto& line : hba_block(n->pgdata)) {
      if (line.rfind("hostssl", 0) == 0) REQUIRE_THAT(line, Catch::Contains(" scram-sha-256"));
    }
  }
  auto pw = RolePasswords::load(secrets_file);
  require_refused(node_conninfo(b, "pgfailover_replicator", "sslmode=require"), "password");
  require_refused(node_conninfo(b, "pgfailover_monitor", "sslmode=require password=wrong-password"),
                  "password authentication failed");

  // ---- least privilege on the primary (b)
  {
    auto su = b.sql();
    su.exec("CREATE TABLE IF NOT EXISTS app_data (secret text)");
    su.exec("INSERT INTO app_data VALUES ('row only the application may read')");
  }
  auto health = PgConnection::connect(
      node_conninfo(b, "pgfailover_monitor", "sslmode=require password=" + conninfo_quote(*pw.health_check)), "health");
  auto repl = PgConnection::connect(
      node_conninfo(b, "pgfailover_replicator", "sslmode=require password=" + conninfo_quote(*pw.replication)), "repl");
  for (auto* c : {&health, &repl}) {
    for (const std::string sql : {"SELECT * FROM app_data", "CREATE TABLE intruder (x int)",
                                  "SELECT pg_read_file('postgresql.conf')", "SET ROLE postgres"}) {
      INFO(sql);
      try {
        c->exec(sql);
        FAIL("allowed: " << sql);
      } catch (const PgError& e) {
        REQUIRE(e.sqlstate() == "42501");
      }
    }
  }
  auto attrs = b.value(
      "SELECT string_agg(format('%s:%s%s%s%s%s', rolname, rolsuper::int, rolcreatedb::int, rolcreaterole::int, "
      "rolreplication::int, rolbypassrls::int), ',' ORDER BY rolname) FROM pg_roles "
      "WHERE rolname IN ('pgfailover_replicator', 'pgfailover_monitor')");
  REQUIRE(attrs == "pgfailover_monitor:00000,pgfailover_replicator:00010");
  // The health check's role belongs to no role; the replicator only to pg_checkpoint (pg_rewind's CHECKPOINT).
  REQUIRE(b.value("SELECT coalesce(string_agg(r.rolname || '<' || g.rolname, ','), 'none') FROM pg_auth_members m "
                  "JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "
                  "WHERE r.rolname IN ('pgfailover_replicator', 'pgfailover_monitor')") ==
          "pgfailover_replicator<pg_checkpoint");
  // Only the database the health check needs: pg_hba names it.
  require_refused("host=127.0.0.1 port=" + std::to_string(b.port) +
                      " user=pgfailover_monitor dbname=template1 sslmode=require connect_timeout=2 password=" +
                      conninfo_quote(*pw.health_check),
                  "pg_hba.conf rejects connection");
  // The replicator streams WAL, which is what it is for.
  auto stream = PgConnection::connect(
      node_conninfo(b, "pgfailover_replicator",
                    "replication=true sslmode=require password=" + conninfo_quote(*pw.replication)),
      "replication");
  REQUIRE(stream.ssl_in_use());
  for (const auto* n : {&a, &b}) audit_hba(n->pgdata);
}
