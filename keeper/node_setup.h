// `pgfailover create postgres`: validate, register with the monitor, write the
// node's configuration and keeper state. Roles are decided later by the
// monitor and carried out by `run` through the transition table.
#pragma once

#include <string>

#include "common/instance_paths.h"
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

// Throws pgf::Error with one line on bad input, an unreachable monitor or a
// refusal by the monitor; changes nothing on disk in those cases.
CreatedNode create_postgres_node(const KeeperConfig& config, const InstancePaths& paths, LogSink& log);

// How the keeper's PostgresNode is set up for a node's configuration.
PostgresNodeOptions postgres_node_options(const KeeperConfig& config, const InstancePaths& paths);

}  // namespace pgf
