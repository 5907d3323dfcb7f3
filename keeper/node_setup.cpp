#include "keeper/node_setup.h"

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/local_postgres.h"
#include "common/log.h"
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

}  // namespace

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
  return o;
}

CreatedNode create_postgres_node(const KeeperConfig& in, const InstancePaths& paths, LogSink& sink) {
  Logger log(sink, "create");
  refuse_root("create a data node");
  KeeperConfig config = in;
  config.pgdata = paths.pgdata;
  config.validate();

  CreatedNode out;
  out.paths = paths;
  if (fs::exists(paths.config_file())) {
    auto existing = KeeperConfig::from_file(ConfigFile::load(paths.config_file().string()));
    auto state = KeeperState::open(paths.keeper_db());
    out.node_id = state.record().node_id;
    out.name = state.record().name;
    out.already_created = true;
    if (existing.port != config.port || existing.hostname != config.hostname || existing.formation != config.formation) {
      throw Error("{} is already created as node {} (id {}) with --pgport {} --hostname {} --formation {}; see {}",
                  paths.pgdata.string(), out.name, out.node_id, existing.port, existing.hostname, existing.formation,
                  paths.config_file().string());
    }
    return out;
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
  MonitorClient monitor(config.monitor_uri, log.child("monitor"));
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
