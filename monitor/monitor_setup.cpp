#include "monitor/monitor_setup.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <fstream>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/local_postgres.h"
#include "common/pg_connection.h"
#include "common/process.h"
#include "monitor/migrations.h"

namespace pgf {

namespace {

constexpr std::string_view kHbaBegin = "# BEGIN pgfailover";
constexpr std::string_view kHbaEnd = "# END pgfailover";
constexpr const char* kPasswordKey = "monitor.pgfailover_node_password";

std::string uri_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Our lines go first in pg_hba.conf (the first matching line wins, and
// initdb's own lines would otherwise ask keepers for a password they do not
// have); running create again replaces them instead of adding more.
void install_hba_block(const fs::path& pgdata, const std::string& block) {
  fs::path hba = pgdata / "pg_hba.conf";
  std::string text = read_file_if_exists(hba).value_or("");
  auto begin = text.find(kHbaBegin);
  if (begin != std::string::npos) {
    auto end = text.find(kHbaEnd, begin);
    if (end == std::string::npos) {
      throw Error("{}: \"{}\" without \"{}\": fix the file by hand", hba.string(), kHbaBegin, kHbaEnd);
    }
    auto eol = text.find('\n', end);
    text.erase(begin, eol == std::string::npos ? std::string::npos : eol + 1 - begin);
  }
  write_file_atomic(hba, block + text, 0600);
}

std::string random_password() {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string out;
  while (out.size() < 32) {
    unsigned char c = 0;
    if (!urandom.read(reinterpret_cast<char*>(&c), 1)) throw Error("cannot read /dev/urandom for a password");
    if (c < 248) out += alphabet[c % alphabet.size()];  // 248 = 4 * 62: no bias
  }
  return out;
}

// Keepers authenticate with a password only the monitor's owner and the
// operator can read; it is set on the role, never printed or logged.
fs::path ensure_keeper_password(PgConnection& db, const InstancePaths& paths) {
  fs::path file = paths.secrets_file();
  ConfigFile secrets;
  if (fs::exists(file)) secrets = ConfigFile::load(file.string());
  auto password = secrets.get(kPasswordKey);
  if (!password) {
    password = random_password();
    secrets.set(kPasswordKey, *password);
    secrets.save(file.string(), 0600);
  }
  db.exec("ALTER ROLE pgfailover_node PASSWORD " + sql_literal(*password));
  return file;
}

void check_unchanged(const std::string& what, const std::string& before, const std::optional<std::string>& asked,
                     const fs::path& pgdata) {
  if (asked && *asked != before) {
    throw Error("monitor already created in {} with {} {}; refusing to change it to {} (create a new monitor, or "
                "edit the configuration by hand)",
                pgdata.string(), what, before, *asked);
  }
}

// Stops the Postgres that create started, on every way out: without --run,
// create leaves the machine as it found it; `run` then supervises it.
class StartedPostgres {
 public:
  StartedPostgres(const LocalPostgres& pg, ChildProcess child) : pg_(pg), child_(std::move(child)) {}
  ~StartedPostgres() {
    try {
      pg_.stop(StopMode::Fast);
      child_.wait_for(std::chrono::seconds(30));
    } catch (...) {
    }
  }
  StartedPostgres(const StartedPostgres&) = delete;
  StartedPostgres& operator=(const StartedPostgres&) = delete;

 private:
  const LocalPostgres& pg_;
  ChildProcess child_;
};

}  // namespace

std::string_view name(KeeperAuth a) { return a == KeeperAuth::Trust ? "trust" : "scram-sha-256"; }

KeeperAuth parse_keeper_auth(std::string_view text) {
  if (text == "trust") return KeeperAuth::Trust;
  if (text == "scram-sha-256") return KeeperAuth::ScramSha256;
  throw Error("unknown authentication method \"{}\": use trust or scram-sha-256", text);
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  bool all_loopback = true;
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(a->ai_addr);
      all_loopback &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
      all_loopback &= IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) != 0;
    }
  }
  freeaddrinfo(res);
  return all_loopback;
}

std::string keeper_hba_block(const std::string& hostname, KeeperAuth auth) {
  std::string method(name(auth));
  std::string block = std::string(kHbaBegin) +
                      ": keepers and the CLI call the monitor's API as pgfailover_node "
                      "(rewritten by pgfailover create monitor; add your own lines below)\n";
  block += "host " + std::string(kMonitorDbName) + " pgfailover_node 127.0.0.1/32 " + method + "\n";
  block += "host " + std::string(kMonitorDbName) + " pgfailover_node ::1/128 " + method + "\n";
  if (!is_loopback_host(hostname)) {
    // samenet: the subnets of the monitor's own interfaces, where the keepers
    // of a typical deployment are. Keepers further away need a line by hand.
    block += "host " + std::string(kMonitorDbName) + " pgfailover_node samenet " + method + "\n";
  }
  block += std::string(kHbaEnd) + "\n";
  return block;
}

MonitorConfig MonitorConfig::from(const ConfigFile& config) {
  MonitorConfig c;
  c.pgdata = config.require("postgresql.pgdata");
  c.port = config.get_int("postgresql.port", 0);
  c.hostname = config.get_or("monitor.hostname", "127.0.0.1");
  c.auth = parse_keeper_auth(config.get_or("monitor.auth", "trust"));
  c.database_uri = config.get("monitor.database_uri");
  if (!c.database_uri && (c.port <= 0 || c.port > 65535)) {
    throw Error("{}: postgresql.port is missing or out of range 1..65535", config.origin());
  }
  return c;
}

ConfigFile MonitorConfig::to_config() const {
  ConfigFile c;
  c.set("pgfailover.role", "monitor");
  c.set("postgresql.pgdata", pgdata.string());
  if (port > 0) c.set("postgresql.port", std::to_string(port));
  c.set("monitor.hostname", hostname);
  c.set("monitor.auth", name(auth));
  if (database_uri) c.set("monitor.database_uri", *database_uri);
  return c;
}

std::string MonitorConfig::service_conninfo(const InstancePaths& paths) const {
  ConnInfo ci;
  if (database_uri) {
    ci = ConnInfo::parse(*database_uri, "monitor database URI");
  } else {
    ci.set("host", paths.socket_dir().string());
    ci.set("port", std::to_string(port));
    ci.set("dbname", kMonitorDbName);
  }
  // Notice a dead monitor database within seconds, not after TCP's minutes:
  // until the session is known dead, nobody else can take the decider lock.
  for (const auto& [k, v] : std::initializer_list<std::pair<const char*, const char*>>{
           {"application_name", "pgfailover_monitor"},
           {"connect_timeout", "2"},
           {"keepalives", "1"},
           {"keepalives_idle", "2"},
           {"keepalives_interval", "1"},
           {"keepalives_count", "3"},
           {"tcp_user_timeout", "5000"}}) {
    if (!ci.has(k)) ci.set(k, v);
  }
  return ci.to_conninfo();
}

std::string MonitorConfig::describe_database(const InstancePaths& paths) const {
  if (database_uri) return ConnInfo::parse(*database_uri, "monitor database URI").describe();
  return fmt::format("{}:{}/{}", paths.socket_dir().string(), port, kMonitorDbName);
}

std::string MonitorConfig::keeper_uri() const {
  if (!database_uri) return fmt::format("postgresql://pgfailover_node@{}:{}/{}", uri_host(hostname), port, kMonitorDbName);
  auto ci = ConnInfo::parse(*database_uri, "monitor database URI");
  return fmt::format("postgresql://pgfailover_node@{}:{}/{}", uri_host(hostname), ci.get("port", "5432"),
                     ci.get("dbname", kMonitorDbName));
}

MonitorCreated create_monitor(const MonitorOptions& o, LogSink& sink) {
  Logger log(sink, "create monitor");
  refuse_root("create a monitor");
  auto paths = InstancePaths::for_pgdata(o.pgdata, o.state_dir);
  MonitorCreated out{paths, {}, false, 0, std::nullopt};

  if (fs::exists(paths.config_file())) {
    auto file = ConfigFile::load(paths.config_file().string());
    auto role = file.get_or("pgfailover.role", "");
    if (role != "monitor") {
      throw Error("{} is already set up by pgfailover as a {} ({}): refusing to make it a monitor",
                  paths.pgdata.string(), role.empty() ? "something else" : role, paths.config_file().string());
    }
    out.existed = true;
    out.config = MonitorConfig::from(file);
    const auto& c = out.config;
    check_unchanged("port", std::to_string(c.port), o.port ? std::optional(std::to_string(*o.port)) : std::nullopt,
                    paths.pgdata);
    check_unchanged("hostname", c.hostname, o.hostname, paths.pgdata);
    check_unchanged("authentication", std::string(name(c.auth)),
                    o.auth ? std::optional(std::string(name(*o.auth))) : std::nullopt, paths.pgdata);
    check_unchanged("monitor database", c.database_uri ? redact_secrets(*c.database_uri) : "(its own Postgres)",
                    o.database_uri ? std::optional(redact_secrets(*o.database_uri)) : std::nullopt, paths.pgdata);
  } else {
    auto& c = out.config;
    c.pgdata = paths.pgdata;
    if (o.database_uri) {
      auto ci = ConnInfo::parse(*o.database_uri, "monitor database URI");
      c.database_uri = o.database_uri;
      std::string uri_host_name = ci.get("host", "localhost");
      if (!uri_host_name.empty() && uri_host_name.front() == '/') uri_host_name = "localhost";
      c.hostname = o.hostname.value_or(uri_host_name);
      c.port = o.port.value_or(std::stoi(ci.get("port", "5432")));
    } else {
      if (!o.port) throw Error("--pgport is required: the port the monitor's Postgres listens on");
      c.port = *o.port;
      c.hostname = o.hostname.value_or("127.0.0.1");
    }
    bool loopback = is_loopback_host(c.hostname);
    c.auth = o.auth.value_or(loopback ? KeeperAuth::Trust : KeeperAuth::ScramSha256);
    if (c.auth == KeeperAuth::Trust && !loopback) {
      log.warn("trust authentication on {}: anyone who reaches it can act as a keeper and change roles; "
               "use --auth scram-sha-256 unless this network is yours alone", c.hostname);
    }
  }
  const auto& c = out.config;
  make_dirs(paths.state_dir, 0700);
  fs::path sql_dir = locate_sql_dir();

  if (c.database_uri) {
    auto db = PgConnection::connect(c.service_conninfo(paths), "monitor database");
    out.migrations_applied = apply_migrations(db, sql_dir, log);
    if (c.auth == KeeperAuth::ScramSha256) out.password_file = ensure_keeper_password(db, paths);
  } else {
    LocalPostgres pg(paths.pgdata, c.port, paths.socket_dir(), PostgresBinaries::locate(), log);
    if (!pg.initialized()) {
      if (!dir_is_empty_or_missing(paths.pgdata)) {
        throw Error("{} is not empty and holds no Postgres cluster: refusing to create a monitor there",
                    paths.pgdata.string());
      }
      pg.initdb(current_user_name());
    }
    pg.write_settings({{"listen_addresses", c.hostname},
                       {"port", std::to_string(c.port)},
                       {"cluster_name", "pgfailover_monitor"}});
    install_hba_block(paths.pgdata, keeper_hba_block(c.hostname, c.auth));

    std::optional<StartedPostgres> started;
    if (pg.is_running()) {
      pg.reload();  // pg_hba.conf may have changed
    } else {
      started.emplace(pg, pg.start(paths.postgres_log()));
    }
    {
      auto admin = pg.connect("postgres");
      auto exists = admin.exec("SELECT 1 FROM pg_database WHERE datname = $1", {param(kMonitorDbName)});
      if (exists.rows() == 0) {
        log.info("creating database {}", kMonitorDbName);
        admin.exec(std::string("CREATE DATABASE ") + sql_identifier(kMonitorDbName));
      }
    }
    auto db = PgConnection::connect(c.service_conninfo(paths), "monitor database");
    out.migrations_applied = apply_migrations(db, sql_dir, log);
    if (c.auth == KeeperAuth::ScramSha256) out.password_file = ensure_keeper_password(db, paths);
  }

  // Last: a create that failed half-way leaves no configuration, so running
  // it again does the whole job.
  if (!out.existed) c.to_config().save(paths.config_file().string(), 0600);
  return out;
}

}  // namespace pgf
