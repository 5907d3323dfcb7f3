#include "monitor/monitor_setup.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <map>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/local_postgres.h"
#include "common/names.h"
#include "common/pg_connection.h"
#include "common/process.h"
#include "monitor/migrations.h"

namespace pgf {

namespace {

constexpr std::string_view kHbaBegin = "# BEGIN pgfailover";
constexpr std::string_view kHbaEnd = "# END pgfailover";

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

// The formation's passwords: the existing secrets file wins (create run
// again changes nothing), then what was given, and the rest is generated.
// pgfailover_node gets its password here; the nodes' roles get theirs from
// the primary's keeper, which reads a copy of this file.
fs::path ensure_passwords(PgConnection& db, const InstancePaths& paths, const RolePasswords& given, Logger& log) {
  fs::path file = paths.secrets_file();
  RolePasswords passwords;
  if (fs::exists(file)) passwords = RolePasswords::load(file);
  passwords.fill_missing_from(given);
  passwords.generate_missing();
  passwords.save(file);
  db.set_role_password("pgfailover_node", *passwords.keeper);
  log.info("pgfailover_node authenticates with scram-sha-256; the formation's passwords are in {}", file.string());
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

std::string keeper_hba_block(const std::string& hostname, KeeperAuth auth, bool tls) {
  std::string method(name(auth));
  std::string type = tls ? "hostssl" : "host";
  std::string db(kMonitorDbName);
  std::string block = std::string(kHbaBegin) +
                      ": keepers and the CLI call the monitor's API as pgfailover_node "
                      "(rewritten by pgfailover create monitor; add your own lines below)\n";
  block += type + " " + db + " pgfailover_node 127.0.0.1/32 " + method + "\n";
  block += type + " " + db + " pgfailover_node ::1/128 " + method + "\n";
  if (!is_loopback_host(hostname)) {
    // samenet: the subnets of the monitor's own interfaces, where the keepers
    // of a typical deployment are (their addresses are not known before they
    // register). Keepers further away need a line by hand.
    block += type + " " + db + " pgfailover_node samenet " + method + "\n";
  }
  // Nothing else for pgfailover's roles: without this, a plain connection (or
  // one to another database) would fall through to initdb's "host all all
  // 127.0.0.1/32" line below and get in with a password.
  block += "host all pgfailover_node,pgfailover_monitor all reject\n";
  block += std::string(kHbaEnd) + "\n";
  return block;
}

MonitorConfig MonitorConfig::from(const ConfigFile& config) {
  MonitorConfig c;
  c.pgdata = config.require("postgresql.pgdata");
  c.port = config.get_int("postgresql.port", 0);
  c.hostname = config.get_or("monitor.hostname", "127.0.0.1");
  if (!valid_host_name(c.hostname)) {
    throw Error("{}: monitor.hostname \"{}\" is not a host name or an IP address", config.origin(), c.hostname);
  }
  try {
    c.auth = parse_auth_method(config.get_or("monitor.auth", "trust"));
  } catch (const Error& e) {
    throw Error("{}: monitor.auth: {}", config.origin(), e.what());
  }
  c.database_uri = config.get("monitor.database_uri");
  if (c.database_uri) {
    try {
      ConnInfo::parse(*c.database_uri, "monitor database URI");
    } catch (const Error& e) {
      throw Error("{}: monitor.database_uri: {}", config.origin(), e.what());
    }
  }
  if (!c.database_uri && (c.port <= 0 || c.port > 65535)) {
    throw Error("{}: postgresql.port is missing or out of range 1..65535", config.origin());
  }
  c.tls = TlsSettings::from(config);
  if (!c.database_uri && c.tls.enabled() && c.tls.cert_file.empty()) {
    throw Error("{}: ssl.mode is {} but ssl.cert_file and ssl.key_file are missing", config.origin(), name(c.tls.mode));
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
  tls.save_to(c);
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
  std::string query = tls.enabled() ? "?sslmode=" + tls.client_sslmode() : "";
  if (!database_uri) {
    return fmt::format("postgresql://pgfailover_node@{}:{}/{}{}", uri_host(hostname), port, kMonitorDbName, query);
  }
  auto ci = ConnInfo::parse(*database_uri, "monitor database URI");
  return fmt::format("postgresql://pgfailover_node@{}:{}/{}{}", uri_host(hostname), ci.get("port", "5432"),
                     ci.get("dbname", kMonitorDbName), query);
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
    auto asked = tls_from_options(o.tls, paths.state_dir, !c.database_uri);
    std::string had = std::string(name(c.tls.mode)) + (c.tls.ca_file.empty() ? "" : " (CA " + c.tls.ca_file.string() + ")");
    std::string wants = std::string(name(asked.mode)) + (asked.ca_file.empty() ? "" : " (CA " + asked.ca_file.string() + ")");
    check_unchanged("TLS", had, wants, paths.pgdata);
  } else {
    auto& c = out.config;
    c.pgdata = paths.pgdata;
    if (o.database_uri) {
      auto ci = ConnInfo::parse(*o.database_uri, "monitor database URI");
      c.database_uri = o.database_uri;
      std::string uri_host_name = ci.get("host", "localhost");
      if (!uri_host_name.empty() && uri_host_name.front() == '/') uri_host_name = "localhost";
      c.hostname = o.hostname.value_or(uri_host_name);
      if (o.port) {
        c.port = *o.port;
      } else {
        auto port_text = ci.get("port", "5432");
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), c.port);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || c.port < 1 || c.port > 65535) {
          throw Error("the monitor database URI has port \"{}\": give one port of 1..65535, or --pgport", port_text);
        }
      }
    } else {
      if (!o.port) throw Error("--pgport is required: the port the monitor's Postgres listens on");
      c.port = *o.port;
      c.hostname = o.hostname.value_or("127.0.0.1");
    }
    if (!valid_host_name(c.hostname)) {
      throw Error("--hostname \"{}\" is invalid: use a host name or an IP address", c.hostname);
    }
    c.tls = tls_from_options(o.tls, paths.state_dir, !c.database_uri);
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
    if (c.auth == KeeperAuth::ScramSha256) out.password_file = ensure_passwords(db, paths, o.given_passwords, log);
  } else {
    LocalPostgres pg(paths.pgdata, c.port, paths.socket_dir(), PostgresBinaries::locate(), log);
    if (!pg.initialized()) {
      if (!dir_is_empty_or_missing(paths.pgdata)) {
        throw Error("{} is not empty and holds no Postgres cluster: refusing to create a monitor there",
                    paths.pgdata.string());
      }
      pg.initdb(current_user_name());
    }
    make_self_signed_certificate(c.tls, c.hostname);
    c.tls.check_files();
    std::map<std::string, std::string> settings{{"listen_addresses", c.hostname},
                                                {"port", std::to_string(c.port)},
                                                {"cluster_name", "pgfailover_monitor"},
                                                {"password_encryption", "scram-sha-256"}};
    settings.merge(c.tls.server_settings());
    pg.write_settings(settings);
    install_hba_block(paths.pgdata, keeper_hba_block(c.hostname, c.auth, c.tls.enabled()));

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
    if (c.auth == KeeperAuth::ScramSha256) out.password_file = ensure_passwords(db, paths, o.given_passwords, log);
  }

  // Last: a create that failed half-way leaves no configuration, so running
  // it again does the whole job.
  if (!out.existed) c.to_config().save(paths.config_file().string(), 0600);
  return out;
}

}  // namespace pgf
