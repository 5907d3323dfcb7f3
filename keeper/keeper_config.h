// A data node's settings as `create postgres` wrote them to
// <state dir>/pgfailover.conf, validated: what the keeper needs to run.
#pragma once

#include <optional>
#include <string>

#include "common/fs.h"
#include "common/names.h"
#include "common/secrets.h"
#include "common/tls.h"

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
  // How peers and the monitor authenticate in this node's pg_hba.conf lines
  // (scram-sha-256: with the passwords of <state dir>/secrets).
  AuthMethod auth = AuthMethod::Trust;
  // This node's TLS: the server's files, and how it connects to the monitor and its peers.
  TlsSettings tls;

  // Throws pgf::Error with one line naming the bad value.
  void validate() const;
  static KeeperConfig from_file(const ConfigFile& file);
  ConfigFile to_file() const;
};


}  // namespace pgf
