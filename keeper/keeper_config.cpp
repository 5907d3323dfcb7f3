#include "keeper/keeper_config.h"

#include <cctype>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"

namespace pgf {

void KeeperConfig::validate() const {
  if (pgdata.empty()) throw Error("no data directory: give --pgdata DIR");
  if (port < 1 || port > 65535) throw Error("--pgport {} is out of range 1..65535", port);
  if (hostname.empty()) throw Error("--hostname is required: the name or address peers and the monitor reach this node at");
  if (!valid_host_name(hostname)) {
    throw Error("--hostname \"{}\" is invalid: use a host name or an IP address", hostname);
  }
  if (monitor_uri.empty()) throw Error("--monitor is required: the monitor's URI, e.g. postgresql://pgfailover_node@sec001:5431/pgfailover");
  auto ci = ConnInfo::parse(monitor_uri, "monitor URI");
  if (!valid_object_name(formation)) {
    throw Error("formation \"{}\" is invalid: use letters, digits, '_' and '-' (at most 63)", formation);
  }
  if (name && !valid_object_name(*name)) {
    throw Error("node name \"{}\" is invalid: use letters, digits, '_' and '-' (at most 63)", *name);
  }
  if (group_id < 0) throw Error("group {} is out of range: must be 0 or more", group_id);
  if (!valid_object_name(dbname)) {
    throw Error("database name \"{}\" is invalid: use letters, digits, '_' and '-' (at most 63)", dbname);
  }
  if (candidate_priority < 0 || candidate_priority > 100) {
    throw Error("candidate priority {} is out of range 0..100", candidate_priority);
  }
  if (tls.enabled() && (tls.cert_file.empty() || tls.key_file.empty())) {
    throw Error("TLS is {} but no server certificate and key are configured", pgf::name(tls.mode));
  }
  // What the node hands libpq for the monitor: refused now if it asks for
  // less than the TLS choice.
  tls.apply_to(ci, "--monitor URI");
}

KeeperConfig KeeperConfig::from_file(const ConfigFile& f) {
  KeeperConfig c;
  if (f.require("pgfailover.role") != "keeper") {
    throw Error("{} is not a keeper's configuration (role {})", f.origin(), f.require("pgfailover.role"));
  }
  c.pgdata = f.require("postgres.pgdata");
  c.port = f.get_int("postgres.port", 5432);
  c.hostname = f.require("postgres.hostname");
  c.dbname = f.get_or("postgres.dbname", "postgres");
  c.pg_bindir = f.get_or("postgres.bindir", "");
  c.monitor_uri = f.require("monitor.uri");
  c.formation = f.get_or("node.formation", "default");
  if (auto n = f.get("node.name"); n && !n->empty()) c.name = *n;
  c.group_id = f.get_int("node.group", 0);
  c.candidate_priority = f.get_int("node.candidate_priority", 50);
  c.replication_quorum = f.get_bool("node.replication_quorum", true);
  c.replace_data = f.get_bool("node.replace_data", false);
  c.tls = TlsSettings::from(f);
  try {
    c.auth = parse_auth_method(f.get_or("postgres.auth", "trust"));
    c.validate();
  } catch (const Error& e) {
    throw Error("{}: {}", f.origin(), e.what());
  }
  return c;
}

ConfigFile KeeperConfig::to_file() const {
  ConfigFile f;
  f.set("pgfailover.role", "keeper");
  f.set("postgres.pgdata", pgdata.string());
  f.set("postgres.port", std::to_string(port));
  f.set("postgres.hostname", hostname);
  f.set("postgres.dbname", dbname);
  if (!pg_bindir.empty()) f.set("postgres.bindir", pg_bindir);
  f.set("monitor.uri", monitor_uri);
  f.set("node.formation", formation);
  if (name) f.set("node.name", *name);
  f.set("node.group", std::to_string(group_id));
  f.set("node.candidate_priority", std::to_string(candidate_priority));
  f.set("node.replication_quorum", replication_quorum ? "true" : "false");
  f.set("node.replace_data", replace_data ? "true" : "false");
  f.set("postgres.auth", pgf::name(auth));
  tls.save_to(f);
  return f;
}

}  // namespace pgf
