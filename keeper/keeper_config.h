// A data node's settings as `create postgres` wrote them to
// <state dir>/pgfailover.conf, validated: what the keeper needs to run.
#pragma once

#include <optional>
#include <string>

#include "common/fs.h"

namespace pgf {

class ConfigFile;

struct KeeperConfig {
  fs::path pgdata;
  int port = 5432;
  std::string hostname;            // how peers and the monitor reach this node
  std::string monitor_uri;         // as given at create time (may hold a password: never log it)
  std::string formation = "default";
  std::optional<std::string> name;  // null: the monitor names it node_<id>
  int group_id = 0;
  std::string dbname = "postgres";
  int candidate_priority = 50;
  bool replication_quorum = true;
  bool replace_data = false;       // a non-empty PGDATA may be moved aside to become a standby
  std::string pg_bindir;           // empty: PostgresBinaries::locate()

  // Throws pgf::Error with one line naming the bad value.
  void validate() const;
  static KeeperConfig from_file(const ConfigFile& file);
  ConfigFile to_file() const;
};

// Host names and addresses as the monitor accepts them (register_node).
bool valid_host_name(std::string_view host);
// Node and formation names: letters, digits, '_', '-', 1..63 characters.
bool valid_object_name(std::string_view name);

}  // namespace pgf
