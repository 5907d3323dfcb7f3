// `pgfailover create postgres`: validate, register with the monitor, write the
// node's configuration and keeper state. Roles are decided later by the
// monitor and carried out by `run` through the transition table.
#pragma once

#include <optional>
#include <string>

#include "common/instance_paths.h"
#include "common/secrets.h"
#include "common/tls.h"
#include "keeper/keeper_config.h"
#include "keeper/postgres_node.h"

namespace pgf {

class LogSink;

struct CreatedNode {
  InstancePaths paths;
  NodeId node_id = 0;
  std::string name;
  bool already_created = false;  // nothing was done: the node existed
};

// What `create postgres` was told about TLS and passwords.
struct NodeSecurity {
  TlsOptions tls;                  // one choice is required
  std::optional<AuthMethod> auth;  // default: trust on loopback, scram-sha-256 otherwise
  RolePasswords passwords;         // given (--secrets-file or the environment)
};

// Throws pgf::Error with one line on bad input, an unreachable monitor or a
// refusal by the monitor; changes nothing on disk in those cases.
CreatedNode create_postgres_node(const KeeperConfig& config, const NodeSecurity& security,
                                 const InstancePaths& paths, LogSink& log);

// How the keeper's PostgresNode is set up for a node's configuration (with
// the passwords of its secrets file).
PostgresNodeOptions postgres_node_options(const KeeperConfig& config, const InstancePaths& paths);

// The connection string for the monitor: the configured URI with the node's
// TLS choice and, when the node has one in its secrets file (and the URI
// none), pgfailover_node's password. For libpq only: never log it.
std::string monitor_conninfo(const KeeperConfig& config, const InstancePaths& paths);

}  // namespace pgf
