// A Postgres instance on this host: initdb, settings, start as a supervised
// child, stop, readiness, pg_controldata. Used by the monitor for its own
// Postgres and by keepers for the data node's Postgres.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"

namespace pgf {

class PgConnection;

struct PostgresBinaries {
  fs::path bindir;
  // `hint`: a bin directory or the path of pg_ctl; else $PGFAILOVER_PG_BINDIR,
  // else /usr/lib/postgresql/15/bin, else `pg_config --bindir`.
  static PostgresBinaries locate(const std::string& hint = "");
  std::string tool(std::string_view name) const { return (bindir / name).string(); }
};

struct ControlData {
  std::uint64_t system_identifier = 0;
  std::string cluster_state;          // "in production", "shut down", "shut down in recovery", ...
  std::uint32_t timeline = 0;         // latest checkpoint's TimeLineID
  std::string checkpoint_lsn;         // latest checkpoint location
  std::string redo_lsn;               // latest checkpoint's REDO location
  bool data_checksums = false;
  bool clean_shutdown() const { return cluster_state == "shut down" || cluster_state == "shut down in recovery"; }
};
ControlData parse_control_data(std::string_view pg_controldata_output);

enum class StopMode { Fast, Immediate };

class LocalPostgres {
 public:
  LocalPostgres(fs::path pgdata, int port, fs::path socket_dir, PostgresBinaries bins, Logger log);

  const fs::path& pgdata() const { return pgdata_; }
  int port() const { return port_; }
  const fs::path& socket_dir() const { return socket_dir_; }
  const PostgresBinaries& binaries() const { return bins_; }

  bool initialized() const;  // PG_VERSION exists
  // initdb with local trust for the OS user only (network access is granted by
  // pg_hba entries pgfailover writes), data checksums on (pg_rewind needs them
  // or wal_log_hints), UTF8.
  void initdb(const std::string& superuser = "postgres") const;

  // Settings pgfailover owns live in postgresql.pgfailover.conf, included at the
  // end of postgresql.conf so they win; the operator's own settings stay untouched.
  static constexpr const char* kSettingsFile = "postgresql.pgfailover.conf";
  void write_settings(const std::map<std::string, std::string>& settings) const;
  std::map<std::string, std::string> read_settings() const;

  // The postmaster's pid if one runs on this data directory (postmaster.pid + alive).
  std::optional<int> running_pid() const;
  bool is_running() const { return running_pid().has_value(); }

  // Starts `postgres -D` as a child that stops (fast shutdown) if we die, and
  // waits until it accepts connections. Refuses to run as root.
  ChildProcess start(const fs::path& log_file, std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // The same start without waiting: the caller watches accepts_connections()
  // (crash recovery of a large cluster may take longer than any timeout).
  ChildProcess spawn(const fs::path& log_file) const;
  // Signals the postmaster (ours or not) and waits until it is gone.
  void stop(StopMode mode = StopMode::Fast, std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  void reload() const;
  bool accepts_connections() const;

  std::string local_conninfo(const std::string& dbname = "postgres") const;
  PgConnection connect(const std::string& dbname = "postgres") const;
  ControlData control_data() const;

 private:
  fs::path pgdata_;
  int port_;
  fs::path socket_dir_;
  PostgresBinaries bins_;
  Logger log_;
};

// Refuses to go on as root, with one clear line: Postgres cannot run as root,
// and files we create must belong to the user that runs it.
void refuse_root(std::string_view what);

}  // namespace pgf
