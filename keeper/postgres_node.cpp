#include "keeper/postgres_node.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <thread>

#include "common/clock.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "keeper/hba_rules.h"
#include "keeper/keeper_state.h"

namespace pgf {

namespace {

using namespace std::chrono_literals;

constexpr const char* kPrimaryConninfo = "primary_conninfo";
constexpr const char* kPrimarySlot = "primary_slot_name";
constexpr const char* kSyncNames = "synchronous_standby_names";
constexpr const char* kRoleKeys[] = {kPrimaryConninfo, kPrimarySlot, kSyncNames};

// A replay position that has not moved for this long, short of the received
// end, has replayed every complete record (the rest is a partial record).
constexpr std::int64_t kReplayStallMs = 2000;

std::optional<std::uint32_t> parse_u32(std::string_view s, int base = 10) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "Min recovery ending loc's timeline" is not in ControlData; read it here.
std::uint32_t min_recovery_timeline(std::string_view controldata) {
  constexpr std::string_view key = "Min recovery ending loc's timeline:";
  auto pos = controldata.find(key);
  if (pos == std::string_view::npos) return 0;
  auto rest = controldata.substr(pos + key.size());
  rest = rest.substr(0, rest.find('\n'));
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\r')) rest.remove_suffix(1);
  return parse_u32(rest).value_or(0);
}

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

PostgresNode::PostgresNode(PostgresNodeOptions options, KeeperState& state, Logger log)
    : opt_(std::move(options)),
      state_(state),
      log_(std::move(log)),
      pg_(opt_.pgdata, opt_.port, opt_.socket_dir, opt_.binaries, log_.child("postgres")) {}

PostgresNode::~PostgresNode() { release_postgres(); }

NodeId PostgresNode::self_id() const { return state_.record().node_id; }
std::string PostgresNode::slot_name(NodeId id) const { return standby_application_name(id); }

std::string PostgresNode::upstream_conninfo(const Peer& up, bool for_sql) const {
  ConnInfo ci;
  ci.set("host", up.host);
  ci.set("port", std::to_string(up.port));
  ci.set("user", std::string(kReplicationRole));
  ci.set("connect_timeout", "2");
  if (opt_.auth == AuthMethod::ScramSha256 && !opt_.passfile.empty()) ci.set("passfile", opt_.passfile.string());
  opt_.tls.apply_to(ci, "the replication connection");
  if (for_sql) {
    ci.set("dbname", "postgres");
    ci.set("application_name", "pgfailover keeper " + std::to_string(self_id()));
  } else {
    ci.set("application_name", standby_application_name(self_id()));
    // A dead upstream must be noticed in seconds, not after the kernel's default.
    ci.set("keepalives_idle", "2");
    ci.set("keepalives_interval", "1");
    ci.set("keepalives_count", "3");
  }
  return ci.to_conninfo();
}

// ---------------------------------------------------------------- Postgres process

bool PostgresNode::running() {
  supervise();
  return pg_.running_pid().has_value();
}

void PostgresNode::supervise() {
  if (!postmaster_.valid()) return;
  if (postmaster_.running()) return;
  auto st = postmaster_.exit_status();
  log_.warn("Postgres (pid {}) exited unexpectedly: {}", postmaster_.pid(), st ? st->describe() : "unknown status");
  postmaster_ = ChildProcess();
  forget_connection();
}

bool PostgresNode::ours_listening() const {
  std::error_code ec;
  return fs::exists(opt_.socket_dir / (".s.PGSQL." + std::to_string(opt_.port)), ec);
}

bool PostgresNode::ensure_running() {
  if (!running()) {
    if (!pg_.initialized()) throw Error("cannot start Postgres: {} holds no data directory", opt_.pgdata.string());
    forget_connection();
    postmaster_ = pg_.spawn(opt_.postgres_log);
    reload_needed_ = false;  // it reads its configuration files now
  }
  // Wait a little inline (a start takes well under a second); longer, such as
  // crash recovery of a large cluster, is waited for on the next turns.
  auto deadline = steady_ms() + 5000;
  while (true) {
    if (pg_.accepts_connections()) return true;
    if (postmaster_.valid() && !postmaster_.running()) {
      auto st = postmaster_.exit_status();
      postmaster_ = ChildProcess();
      std::string tail = read_file_if_exists(opt_.postgres_log).value_or("");
      tail = tail.substr(tail.size() > 600 ? tail.size() - 600 : 0);
      std::replace(tail.begin(), tail.end(), '\n', ' ');
      throw Error("Postgres on {} exited during start ({}); end of {}: {}", opt_.pgdata.string(),
                  st ? st->describe() : "unknown status", opt_.postgres_log.string(), tail);
    }
    if (steady_ms() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

bool PostgresNode::ready() { return running() && ensure_running(); }

void PostgresNode::stop_postgres() {
  forget_connection();
  pg_.stop(StopMode::Fast);
  if (postmaster_.valid()) {
    postmaster_.wait_for(5s);
    postmaster_ = ChildProcess();
  }
}

void PostgresNode::restart_postgres() {
  log_.info("restarting Postgres: a changed setting needs a restart");
  stop_postgres();
  ensure_running();
}

void PostgresNode::release_postgres() {
  if (postmaster_.valid()) {
    if (postmaster_.running()) postmaster_.release();
    postmaster_ = ChildProcess();
  }
}

PgConnection& PostgresNode::local() {
  if (conn_.is_open() && !conn_.is_healthy()) conn_.close();
  if (!conn_.is_open()) {
    conn_ = pg_.connect();
    // The keeper's own writes (roles, grants, passwords, on every start of a
    // primary) must never wait for synchronous replication: on an old primary
    // restarted after a failover its standbys follow someone else, the commit
    // would wait forever, and a keeper stuck in it never reports again, so it
    // never learns it was demoted (seen in bench_failover --cut-link 1). They
    // are housekeeping, applied again on every start, not client data.
    conn_.exec("SET synchronous_commit = local");
  }
  return conn_;
}

bool PostgresNode::in_recovery() { return local().query_value("SELECT pg_is_in_recovery()").value_or("f") == "t"; }

// ---------------------------------------------------------------- configuration

bool PostgresNode::write_settings(const std::map<std::string, std::string>& role) {
  auto current = pg_.read_settings();
  std::map<std::string, std::string> want{
      {"listen_addresses", opt_.hostname},
      {"wal_level", "replica"},
      {"hot_standby", "on"},
      {"hot_standby_feedback", "on"},
      {"wal_log_hints", "on"},  // pg_rewind works on clusters initialised without checksums too
      {"max_wal_senders", "10"},
      {"max_replication_slots", "10"},
      {"wal_keep_size", "512MB"},  // the WAL pg_rewind needs from before the fork
      {"recovery_target_timeline", "latest"},
      // Notice a dead peer in seconds: the monitor reads "streaming" as proof of
      // life, and a primary whose host went silent (powered off, cut off) is
      // failed over only once its standbys' walreceivers gave up on it, so this
      // bounds failover time then (bench_failover --cut-link 1). 3 s: the
      // receiver asks for a keepalive after 1.5 s of silence, and status
      // messages flow every second, so a live peer is never taken for dead.
      {"wal_receiver_timeout", "3s"},
      {"wal_sender_timeout", "3s"},
      {"wal_receiver_status_interval", "1s"},
      {"wal_retrieve_retry_interval", "1s"},
      {"password_encryption", "scram-sha-256"},
  };
  want.merge(opt_.tls.server_settings());
  for (const char* key : kRoleKeys) {
    auto r = role.find(key);
    if (r != role.end()) {
      want[key] = r->second;
    } else if (auto c = current.find(key); c != current.end()) {
      want[key] = c->second;
    } else {
      want[key] = "";
    }
  }
  if (want == current && fs::exists(opt_.pgdata / "postgresql.conf")) return false;
  pg_.write_settings(want);
  return true;
}

std::vector<std::string> PostgresNode::hba_hosts(const std::string& host) {
  in6_addr buf{};
  if (inet_pton(AF_INET, host.c_str(), &buf) == 1 || inet_pton(AF_INET6, host.c_str(), &buf) == 1) return {host};
  // A host name in pg_hba.conf only matches when the client's address
  // resolves back to that name; list the addresses it resolves to first.
  auto now = steady_ms();
  auto it = resolved_.find(host);
  if (it == resolved_.end() || now - it->second.first > 60000) {
    std::vector<std::string> out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0) {
      for (auto* a = res; a; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        const void* addr = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                                   : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) && inet_ntop(a->ai_family, addr, text, sizeof text)) {
          if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
        }
      }
      freeaddrinfo(res);
    }
    out.push_back(host);
    it = resolved_.insert_or_assign(host, std::make_pair(now, out)).first;
  }
  return it->second.second;
}

bool PostgresNode::write_hba(const std::vector<Peer>& peers) {
  HbaAccess access;
  for (const auto& p : peers) {
    for (const auto& h : hba_hosts(p.host)) access.peers.push_back({p.id, h});
  }
  for (const auto& m : opt_.monitor_hosts) {
    for (const auto& h : hba_hosts(m)) access.monitor_hosts.push_back(h);
  }
  access.local_user = current_user_name();
  access.auth_method = std::string(name(opt_.auth));
  access.tls = opt_.tls.enabled();
  fs::path file = opt_.pgdata / "pg_hba.conf";
  std::string before = read_file_if_exists(file).value_or("");
  std::string after = replace_hba_block(before, render_hba_block(access));
  if (after == before) return false;
  write_file_atomic(file, after, 0600);
  return true;
}

void PostgresNode::reload_and_wait() {
  auto& c = local();
  auto before = c.query_value("SELECT pg_conf_load_time()::text").value_or("");
  c.exec("SELECT pg_reload_conf()");
  auto deadline = steady_ms() + 5000;
  while (steady_ms() < deadline) {
    std::this_thread::sleep_for(5ms);
    if (c.query_value("SELECT pg_conf_load_time()::text").value_or("") != before) return;
  }
  log_.warn("Postgres did not confirm the reload of its configuration within 5 s");
}

void PostgresNode::apply_changes(bool changed) {
  // Remembered until a reload went through: a write whose reload failed (the
  // server was restarting) must not look applied on the next try.
  if (changed) reload_needed_ = true;
  if (!reload_needed_ || !running()) return;
  reload_and_wait();
  reload_needed_ = false;
  auto pending = local().exec("SELECT string_agg(name, ', ') AS names FROM pg_settings WHERE pending_restart");
  if (auto names = pending.opt_str(0, "names")) {
    log_.info("settings {} need a restart", *names);
    restart_postgres();
  }
}

void PostgresNode::write_standby_signal() {
  fs::path signal = opt_.pgdata / "standby.signal";
  if (!fs::exists(signal)) write_file_atomic(signal, "", 0600);
}

void PostgresNode::remove_signal_files() {
  std::error_code ec;
  fs::remove(opt_.pgdata / "standby.signal", ec);
  fs::remove(opt_.pgdata / "recovery.signal", ec);
}

// ---------------------------------------------------------------- facts

NodeFacts PostgresNode::collect_facts(const std::vector<Peer>& peers) {
  NodeFacts f;
  auto upstream_of = [&](const std::string& conninfo) -> std::optional<NodeId> {
    if (conninfo.empty()) return std::nullopt;
    const auto& r = state_.record();
    if (r.upstream_id && conninfo == r.upstream_conninfo) return r.upstream_id;
    try {
      auto ci = ConnInfo::parse(conninfo, "primary_conninfo");
      for (const auto& p : peers) {
        if (ci.get("host") == p.host && ci.get("port", "5432") == std::to_string(p.port)) return p.id;
      }
    } catch (const Error&) {
    }
    return std::nullopt;
  };

  bool live = false;
  try {
    live = running();
  } catch (const std::exception&) {
  }
  if (live) {
    try {
      auto r = local().exec(R"sql(
        SELECT pg_is_in_recovery() AS in_recovery,
               CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
               CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END AS current_tli,
               pg_last_wal_receive_lsn()::text AS receive_lsn,
               pg_last_wal_replay_lsn()::text AS replay_lsn,
               (SELECT received_tli FROM pg_stat_wal_receiver) AS received_tli,
               (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
               (SELECT sender_host FROM pg_stat_wal_receiver) AS sender_host,
               (SELECT sender_port FROM pg_stat_wal_receiver) AS sender_port,
               (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
               (SELECT min_recovery_end_timeline FROM pg_control_recovery()) AS min_recovery_tli,
               current_setting('primary_conninfo') AS primary_conninfo,
               current_setting('synchronous_standby_names') AS sync_names,
               (SELECT system_identifier FROM pg_control_system())::text AS system_identifier,
               (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'application_name', application_name, 'state', state, 'sync_state', sync_state,
                          'flush_lsn', flush_lsn, 'replay_lag', extract(epoch FROM replay_lag))
                        ORDER BY application_name), '[]'::jsonb)::text
                  FROM pg_stat_replication) AS replication,
               (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming') AS streaming_standbys,
               (SELECT coalesce(array_agg(slot_name::text ORDER BY slot_name), '{}')
                  FROM pg_replication_slots WHERE slot_type = 'physical') AS slots
      )sql");
      f.pg_running = true;
      f.in_recovery = r.boolean(0, "in_recovery");
      if (!f.in_recovery) {
        f.lsn = parse_lsn(r.opt_str(0, "current_lsn").value_or(""));
        f.timeline = parse_u32(r.opt_str(0, "current_tli").value_or(""), 16);
        f.replication_json = r.str(0, "replication");
        f.standby_streaming = r.int64(0, "streaming_standbys") > 0;
        // peers_ready: a replication slot and the pg_hba entries exist.
        std::vector<NodeId> slot_ids;
        auto slots = r.str(0, "slots");
        if (slots.size() >= 2) {
          std::string_view s(slots);
          s = s.substr(1, s.size() - 2);
          while (!s.empty()) {
            auto comma = s.find(',');
            if (auto id = node_id_from_application_name(s.substr(0, comma))) slot_ids.push_back(*id);
            if (comma == std::string_view::npos) break;
            s.remove_prefix(comma + 1);
          }
        }
        auto hba_ids = hba_block_peer_ids(read_file_if_exists(opt_.pgdata / "pg_hba.conf").value_or(""));
        for (NodeId id : hba_ids) {
          if (std::find(slot_ids.begin(), slot_ids.end(), id) != slot_ids.end()) f.peers_ready.push_back(id);
        }
      } else {
        auto receive = parse_lsn(r.opt_str(0, "receive_lsn").value_or(""));
        auto replay = parse_lsn(r.opt_str(0, "replay_lsn").value_or(""));
        if (receive || replay) f.lsn = std::max(receive.value_or(0), replay.value_or(0));
        TimelineId tli = 0;
        for (const char* col : {"received_tli", "checkpoint_tli", "min_recovery_tli"}) {
          if (auto v = r.opt_int64(0, col)) tli = std::max<TimelineId>(tli, static_cast<TimelineId>(*v));
        }
        if (tli > 0) f.timeline = tli;
        f.streaming = r.opt_str(0, "receiver_status").value_or("") == "streaming";
        // A walreceiver still connected follows its sender, whatever the
        // settings say now: the monitor takes "no upstream" as proof that this
        // node stopped acknowledging the old primary's WAL (I3).
        auto sender_host = r.opt_str(0, "sender_host");
        auto sender_port = r.opt_int64(0, "sender_port");
        if (sender_host && sender_port) {
          for (const auto& p : peers) {
            if (p.host == *sender_host && p.port == *sender_port) f.upstream = p.id;
          }
          if (!f.upstream) f.upstream = state_.record().upstream_id;
        }
        if (!f.upstream) f.upstream = upstream_of(r.str(0, "primary_conninfo"));
      }
      f.sync = SyncConfig::from_guc(r.str(0, "sync_names")).value_or(SyncConfig::off());
      if (auto sysid = r.opt_str(0, "system_identifier")) {
        std::int64_t v = 0;
        std::from_chars(sysid->data(), sysid->data() + sysid->size(), v);
        if (v != 0) system_identifier_ = v;
      }
    } catch (const std::exception& e) {
      log_.debug("cannot read facts from the local Postgres: {}", e.what());
      forget_connection();
      f = NodeFacts{};
    }
  }
  if (!f.pg_running) {
    // Stopped (or not accepting connections): what it would start with.
    try {
      auto settings = pg_.read_settings();
      f.upstream = upstream_of(settings.count(kPrimaryConninfo) ? settings[kPrimaryConninfo] : "");
      f.sync = SyncConfig::from_guc(settings.count(kSyncNames) ? settings[kSyncNames] : "").value_or(SyncConfig::off());
      if (!system_identifier_ && pg_.initialized()) {
        system_identifier_ = static_cast<std::int64_t>(pg_.control_data().system_identifier);
      }
    } catch (const std::exception& e) {
      log_.debug("cannot read the stopped node's settings: {}", e.what());
    }
  }
  f.system_identifier = system_identifier_;
  return f;
}

// ---------------------------------------------------------------- actions

Progress PostgresNode::run(Action action, const Goal& in) {
  // An unknown goal (nothing heard since the keeper started) is stale too.
  Goal goal = in;
  bool fresh = goal_fresh_;
  if (!goal.known) goal_fresh_ = false;
  struct Restore {
    bool& flag;
    bool value;
    ~Restore() { flag = value; }
  } restore{goal_fresh_, fresh};
  try {
    switch (action) {
      case Action::InitPrimary: return init_primary(goal);
      case Action::InitStandby: init_standby(goal); return Progress::Done;
      case Action::StartPostgres:
        if (!running()) write_settings({});
        return ensure_running() ? Progress::Done : Progress::Waiting;
      case Action::StopPostgres: stop_postgres(); return Progress::Done;
      case Action::EnterStandbyMode: enter_standby_mode(); return Progress::Done;
      case Action::StopReplication: return stop_replication();
      case Action::WaitForReplay: return wait_for_replay();
      case Action::RewindIfNeeded: return rewind_if_needed(goal);
      case Action::FollowUpstream: return follow_upstream(goal);
      case Action::FastForward: return fast_forward(goal);
      case Action::Promote: return promote();
      case Action::Checkpoint:
        if (!ready()) return Progress::Waiting;
        local().exec("CHECKPOINT");
        return Progress::Done;
      case Action::EnsureReplicationAccess: return ensure_replication_access(goal);
      case Action::ApplySyncConfig:
        if (running() && !ensure_running()) return Progress::Waiting;
        apply_sync_config(goal);
        return Progress::Done;
      case Action::Drop: drop(); return Progress::Done;
    }
  } catch (const PgConnectError& e) {
    forget_connection();
    throw Error("{}: {}", name(action), e.what());
  } catch (const Error& e) {
    throw Error("{}: {}", name(action), e.what());
  }
  throw Error("unknown action {}", static_cast<int>(action));
}

Progress PostgresNode::init_primary(const Goal& g) {
  if (state_.record().data_origin == DataOrigin::InitdbStarted) {
    // Our own initdb, interrupted (kill -9 leaves initdb no time to clean up):
    // nobody's data, start it again.
    if (running()) stop_postgres();
    log_.info("removing the interrupted initdb in {}", opt_.pgdata.string());
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(opt_.pgdata, ec)) fs::remove_all(entry.path(), ec);
  }
  if (!pg_.initialized()) {
    if (!dir_is_empty_or_missing(opt_.pgdata)) {
      throw Error("{} is not empty but holds no Postgres data directory (no PG_VERSION): refusing to initdb over it",
                  opt_.pgdata.string());
    }
    state_.set_data_origin(DataOrigin::InitdbStarted);
    pg_.initdb();
    system_identifier_.reset();
    state_.set_data_origin(DataOrigin::Initdb);
  } else if (state_.record().data_origin == DataOrigin::Unknown) {
    log_.info("adopting the existing data directory {} as the primary", opt_.pgdata.string());
    state_.set_data_origin(DataOrigin::Adopted);
  }
  if (fs::exists(opt_.pgdata / "standby.signal") || fs::exists(opt_.pgdata / "recovery.signal")) {
    throw Error("{} is a standby's data directory (standby.signal or recovery.signal): refusing to adopt it as the "
                "primary; promote it first or give this node an empty data directory",
                opt_.pgdata.string());
  }
  bool changed = write_settings({{kPrimaryConninfo, ""}, {kPrimarySlot, ""}, {kSyncNames, g.sync.to_guc()}});
  changed = write_hba(g.peers) || changed;
  if (running() && !ours_listening()) {
    // Started by someone else (its own port, socket directory and settings):
    // stop it cleanly and run it under our supervision with our settings.
    log_.info("Postgres runs on {} but not as configured here: restarting it under the keeper", opt_.pgdata.string());
    stop_postgres();
  }
  if (!ensure_running()) return Progress::Waiting;
  // Reload, and restart only if a setting that needs it changed.
  apply_changes(changed);
  if (!ensure_running()) return Progress::Waiting;
  if (in_recovery()) {
    throw Error("Postgres on {} is in recovery: a standby cannot be adopted as the primary", opt_.pgdata.string());
  }
  if (opt_.dbname != "postgres") {
    auto& c = local();
    auto exists = c.query_value("SELECT count(*) FROM pg_database WHERE datname = $1", {param(opt_.dbname)});
    if (exists.value_or("0") == "0") {
      log_.info("creating database {}", opt_.dbname);
      c.exec("CREATE DATABASE " + sql_identifier(opt_.dbname));
    }
  }
  return Progress::Done;
}

bool PostgresNode::discard_partial_base_backup() {
  if (state_.record().data_origin != DataOrigin::BaseBackupStarted) return false;
  // Our own base backup, interrupted: nobody's data, safe to remove.
  if (running()) stop_postgres();
  log_.info("removing the interrupted base backup in {}", opt_.pgdata.string());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(opt_.pgdata, ec)) fs::remove_all(entry.path(), ec);
  return true;
}

void PostgresNode::base_backup(const Peer& up) {
  if (!dir_is_empty_or_missing(opt_.pgdata)) throw Error("internal: base backup into non-empty {}", opt_.pgdata.string());
  state_.set_data_origin(DataOrigin::BaseBackupStarted);
  system_identifier_.reset();
  std::error_code ec;
  if (fs::exists(opt_.pgdata, ec)) fs::permissions(opt_.pgdata, fs::perms::owner_all, ec);  // Postgres insists
  auto started = steady_ms();
  log_.info("taking a base backup from {} ({}:{})", up.name, up.host, up.port);
  run_checked({.argv = {pg_.binaries().tool("pg_basebackup"), "-D", opt_.pgdata.string(), "-d", upstream_conninfo(up),
                        "-X", "stream", "-S", slot_name(self_id()), "-c", "fast", "--no-password"},
               .env = {{"LC_ALL", "C"}},
               // Dies with the keeper: the next keeper starts the copy over and
               // must not race an orphan writing into the same directory.
               .parent_death_signal = SIGKILL},
              fmt::format("pg_basebackup from {}:{}", up.host, up.port), std::chrono::hours(12));
  // Never leave a copy that would start as a primary: standby settings first.
  configure_standby(up, true);
  state_.set_data_origin(DataOrigin::BaseBackup);
  rewind_checked_for_ = upstream_conninfo(up);
  log_.info("base backup from {} done in {:.1f} s", up.name, (steady_ms() - started) / 1000.0);
}

void PostgresNode::init_standby(const Goal& g) {
  if (!g.upstream) throw Error("the monitor assigned no upstream to clone");
  const Peer& up = *g.upstream;
  discard_partial_base_backup();
  if (state_.record().data_origin == DataOrigin::BaseBackup && pg_.initialized()) {
    return;  // our base backup is complete: a re-run after a crash
  }
  if (!dir_is_empty_or_missing(opt_.pgdata)) {
    if (!opt_.replace_data) {
      throw Error("refusing to replace the non-empty data directory {}: this node is to become a standby of {} "
                  "({}:{}); empty it, or create the node with --replace-data to have it moved aside",
                  opt_.pgdata.string(), up.name, up.host, up.port);
    }
    if (running()) stop_postgres();
    auto moved = move_aside(opt_.pgdata, "replaced");
    log_.warn("moved the previous data directory aside to {} (--replace-data)", moved.string());
  }
  base_backup(up);
}

void PostgresNode::enter_standby_mode() {
  if (running()) stop_postgres();  // stopped already by the action before it
  write_standby_signal();
  write_settings({{kPrimaryConninfo, ""}, {kPrimarySlot, ""}});
  state_.set_upstream(std::nullopt, "");
}

Progress PostgresNode::stop_replication() {
  bool changed = write_settings({{kPrimaryConninfo, ""}, {kPrimarySlot, ""}});
  if (!ready()) return Progress::Waiting;
  apply_changes(changed);
  if (in_recovery()) {
    auto receivers = local().query_value("SELECT count(*) FROM pg_stat_wal_receiver WHERE pid IS NOT NULL");
    // Until the walreceiver is gone, the node still reports its old upstream.
    if (receivers.value_or("0") != "0") return Progress::Waiting;
  }
  state_.set_upstream(std::nullopt, "");
  return Progress::Done;
}

Progress PostgresNode::wait_for_replay() {
  if (!ready()) return Progress::Waiting;
  auto r = local().exec(
      "SELECT pg_is_in_recovery() AS rec, pg_last_wal_receive_lsn()::text AS receive, "
      "pg_last_wal_replay_lsn()::text AS replay");
  if (!r.boolean(0, "rec")) return Progress::Done;
  auto receive = parse_lsn(r.opt_str(0, "receive").value_or(""));
  auto replay = parse_lsn(r.opt_str(0, "replay").value_or(""));
  if (!receive || (replay && *replay >= *receive)) return Progress::Done;
  auto now = steady_ms();
  if (replay != last_replay_) {
    last_replay_ = replay;
    replay_moved_at_ms_ = now;
    return Progress::Waiting;
  }
  if (now - replay_moved_at_ms_ >= kReplayStallMs) {
    log_.info("replay stopped at {} short of the received {}: the rest is an incomplete record",
              replay ? format_lsn(*replay) : "none", format_lsn(*receive));
    return Progress::Done;
  }
  return Progress::Waiting;
}

Progress PostgresNode::rewind_if_needed(const Goal& g) {
  if (!g.upstream) throw Error("the monitor assigned no upstream to rejoin");
  const Peer& up = *g.upstream;
  std::string key = upstream_conninfo(up);
  if (discard_partial_base_backup() || !pg_.initialized()) {
    base_backup(up);
    return Progress::Done;
  }
  if (rewind_checked_for_ == key) return Progress::Done;
  if (running() && !ensure_running()) return Progress::Waiting;

  // The upstream's timeline and its history; the CHECKPOINT puts the new
  // timeline in its control file, which pg_rewind reads (else it says "no
  // rewind required" and does nothing).
  auto src = PgConnection::connect(upstream_conninfo(up, true), fmt::format("upstream {} ({}:{})", up.name, up.host, up.port));
  src.exec("CHECKPOINT");
  auto tli_text = src.query_value("SELECT timeline_id FROM pg_control_checkpoint()").value_or("0");
  TimelineId up_tli = parse_u32(tli_text).value_or(0);
  std::vector<TimelineSwitch> history;
  if (up_tli > 1) {
    auto text = src.query_value("SELECT convert_from(pg_read_binary_file($1), 'UTF8')",
                                {param(fmt::format("pg_wal/{:08X}.history", up_tli))});
    history = parse_timeline_history(text.value_or(""));
  }
  src.close();

  bool need = true;
  if (running()) {
    if (in_recovery()) {
      auto r = local().exec(R"sql(
        SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS end_lsn,
               greatest((SELECT received_tli FROM pg_stat_wal_receiver),
                        (SELECT timeline_id FROM pg_control_checkpoint()),
                        (SELECT min_recovery_end_timeline FROM pg_control_recovery())) AS tli)sql");
      TimelineId tli = static_cast<TimelineId>(r.opt_int64(0, "tli").value_or(0));
      Lsn end = parse_lsn(r.opt_str(0, "end_lsn").value_or("")).value_or(0);
      need = check_divergence(tli, end, up_tli, history) == Divergence::Diverged;
      if (need) {
        log_.info("this standby's WAL (timeline {}, {}) went past the fork of {}'s timeline {}: rewinding", tli,
                  format_lsn(end), up.name, up_tli);
      }
    }
    if (need) stop_postgres();
  }
  if (need) {
    auto out = run_checked({.argv = {pg_.binaries().tool("pg_controldata"), opt_.pgdata.string()}, .env = {{"LC_ALL", "C"}}},
                           "pg_controldata " + opt_.pgdata.string(), std::chrono::seconds(30));
    auto cd = parse_control_data(out.out);
    auto min_tli = min_recovery_timeline(out.out);
    // Stopped on the upstream's timeline (it was following it): nothing to undo.
    need = !(cd.timeline == up_tli || min_tli == up_tli);
  }
  if (need) {
    bool standby = fs::exists(opt_.pgdata / "standby.signal");
    auto cd = pg_.control_data();
    // pg_rewind first finishes crash recovery of an unclean data directory in
    // single-user mode, which refuses to run with standby.signal; without it,
    // that is plain crash recovery: no new timeline, nobody connected.
    if (!cd.clean_shutdown()) remove_signal_files();
    auto started = steady_ms();
    log_.info("pg_rewind from {} ({}:{}), timeline {}", up.name, up.host, up.port, up_tli);
    auto res = run_command({.argv = {pg_.binaries().tool("pg_rewind"), "--target-pgdata", opt_.pgdata.string(),
                                     "--source-server", upstream_conninfo(up, true)},
                            .env = {{"LC_ALL", "C"}},
                            .parent_death_signal = SIGKILL},
                           std::chrono::hours(12));
    if (standby) write_standby_signal();
    if (res.status.ok()) {
      log_.info("pg_rewind done in {:.1f} s: {}", (steady_ms() - started) / 1000.0, last_line(res.out + res.err));
      // pg_rewind copied the upstream's configuration files: make them ours again.
      configure_standby(up, true);
    } else {
      std::string why = last_line(res.err.empty() ? res.out : res.err);
      if (why.find("could not connect") != std::string::npos || why.find("connection to server") != std::string::npos) {
        throw Error("pg_rewind could not reach {} ({}:{}): {}", up.name, up.host, up.port, why);
      }
      log_.warn("pg_rewind failed ({}): {}; falling back to a fresh base backup", res.status.describe(), why);
      auto moved = move_aside(opt_.pgdata, "rewind-failed");
      log_.warn("moved the data directory that could not be rewound aside to {}", moved.string());
      base_backup(up);
    }
    system_identifier_.reset();
  }
  rewind_checked_for_ = key;
  return Progress::Done;
}

void PostgresNode::configure_standby(const Peer& up, bool use_slot) {
  write_standby_signal();
  write_settings({{kPrimaryConninfo, upstream_conninfo(up)},
                  {kPrimarySlot, use_slot ? slot_name(self_id()) : ""},
                  {kSyncNames, ""}});
}

Progress PostgresNode::follow_upstream(const Goal& g) {
  if (!g.upstream) {
    // No assignment known (monitor unreachable since the keeper started):
    // keep streaming from what is configured.
    if (!running()) write_settings({});
    return ensure_running() ? Progress::Done : Progress::Waiting;
  }
  const Peer& up = *g.upstream;
  std::string ci = upstream_conninfo(up);
  if (state_.record().upstream_conninfo != ci && rewind_checked_for_ != ci) {
    // A new upstream: our WAL must not have gone past its timeline fork.
    if (rewind_if_needed(g) == Progress::Waiting) return Progress::Waiting;
  }
  if (running() && !ensure_running()) return Progress::Waiting;
  if (running() && !in_recovery()) {
    log_.info("Postgres runs as a primary but is to follow {}: restarting it as a standby", up.name);
    stop_postgres();
  }
  write_standby_signal();
  bool changed = write_settings({{kPrimaryConninfo, ci}, {kPrimarySlot, slot_name(self_id())}, {kSyncNames, ""}});
  if (goal_fresh_) changed = write_hba(g.peers) || changed;
  if (running()) {
    apply_changes(changed);
  } else {
    reload_needed_ = false;
  }
  if (!ensure_running()) return Progress::Waiting;
  if (state_.record().upstream_id != up.id || state_.record().upstream_conninfo != ci) {
    state_.set_upstream(up.id, ci);
    // Slots copied from a former primary's life hold WAL back on a standby.
    try {
      auto r = local().exec(
          "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
          "WHERE slot_name LIKE 'pgfailover\\_node\\_%' AND NOT active AND slot_type = 'physical'");
      if (r.rows() > 0) log_.info("dropped {} replication slots left from when this node was a primary", r.rows());
    } catch (const PgError& e) {
      log_.warn("cannot drop old replication slots: {}", e.what());
    }
  }
  return Progress::Done;
}

Progress PostgresNode::fast_forward(const Goal& g) {
  if (!g.upstream) throw Error("the monitor assigned no node to fetch WAL from");
  if (!g.target_lsn) throw Error("the monitor assigned no target LSN");
  const Peer& up = *g.upstream;
  if (!running()) write_settings({});
  if (!ensure_running()) return Progress::Waiting;
  if (!in_recovery()) throw Error("Postgres is not a standby: cannot fetch WAL from {}", up.name);
  std::string ci = upstream_conninfo(up);
  // No slot: the most advanced standby has none for us, and this is brief.
  bool changed = write_settings({{kPrimaryConninfo, ci}, {kPrimarySlot, ""}});
  apply_changes(changed);
  state_.set_upstream(up.id, ci);
  auto r = local().exec("SELECT pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay");
  auto receive = parse_lsn(r.opt_str(0, "receive").value_or(""));
  auto replay = parse_lsn(r.opt_str(0, "replay").value_or(""));
  if (replay && *replay >= *g.target_lsn) return Progress::Done;
  auto now = steady_ms();
  if (replay != last_replay_) {
    last_replay_ = replay;
    replay_moved_at_ms_ = now;
  } else if (receive && *receive >= *g.target_lsn && now - replay_moved_at_ms_ >= kReplayStallMs) {
    return Progress::Done;  // received all; the rest is an incomplete record
  }
  return Progress::Waiting;
}

Progress PostgresNode::promote() {
  if (running()) {
    if (!ensure_running()) return Progress::Waiting;
    if (in_recovery()) {
      log_.info("promoting Postgres");
      // Waits up to 5 s here; a longer promotion is waited for on the next turns.
      auto ok = local().query_value("SELECT pg_promote(true, 5)");
      if (ok.value_or("f") != "t") return Progress::Waiting;
    }
    bool changed = write_settings({{kPrimaryConninfo, ""}, {kPrimarySlot, ""}});
    apply_changes(changed);
  } else {
    remove_signal_files();
    write_settings({{kPrimaryConninfo, ""}, {kPrimarySlot, ""}});
    if (!ensure_running()) return Progress::Waiting;
    if (in_recovery()) throw Error("Postgres started in recovery although standby.signal was removed");
  }
  state_.set_upstream(std::nullopt, "");
  rewind_checked_for_.clear();
  return Progress::Done;
}

Progress PostgresNode::ensure_replication_access(const Goal& g) {
  if (!running()) throw Error("Postgres is not running");
  if (!ensure_running()) return Progress::Waiting;
  if (goal_fresh_) apply_changes(write_hba(g.peers));
  if (in_recovery()) return Progress::Done;
  auto& c = local();
  if (!roles_ensured_) {
    c.exec(fmt::format(R"sql(
      DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{0}') THEN
          CREATE ROLE {0} WITH REPLICATION LOGIN;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{1}') THEN
          CREATE ROLE {1} WITH LOGIN;
        END IF;
      END
      $$)sql",
                       kReplicationRole, kHealthCheckRole));
    // Least privilege, also for roles of these names that an adopted data
    // directory already had: replication and login only, nothing else.
    c.exec(fmt::format("ALTER ROLE {} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
                       kReplicationRole));
    c.exec(fmt::format("ALTER ROLE {} WITH LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
                       kHealthCheckRole));
    // What pg_rewind's source connection reads, and the CHECKPOINT a rejoining
    // node asks for: no superuser needed.
    c.exec(fmt::format(
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), "
        "pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text), "
        "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO {0}",
        kReplicationRole));
    auto member = c.query_value("SELECT pg_has_role($1, 'pg_checkpoint', 'MEMBER')", {param(kReplicationRole)});
    if (member.value_or("f") != "t") c.exec(fmt::format("GRANT pg_checkpoint TO {}", kReplicationRole));
    if (opt_.auth == AuthMethod::ScramSha256) {
      // Set on every keeper start of a primary, so a changed secrets file
      // takes effect; the standbys get them by replication.
      if (!opt_.replication_password || !opt_.health_check_password) {
        throw Error("scram-sha-256 needs the passwords of {} and {} in the secrets file of this node", kReplicationRole,
                    kHealthCheckRole);
      }
      c.set_role_password(kReplicationRole, *opt_.replication_password);
      c.set_role_password(kHealthCheckRole, *opt_.health_check_password);
    }
    roles_ensured_ = true;
  }
  auto r = c.exec(
      "SELECT slot_name::text AS slot, active FROM pg_replication_slots "
      "WHERE slot_type = 'physical' AND slot_name LIKE 'pgfailover\\_node\\_%'");
  std::vector<std::pair<std::string, bool>> existing;
  for (int i = 0; i < r.rows(); ++i) existing.emplace_back(r.str(i, "slot"), r.boolean(i, "active"));
  for (const auto& p : g.peers) {
    auto want = slot_name(p.id);
    bool have = std::any_of(existing.begin(), existing.end(), [&](const auto& e) { return e.first == want; });
    if (!have) {
      log_.info("creating replication slot {} for {} ({}:{})", want, p.name, p.host, p.port);
      c.exec("SELECT pg_create_physical_replication_slot($1, true)", {param(want)});
    }
  }
  if (!goal_fresh_) return Progress::Done;
  for (const auto& [slot, active] : existing) {
    auto id = node_id_from_application_name(slot);
    bool peer = id && std::any_of(g.peers.begin(), g.peers.end(), [&](const Peer& p) { return p.id == *id; });
    if (peer) continue;
    if (active) {
      log_.info("replication slot {} belongs to a node that left the group but is still in use", slot);
      continue;
    }
    log_.info("dropping replication slot {}: its node left the group", slot);
    c.exec("SELECT pg_drop_replication_slot($1)", {param(slot)});
  }
  return Progress::Done;
}

void PostgresNode::apply_sync_config(const Goal& g) {
  if (!goal_fresh_) return;
  auto guc = g.sync.to_guc();
  bool changed = write_settings({{kSyncNames, guc}});
  if (changed) log_.info("synchronous replication: {}", g.sync.describe());
  apply_changes(changed);
}

void PostgresNode::drop() {
  if (running()) stop_postgres();
  if (!dropped_) {
    log_.info("this node was dropped from its group; its data directory {} is left as it is", opt_.pgdata.string());
  }
  dropped_ = true;
}

}  // namespace pgf
