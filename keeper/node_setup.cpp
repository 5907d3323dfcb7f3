#include "keeper/node_setup.h"

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/local_postgres.h"
#include "common/log.h"
#include "common/net.h"
#include "keeper/keeper_state.h"
#include "keeper/monitor_client.h"

namespace pgf {

namespace {

std::vector<std::string> monitor_hosts(const std::string& uri) {
  std::vector<std::string> out;
  auto ci = ConnInfo::parse(uri, "monitor URI");
  std::string hosts = ci.get("hostaddr").empty() ? ci.get("host") : ci.get("hostaddr");
  size_t start = 0;
  while (start <= hosts.size()) {
    auto comma = hosts.find(',', start);
    auto h = hosts.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    // A Unix socket directory is not an address to grant.
    if (!h.empty() && h.front() != '/' && h.front() != '@') out.push_back(h);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<RolePasswords> stored_passwords(const InstancePaths& paths) {
  std::error_code ec;
  if (!fs::exists(paths.secrets_file(), ec)) return std::nullopt;
  // Unreadable: a CLI user other than the keeper's; it brings its own password.
  return RolePasswords::load_if_readable(paths.secrets_file());
}

std::string conninfo_for_monitor(const KeeperConfig& c, const std::optional<RolePasswords>& passwords) {
  auto ci = ConnInfo::parse(c.monitor_uri, "monitor URI");
  c.tls.apply_to(ci, "the monitor URI");
  if (!ci.has("password") && passwords && passwords->keeper) ci.set("password", *passwords->keeper);
  return ci.to_conninfo();
}

}  // namespace

std::string monitor_conninfo(const KeeperConfig& c, const InstancePaths& paths) {
  return conninfo_for_monitor(c, stored_passwords(paths));
}

PostgresNodeOptions postgres_node_options(const KeeperConfig& c, const InstancePaths& paths) {
  PostgresNodeOptions o;
  o.pgdata = c.pgdata;
  o.port = c.port;
  o.hostname = c.hostname;
  o.dbname = c.dbname;
  o.replace_data = c.replace_data;
  o.monitor_hosts = monitor_hosts(c.monitor_uri);
  o.socket_dir = paths.socket_dir();
  o.postgres_log = paths.postgres_log();
  o.binaries = PostgresBinaries::locate(c.pg_bindir);
  o.auth = c.auth;
  o.tls = c.tls;
  if (auto pw = stored_passwords(paths)) {
    o.replication_password = pw->replication;
    o.health_check_password = pw->health_check;
    if (pw->replication && fs::exists(paths.pgpass_file())) o.passfile = paths.pgpass_file();
  }
  if (c.auth == AuthMethod::ScramSha256 && o.passfile.empty()) {
    throw Error("{} uses scram-sha-256 but {} holds no password of pgfailover_replicator: run pgfailover create "
                "postgres again with --secrets-file",
                paths.config_file().string(), paths.secrets_file().string());
  }
  return o;
}

CreatedNode create_postgres_node(const KeeperConfig& in, const NodeSecurity& security, const InstancePaths& paths,
                                 LogSink& sink) {
  Logger log(sink, "create");
  refuse_root("create a data node");
  KeeperConfig config = in;
  config.pgdata = paths.pgdata;
  config.tls = tls_from_options(security.tls, paths.state_dir);
  bool loopback = valid_host_name(config.hostname) && is_loopback_host(config.hostname);
  config.auth = security.auth.value_or(loopback ? AuthMethod::Trust : AuthMethod::ScramSha256);
  config.validate();

  CreatedNode out;
  out.paths = paths;
  if (fs::exists(paths.config_file())) {
    auto existing = KeeperConfig::from_file(ConfigFile::load(paths.config_file().string()));
    auto state = KeeperState::open(paths.keeper_db());
    out.node_id = state.record().node_id;
    out.name = state.record().name;
    out.already_created = true;
    if (existing.port != config.port || existing.hostname != config.hostname || existing.formation != config.formation ||
        existing.tls.mode != config.tls.mode || existing.auth != config.auth) {
      throw Error("{} is already created as node {} (id {}) with --pgport {} --hostname {} --formation {}, TLS {}, "
                  "--auth {}; see {}",
                  paths.pgdata.string(), out.name, out.node_id, existing.port, existing.hostname, existing.formation,
                  name(existing.tls.mode), name(existing.auth), paths.config_file().string());
    }
    return out;
  }
  if (config.auth == AuthMethod::Trust && !loopback) {
    log.warn("trust authentication for peers and the monitor on {}: anyone who reaches it as {} can replicate "
             "every row; use --auth scram-sha-256 unless this network is yours alone",
             config.hostname, "pgfailover_replicator");
  }
  const auto& given = security.passwords;
  if (config.auth == AuthMethod::ScramSha256 && (!given.replication || !given.health_check)) {
    throw Error("--auth scram-sha-256 needs the formation's passwords: give --secrets-file FILE (a copy of the "
                "monitor's <state dir>/secrets) or set {}",
                kSecretsFileEnv);
  }

  // Refuse early what would fail later: a data directory that is neither
  // empty nor a Postgres data directory, unless it may be moved aside.
  LocalPostgres pg(paths.pgdata, config.port, paths.socket_dir(), PostgresBinaries::locate(config.pg_bindir),
                   log.child("postgres"));
  std::optional<std::int64_t> sysid;
  if (pg.initialized()) {
    if (!config.replace_data) sysid = static_cast<std::int64_t>(pg.control_data().system_identifier);
  } else if (!dir_is_empty_or_missing(paths.pgdata) && !config.replace_data) {
    throw Error("{} is not empty and is not a Postgres data directory: empty it, or give --replace-data to have it "
                "moved aside when this node becomes a standby",
                paths.pgdata.string());
  }

  make_dirs(paths.state_dir, 0700);
  MonitorClient monitor(conninfo_for_monitor(config, given), log.child("monitor"));
  NodeRegistration reg;
  reg.formation = config.formation;
  reg.name = config.name;
  reg.host = config.hostname;
  reg.port = config.port;
  reg.system_identifier = sysid;
  reg.candidate_priority = config.candidate_priority;
  reg.replication_quorum = config.replication_quorum;
  reg.group_id = config.group_id;
  auto node = monitor.register_node(reg);

  // After the monitor said yes: a refusal leaves no certificate or password behind.
  make_self_signed_certificate(config.tls, config.hostname);
  config.tls.check_files();
  if (!given.empty()) given.save(paths.secrets_file());
  if (given.replication) {
    write_file_atomic(paths.pgpass_file(), pgpass_line("pgfailover_replicator", *given.replication), 0600);
  }

  // keeper.db without pgfailover.conf: an earlier create died half-way (the
  // monitor gave the same registration back above); start over.
  if (KeeperState::exists(paths.keeper_db())) fs::remove(paths.keeper_db());
  KeeperRecord rec;
  rec.node_id = node.id;
  rec.formation = config.formation;
  rec.group_id = node.group_id;
  rec.name = node.name;
  rec.current = NodeState::Init;
  KeeperState::create(paths.keeper_db(), rec);
  if (!config.name) config.name = node.name;
  // Written last: its presence means the node is created.
  config.to_file().save(paths.config_file().string(), 0600);

  out.node_id = node.id;
  out.name = node.name;
  log.info("registered node {} (id {}) in formation {} group {} with the monitor at {}", node.name, node.id,
           config.formation, node.group_id, monitor.endpoint());
  return out;
}

}  // namespace pgf
