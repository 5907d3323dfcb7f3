// Where a pgfailover instance (monitor or keeper) keeps its files. They live
// outside PGDATA because pg_basebackup and pg_rewind replace PGDATA: by default
// in a sibling directory "<pgdata>.pgfailover".
#pragma once

#include <optional>

#include "common/fs.h"

namespace pgf {

struct InstancePaths {
  fs::path pgdata;
  fs::path state_dir;

  static InstancePaths for_pgdata(const fs::path& pgdata, const std::optional<fs::path>& state_dir = std::nullopt);

  fs::path config_file() const { return state_dir / "pgfailover.conf"; }  // INI, role and settings
  fs::path keeper_db() const { return state_dir / "keeper.db"; }           // SQLite, keeper state
  fs::path pid_file() const { return state_dir / "pgfailover.pid"; }       // lock + pid of `run`
  fs::path postgres_log() const { return state_dir / "postgres.log"; }
  fs::path service_log() const { return state_dir / "pgfailover.log"; }
  fs::path socket_dir() const { return state_dir; }                         // Postgres's Unix socket
  fs::path secrets_file() const { return state_dir / "secrets"; }          // passwords, mode 0600
  fs::path pgpass_file() const { return state_dir / "pgpass"; }            // the same for libpq tools, mode 0600
};

// Resolves the data directory from --pgdata or $PGDATA; throws if neither is set.
fs::path resolve_pgdata(const std::string& option_value);

}  // namespace pgf
