// Hostile input and the security building blocks, without processes:
// - every file of the known-bad corpus (tests/fuzz/known-bad/<parser>/) is
//   refused by its parser with one clear line (or, for the parsers that answer
//   "not this" with nullopt, refused), and no error repeats a password it was given;
// - TLS choices, pg_hba entries (hostssl, per address, plain TCP refused),
//   passwords files, and log redaction on hostile lengths.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/secrets.h"
#include "common/sync_config.h"
#include "common/tls.h"
#include "keeper/hba_rules.h"
#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/wal_position.h"
#include "monitor/monitor_setup.h"

using namespace pgf;

namespace {

const fs::path kKnownBad = fs::path(PGFAILOVER_FUZZ_DIR) / "known-bad";

// The corpus files of one parser, by name (so a failure names the file).
std::map<std::string, std::string> corpus(const std::string& parser) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(kKnownBad / parser)) {
    if (e.is_regular_file()) out[e.path().filename().string()] = read_file(e.path());
  }
  REQUIRE(out.size() >= 5);  // the corpus is there and was not emptied by mistake
  return out;
}

// A human-edited file ends with a line break that is not part of the input.
std::string without_final_newline(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// One line, saying something, short enough for a terminal and a log line.
void require_clear(const std::string& message) {
  INFO("error: " << message);
  REQUIRE_FALSE(message.empty());
  REQUIRE(message.find('\n') == std::string::npos);
  REQUIRE(message.size() < 1000);
}

// Runs `parse` and returns its pgf::Error message; fails if it accepts the
// input or throws anything else (a crash-like exception is not a clear error).
template <typename F>
std::string refusal(F&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a clear error but " << typeid(e).name() << ": " << e.what());
  }
  FAIL("accepted");
  return "";
}

// Passwords planted in the corpus: no error may repeat them.
constexpr const char* kPlantedSecrets[] = {"S3CRET-in-uri", "S3CRET-kv"};

void sqlite_exec(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(sql << ": " << msg);
  REQUIRE(rc == SQLITE_OK);
}

KeeperRecord some_identity() {
  KeeperRecord r;
  r.node_id = 3;
  r.formation = "default";
  r.name = "idp001";
  return r;
}

}  // namespace

TEST_CASE("known-bad corpus: connection strings and URIs", "[security][corpus]") {
  for (const auto& [file, text] : corpus("conninfo")) {
    INFO("tests/fuzz/known-bad/conninfo/" << file);
    auto msg = refusal([&] { ConnInfo::parse(without_final_newline(text), "monitor URI"); });
    require_clear(msg);
    REQUIRE_THAT(msg, Catch::Contains("monitor URI"));
    for (const char* secret : kPlantedSecrets) REQUIRE(msg.find(secret) == std::string::npos);
  }
}

TEST_CASE("known-bad corpus: configuration files of keepers and monitors", "[security][corpus]") {
  for (const auto& [file, text] : corpus("config")) {
    INFO("tests/fuzz/known-bad/config/" << file);
    auto msg = refusal([&] {
      auto cfg = ConfigFile::parse(text, "pgfailover.conf");
      if (cfg.get_or("pgfailover.role", "") == "monitor") {
        MonitorConfig::from(cfg);
      } else {
        KeeperConfig::from_file(cfg);
      }
    });
    require_clear(msg);
    REQUIRE_THAT(msg, Catch::Contains("pgfailover.conf"));  // names the file
  }
}

TEST_CASE("known-bad corpus: the keeper's state database", "[security][corpus]") {
  TempDir dir("pgf-corpus-state");
  for (const auto& [file, content] : corpus("keeper_state")) {
    INFO("tests/fuzz/known-bad/keeper_state/" << file);
    fs::path db = dir / (file + ".db");
    if (file.ends_with(".sql")) {
      // A valid keeper.db, then the mutation the file describes.
      KeeperState::create(db, some_identity());
      sqlite_exec(db, content);
    } else {
      write_file_atomic(db, content, 0600);
    }
    auto msg = refusal([&] { KeeperState::open(db); });
    require_clear(msg);
    REQUIRE_THAT(msg, Catch::Contains(db.string()));
  }
}

TEST_CASE("known-bad corpus: secrets files", "[security][corpus]") {
  TempDir dir("pgf-corpus-secrets");
  for (const auto& [file, content] : corpus("secrets")) {
    INFO("tests/fuzz/known-bad/secrets/" << file);
    fs::path copy = dir / file;  // git keeps 0644; the content is what is under test
    write_file_atomic(copy, content, 0600);
    auto msg = refusal([&] { RolePasswords::load(copy); });
    require_clear(msg);
  }
}

TEST_CASE("known-bad corpus: WAL positions, timeline histories and synchronous_standby_names", "[security][corpus]") {
  for (const auto& [file, text] : corpus("lsn")) {
    INFO("tests/fuzz/known-bad/lsn/" << file);
    REQUIRE_FALSE(parse_lsn(without_final_newline(text)).has_value());
  }
  for (const auto& [file, text] : corpus("timeline_history")) {
    INFO("tests/fuzz/known-bad/timeline_history/" << file);
    auto msg = refusal([&] { parse_timeline_history(text); });
    require_clear(msg);
    REQUIRE_THAT(msg, Catch::Contains("timeline history line"));
  }
  for (const auto& [file, text] : corpus("sync_config")) {
    INFO("tests/fuzz/known-bad/sync_config/" << file);
    REQUIRE_FALSE(SyncConfig::from_guc(without_final_newline(text)).has_value());
  }
}

TEST_CASE("TLS: one explicit choice, recorded in the configuration, applied to every client", "[security][tls]") {
  fs::path state = "/var/lib/postgresql/15/main.pgfailover";
  REQUIRE_THROWS_WITH(tls_from_options({}, state), Catch::Contains("an explicit TLS choice is required"));
  TlsOptions both;
  both.self_signed = true;
  both.no_ssl = true;
  REQUIRE_THROWS_WITH(tls_from_options(both, state), Catch::Contains("exclude each other"));
  TlsOptions partial;
  partial.ca_file = "/etc/ssl/ca.crt";
  REQUIRE_THROWS_WITH(tls_from_options(partial, state), Catch::Contains("needs all three"));
  TlsOptions missing_files;
  missing_files.ca_file = "/nonexistent/ca.crt";
  missing_files.server_cert = "/nonexistent/n.crt";
  missing_files.server_key = "/nonexistent/n.key";
  REQUIRE_THROWS_WITH(tls_from_options(missing_files, state), Catch::Contains("--ssl-ca-file /nonexistent/ca.crt: no such file"));

  TlsOptions no;
  no.no_ssl = true;
  REQUIRE_FALSE(tls_from_options(no, state).enabled());
  TlsOptions self;
  self.self_signed = true;
  auto tls = tls_from_options(self, state);
  REQUIRE(tls.mode == TlsMode::SelfSigned);
  REQUIRE(tls.cert_file == state / "server.crt");
  REQUIRE(tls.key_file == state / "server.key");
  REQUIRE(tls.hba_type() == "hostssl");
  auto server = tls.server_settings();
  REQUIRE(server["ssl"] == "on");
  REQUIRE(server["ssl_key_file"] == (state / "server.key").string());

  ConfigFile f;
  tls.save_to(f);
  auto round = TlsSettings::from(ConfigFile::parse(f.to_string(), "pgfailover.conf"));
  REQUIRE(round.mode == TlsMode::SelfSigned);
  REQUIRE(round.cert_file == tls.cert_file);
  REQUIRE(TlsSettings::from(ConfigFile::parse("[pgfailover]\nrole = keeper\n", "old.conf")).mode == TlsMode::Off);

  // Clients: sslmode=require added; a weaker sslmode refused; a stronger one kept.
  auto ci = ConnInfo::parse("postgresql://pgfailover_node@sec001:5431/pgfailover");
  tls.apply_to(ci, "--monitor URI");
  REQUIRE(ci.get("sslmode") == "require");
  for (const char* weak : {"disable", "allow", "prefer"}) {
    auto w = ConnInfo::parse(std::string("host=sec001 sslmode=") + weak);
    REQUIRE_THROWS_WITH(tls.apply_to(w, "--monitor URI"), Catch::Contains(std::string("sslmode=") + weak));
  }
  auto strong = ConnInfo::parse("host=sec001 sslmode=verify-full");
  tls.apply_to(strong, "--monitor URI");
  REQUIRE(strong.get("sslmode") == "verify-full");

  TlsSettings ca;
  ca.mode = TlsMode::VerifyFull;
  ca.ca_file = "/etc/pgfailover/ca.crt";
  auto vf = ConnInfo::parse("host=sec001");
  ca.apply_to(vf, "--monitor URI");
  REQUIRE(vf.get("sslmode") == "verify-full");
  REQUIRE(vf.get("sslrootcert") == "/etc/pgfailover/ca.crt");
  TlsSettings off;
  auto plain = ConnInfo::parse("host=sec001");
  off.apply_to(plain, "--monitor URI");
  REQUIRE_FALSE(plain.has("sslmode"));  // --no-ssl: libpq's default, nothing forced
  REQUIRE(off.server_settings().empty());
}

TEST_CASE("pg_hba: hostssl with TLS, plain TCP refused, grants name the peers' addresses", "[security][hba]") {
  HbaAccess a;
  a.peers = {{2, "10.0.0.2"}, {3, "idp003"}, {3, "10.0.0.3"}};
  a.monitor_hosts = {"10.0.0.9"};
  a.local_user = "postgres";
  a.auth_method = "scram-sha-256";
  a.tls = true;
  auto block = render_hba_block(a);
  REQUIRE_THAT(block, Catch::Contains("hostssl replication pgfailover_replicator 10.0.0.2/32 scram-sha-256 # node 2"));
  REQUIRE_THAT(block, Catch::Contains("hostssl postgres pgfailover_monitor 10.0.0.9/32 scram-sha-256 # monitor"));
  REQUIRE_THAT(block, Catch::Contains("host all pgfailover_replicator,pgfailover_monitor all reject"));
  REQUIRE_THAT(block, Catch::Contains("host replication pgfailover_replicator all reject"));
  // The refusals come last: after every grant.
  REQUIRE(block.find(" reject") > block.rfind("scram-sha-256"));
  REQUIRE(hba_block_peer_ids(block) == std::vector<std::int64_t>{2, 3});

  // The audit: every line that lets someone in names one address or host;
  // wildcards appear only on lines that refuse.
  for (bool tls : {false, true}) {
    a.tls = tls;
    for (const auto& line_text : {render_hba_block(a)}) {
      std::string rest = line_text;
      size_t pos = 0;
      while (pos < rest.size()) {
        auto nl = rest.find('\n', pos);
        std::string line = rest.substr(pos, nl - pos);
        pos = nl == std::string::npos ? rest.size() : nl + 1;
        if (line.empty() || line[0] == '#' || line.rfind("local ", 0) == 0) continue;
        INFO(line);
        std::vector<std::string> fields;
        for (size_t i = 0; i < line.size();) {
          auto sp = line.find(' ', i);
          if (sp == i) {
            ++i;
            continue;
          }
          fields.push_back(line.substr(i, sp - i));
          if (sp == std::string::npos) break;
          i = sp + 1;
        }
        REQUIRE(fields.size() >= 5);
        const auto& address = fields[3];
        const auto& method = fields[4];
        if (method == "reject") continue;
        REQUIRE(method == "scram-sha-256");
        REQUIRE(fields[0] == (tls ? "hostssl" : "host"));
        for (const char* wildcard : {"all", "samenet", "samehost", "0.0.0.0/0", "::/0"}) REQUIRE(address != wildcard);
        bool one_address = address.ends_with("/32") || address.ends_with("/128") || address.find('/') == std::string::npos;
        REQUIRE(one_address);
        REQUIRE(fields[2] != "all");  // a named role, never every role
      }
    }
  }
  for (const char* wildcard : {"0.0.0.0", "::", "all", "samenet", "samehost", "10.0.0.0/8", "a b", "x\ny"}) {
    INFO(wildcard);
    REQUIRE_THROWS_AS(hba_address(wildcard), Error);
  }

  // The monitor's block: hostssl, and pgfailover_node refused in clear text.
  auto monitor_block = keeper_hba_block("127.0.0.1", KeeperAuth::ScramSha256, true);
  REQUIRE_THAT(monitor_block, Catch::Contains("hostssl pgfailover pgfailover_node 127.0.0.1/32 scram-sha-256"));
  REQUIRE_THAT(monitor_block, Catch::Contains("host all pgfailover_node,pgfailover_monitor all reject"));
  REQUIRE_THAT(keeper_hba_block("127.0.0.1", KeeperAuth::Trust, false),
               Catch::Contains("host pgfailover pgfailover_node 127.0.0.1/32 trust"));
}

TEST_CASE("passwords: 0600 files, never world-readable input, pgpass escaping, the environment cleared",
          "[security][secrets]") {
  TempDir dir("pgf-secrets");
  RolePasswords p;
  p.generate_missing();
  REQUIRE(p.complete());
  REQUIRE(p.keeper->size() == 32);
  REQUIRE(*p.keeper != *p.replication);
  auto file = dir / "secrets";
  p.save(file);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0600);
  auto back = RolePasswords::load(file);
  REQUIRE(back.keeper == p.keeper);
  REQUIRE(back.health_check == p.health_check);
  REQUIRE(back.replication == p.replication);

  ::chmod(file.c_str(), 0644);
  auto msg = refusal([&] { RolePasswords::load(file); });
  REQUIRE_THAT(msg, Catch::Contains("readable or writable by every user"));
  for (const auto& pw : p.all()) REQUIRE(msg.find(pw) == std::string::npos);

  REQUIRE(pgpass_line("pgfailover_replicator", "a:b\\c12345") == "*:*:*:pgfailover_replicator:a\\:b\\\\c12345\n");
  auto bad = refusal([] { check_password("has blank123", "pgfailover_node"); });
  REQUIRE(bad.find("has blank123") == std::string::npos);  // never quoted

  ::setenv(kReplicationPasswordEnv, "from-the-environment-1", 1);
  ::setenv(kKeeperPasswordEnv, "short", 1);
  REQUIRE_THROWS_WITH(RolePasswords::take_from_environment(), Catch::Contains(kKeeperPasswordEnv));
  REQUIRE(std::getenv(kReplicationPasswordEnv) == nullptr);  // no child process inherits them
  REQUIRE(std::getenv(kKeeperPasswordEnv) == nullptr);
  ::setenv(kReplicationPasswordEnv, "from-the-environment-1", 1);
  auto env = RolePasswords::take_from_environment();
  REQUIRE(env.replication == std::string("from-the-environment-1"));
  REQUIRE_FALSE(env.keeper.has_value());
}

TEST_CASE("log redaction: passwords in conninfo and URIs, at hostile lengths", "[security][log]") {
  REQUIRE(redact_secrets("host=a password=xyz port=1") == "host=a password=*** port=1");
  REQUIRE(redact_secrets("host=a PassWord = 'x y\\' z' port=1") == "host=a PassWord = *** port=1");
  REQUIRE(redact_secrets("sslpassword=abc") == "sslpassword=***");
  REQUIRE(redact_secrets("postgresql://u:secret@h:5/db?password=p2&x=1") == "postgresql://u:***@h:5/db?password=***&x=1");
  REQUIRE(redact_secrets("see postgres://user:pw@h and postgresql://x@h2") == "see postgres://user:***@h and postgresql://x@h2");
  REQUIRE(redact_secrets("password=") == "password=");
  REQUIRE(redact_secrets("no secret here: user@host") == "no secret here: user@host");
  // std::regex overflowed the stack on a 100 kB value; this must not.
  std::string huge = "password='" + std::string(1 << 20, 'a');
  REQUIRE(redact_secrets(huge) == "password=***");
  std::string many_uris;
  for (int i = 0; i < 10000; ++i) many_uris += "postgresql://u:p@h ";
  REQUIRE(redact_secrets(many_uris).find(":p@") == std::string::npos);
  auto err = refusal([&] { ConnInfo::parse("password='" + std::string(200000, 'x') + " host=h"); });
  REQUIRE(err.find("xxxx") == std::string::npos);
}

TEST_CASE("keeper configuration: TLS and --auth round trip, the monitor URI may not ask for less TLS",
          "[security][config]") {
  KeeperConfig c;
  c.pgdata = "/var/lib/postgresql/15/main";
  c.hostname = "idp001";
  c.monitor_uri = "postgresql://pgfailover_node@sec001:5431/pgfailover";
  c.auth = AuthMethod::ScramSha256;
  c.tls.mode = TlsMode::SelfSigned;
  c.tls.cert_file = "/var/lib/postgresql/15/main.pgfailover/server.crt";
  c.tls.key_file = "/var/lib/postgresql/15/main.pgfailover/server.key";
  REQUIRE_NOTHROW(c.validate());
  auto round = KeeperConfig::from_file(ConfigFile::parse(c.to_file().to_string(), "pgfailover.conf"));
  REQUIRE(round.auth == AuthMethod::ScramSha256);
  REQUIRE(round.tls.mode == TlsMode::SelfSigned);
  REQUIRE(round.tls.key_file == c.tls.key_file);
  c.monitor_uri += "?sslmode=prefer";
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("asks for sslmode=prefer, but TLS is on"));
}

TEST_CASE("keeper state: the file is private to the keeper's user", "[security][state]") {
  TempDir dir("pgf-state-mode");
  auto state = KeeperState::create(dir / "keeper.db", some_identity());
  struct stat st {};
  REQUIRE(::stat((dir / "keeper.db").c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0077) == 0);
}
