// The data node's Postgres as the keeper drives it: every Action of the
// transition table (NodeActions::run), and the facts the keeper reports to the
// monitor on every turn. Conventions shared with the monitor and the peers:
// standby application_name and replication slot "pgfailover_node_<id>", roles
// pgfailover_replicator (REPLICATION LOGIN) and pgfailover_monitor (LOGIN),
// settings in postgresql.pgfailover.conf, a managed block in pg_hba.conf.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/local_postgres.h"
#include "common/log.h"
#include "common/pg_connection.h"
#include "common/process.h"
#include "common/secrets.h"
#include "common/tls.h"
#include "keeper/transition_table.h"
#include "keeper/wal_position.h"

namespace pgf {

class KeeperState;

struct PostgresNodeOptions {
  fs::path pgdata;
  int port = 5432;
  std::string hostname;                    // listen_addresses; how peers reach us
  std::string dbname = "postgres";         // created on the primary at bootstrap
  bool replace_data = false;               // a non-empty PGDATA may be moved aside for a base backup
  std::vector<std::string> monitor_hosts;  // granted health checks in pg_hba.conf
  fs::path socket_dir;
  fs::path postgres_log;
  PostgresBinaries binaries;
  AuthMethod auth = AuthMethod::Trust;  // what our pg_hba lines ask of peers and the monitor
  TlsSettings tls;                      // our server's TLS, and how we connect to peers
  // scram-sha-256: a .pgpass file (0600) with pgfailover_replicator's password,
  // named in every replication connection (walreceiver, pg_basebackup,
  // pg_rewind) so the password is on no command line and in no setting.
  fs::path passfile;
  // Set on the roles by the primary (as SCRAM verifiers); they replicate.
  std::optional<std::string> replication_password;
  std::optional<std::string> health_check_password;
};

// What the keeper reports (see node_active in docs/monitor-api.md).
struct NodeFacts {
  bool pg_running = false;  // a postmaster runs on PGDATA and accepts our connections
  bool in_recovery = false;
  std::optional<TimelineId> timeline;
  std::optional<Lsn> lsn;            // primary: current WAL LSN; standby: max(receive, replay)
  std::optional<NodeId> upstream;    // the node primary_conninfo points at (in effect, or on disk when stopped)
  bool streaming = false;            // the walreceiver is streaming
  SyncConfig sync;                   // synchronous_standby_names in effect (on disk when stopped)
  std::vector<NodeId> peers_ready;   // primary: pg_hba entries and slots exist for these
  std::string replication_json = "[]";
  bool standby_streaming = false;    // pg_stat_replication shows a streaming standby
  std::optional<std::int64_t> system_identifier;
};

class PostgresNode : public NodeActions {
 public:
  PostgresNode(PostgresNodeOptions options, KeeperState& state, Logger log);
  // Leaves a running Postgres running: it outlives the keeper on purpose.
  ~PostgresNode() override;
  PostgresNode(const PostgresNode&) = delete;
  PostgresNode& operator=(const PostgresNode&) = delete;

  Progress run(Action action, const Goal& goal) override;

  // Whether the goal passed to run() came from the monitor on this turn. A
  // stale goal (monitor unreachable, or none since a restart) never shrinks
  // pg_hba entries, never drops slots and never changes synchronous replication.
  void set_goal_fresh(bool fresh) { goal_fresh_ = fresh; }

  // Reaps our postmaster if it exited and says so in the log (supervision).
  void supervise();
  // Never throws: what cannot be read is reported as unknown.
  NodeFacts collect_facts(const std::vector<Peer>& known_peers);

  bool running();                // a live postmaster on PGDATA (ours or adopted)
  void stop_postgres();          // fast shutdown
  void release_postgres();       // forget our child without stopping it
  bool dropped() const { return dropped_; }
  const LocalPostgres& postgres() const { return pg_; }

  // Connection string of the walreceiver (and pg_basebackup) for an upstream.
  std::string upstream_conninfo(const Peer& upstream, bool for_sql = false) const;

 private:
  NodeId self_id() const;
  std::string slot_name(NodeId id) const;
  PgConnection& local();
  void forget_connection() { conn_.close(); }
  bool in_recovery();

  // Starts Postgres if it is not running and waits a few seconds for it to
  // accept connections: false if it is still starting (crash recovery, say);
  // throws with the end of its log if it exited.
  bool ensure_running();
  // Running and accepting connections (started by us or not).
  bool ready();
  // A postmaster listens on our socket: we (or a keeper before us) started it.
  bool ours_listening() const;
  void restart_postgres();
  // Rewrites postgresql.pgfailover.conf: our fixed settings, plus the role
  // settings (primary_conninfo, primary_slot_name, synchronous_standby_names)
  // from `role` or, for those not given, as they are on disk. True if it changed.
  bool write_settings(const std::map<std::string, std::string>& role);
  bool write_hba(const std::vector<Peer>& peers);
  // What to grant in pg_hba.conf for a host: the addresses a name resolves to
  // (cached a minute), then the name itself; an address as it is.
  std::vector<std::string> hba_hosts(const std::string& host);
  // After a settings change: reload if running, wait until the server has
  // re-read its files, restart if a changed setting needs it.
  void apply_changes(bool settings_changed);
  void reload_and_wait();
  void write_standby_signal();
  void remove_signal_files();

  Progress init_primary(const Goal& g);
  void init_standby(const Goal& g);
  void base_backup(const Peer& upstream);
  bool discard_partial_base_backup();
  void enter_standby_mode();
  Progress stop_replication();
  Progress wait_for_replay();
  Progress rewind_if_needed(const Goal& g);
  void configure_standby(const Peer& upstream, bool use_slot);
  Progress follow_upstream(const Goal& g);
  Progress fast_forward(const Goal& g);
  Progress promote();
  Progress ensure_replication_access(const Goal& g);
  void apply_sync_config(const Goal& g);
  void drop();

  PostgresNodeOptions opt_;
  KeeperState& state_;
  Logger log_;
  LocalPostgres pg_;
  ChildProcess postmaster_;  // set when we started it; an adopted one runs without
  PgConnection conn_;
  bool goal_fresh_ = true;
  bool roles_ensured_ = false;
  bool reload_needed_ = true;  // first reload of a keeper's life is unconditional
  bool dropped_ = false;
  std::string rewind_checked_for_;  // the upstream conninfo divergence was last checked against
  // WaitForReplay / FastForward: replay that stops moving short of the
  // received end has replayed every complete record.
  std::optional<Lsn> last_replay_;
  std::int64_t replay_moved_at_ms_ = 0;
  std::optional<std::int64_t> system_identifier_;
  std::map<std::string, std::pair<std::int64_t, std::vector<std::string>>> resolved_;
};

}  // namespace pgf
