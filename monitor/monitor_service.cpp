#include "monitor/monitor_service.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "common/clock.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/pg_connection.h"
#include "common/pid_lock.h"
#include "common/signal_watch.h"
#include "monitor/decider.h"
#include "monitor/health_checker.h"
#include "monitor/migrations.h"
#include "monitor/monitor_setup.h"

namespace pgf {

namespace {

constexpr TimeMs kRetryMs = 1000;      // reconnecting, retrying the decider lock, checking Postgres
constexpr TimeMs kHeartbeatMs = 1000;  // longest the decider session stays idle (the server ends it after 3 s)

// The monitor's own Postgres: started as our child when it is not running,
// started again when it dies. Never killed by us: leaving scope (SIGTERM, an
// error) leaves it running, and only stop() (SIGINT) shuts it down.
class PostgresSupervisor {
 public:
  PostgresSupervisor(const InstancePaths& paths, const MonitorConfig& config, const Logger& log)
      : pg_(paths.pgdata, config.port, paths.socket_dir(), PostgresBinaries::locate(), log.child("postgres")),
        log_file_(paths.postgres_log()),
        log_(log) {}
  ~PostgresSupervisor() {
    if (child_.valid() && child_.running()) child_.release();
  }
  PostgresSupervisor(const PostgresSupervisor&) = delete;
  PostgresSupervisor& operator=(const PostgresSupervisor&) = delete;

  // Returns true if Postgres runs (ours or not) when it returns.
  bool ensure_running() {
    if (child_.valid()) {
      if (child_.running()) return true;
      log_.error("the monitor's Postgres exited ({}); starting it again", child_.exit_status()->describe());
      child_ = ChildProcess();
    }
    if (pg_.is_running()) return true;  // started by someone else (or left running by a previous run)
    try {
      child_ = pg_.start(log_file_);
      log_.info("the monitor's Postgres runs on port {} (pid {})", pg_.port(), child_.pid());
      last_error_.clear();
      return true;
    } catch (const Error& e) {
      if (e.what() != last_error_) log_.error("cannot start the monitor's Postgres: {}; retrying in 1 s", e.what());
      last_error_ = e.what();
      return false;
    }
  }

  void stop() {
    log_.info("stopping the monitor's Postgres");
    try {
      pg_.stop(StopMode::Fast);
    } catch (const Error& e) {
      log_.error("{}", e.what());
    }
    if (child_.valid()) child_.wait_for(std::chrono::seconds(10));
  }

 private:
  LocalPostgres pg_;
  fs::path log_file_;
  Logger log_;
  ChildProcess child_;
  std::string last_error_;  // said once, not on every retry
};

// TLS as the monitor's choice; pgfailover_monitor's password from the
// secrets file when the monitor uses scram-sha-256.
HealthCheckLogin health_check_login(const InstancePaths& paths, const MonitorConfig& config) {
  HealthCheckLogin login;
  login.sslmode = config.tls.client_sslmode();
  if (config.tls.mode == TlsMode::VerifyFull) login.sslrootcert = config.tls.ca_file.string();
  if (config.auth == KeeperAuth::ScramSha256 && fs::exists(paths.secrets_file())) {
    login.password = RolePasswords::load(paths.secrets_file()).health_check;
  }
  return login;
}

class MonitorService {
 public:
  MonitorService(const InstancePaths& paths, const MonitorConfig& config, const Logger& log, SignalWatch& signals)
      : paths_(paths),
        config_(config),
        log_(log),
        signals_(signals),
        conninfo_(config.service_conninfo(paths)),
        where_(config.describe_database(paths)),
        decider_(conninfo_, where_, log.child("decider")),
        health_(log.child("health"), health_check_login(paths, config)) {
    if (!config.database_uri) postgres_.emplace(paths, config, log);
  }

  int run() {
    log_.info("monitor service started (pid {}) for the monitor database at {}", ::getpid(), where_);
    while (true) {
      TimeMs now = steady_ms();
      if (postgres_ && now >= next_postgres_check_) {
        postgres_->ensure_running();
        next_postgres_check_ = steady_ms() + kRetryMs;
      }
      if (!migrated_ && now >= next_connect_) {
        migrate();
        next_connect_ = steady_ms() + kRetryMs;
      }
      if (migrated_ && !decider_.active() && now >= next_acquire_) {
        if (decider_.try_acquire()) became_decider();
        next_acquire_ = steady_ms() + kRetryMs;
      }
      if (decider_.active()) serve(steady_ms());

      std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
      if (decider_.active()) {
        fds.push_back({decider_.socket(), POLLIN, 0});
        health_.add_poll_fds(fds);
      }
      int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<TimeMs>(next_wakeup() - steady_ms(), 0, kRetryMs)));
      if (rc < 0 && errno != EINTR) throw Error("poll: {}", errno_text(errno));

      if (auto code = handle_signals()) return *code;
      if (!decider_.active()) continue;
      if (fds[1].revents != 0) decider_.collect_requests();
      health_.advance(fds, steady_ms());
      if (auto results = health_.take_results(); !results.empty()) {
        decider_.record_health(results, health_.settings().failures_for_bad);
      }
      if (!decider_.active()) health_.clear();
    }
  }

 private:
  void migrate() {
    try {
      auto db = PgConnection::connect(conninfo_, "monitor database");
      int applied = apply_migrations(db, locate_sql_dir(), log_);
      if (applied > 0) log_.info("applied {} migration(s)", applied);
      migrated_ = true;
    } catch (const PgConnectError& e) {
      if (e.what() != last_migrate_error_) log_.warn("{}; retrying in 1 s", e.what());
      last_migrate_error_ = e.what();
    } catch (const Error& e) {
      // A broken migration is not fixed by waiting, but the operator may be
      // fixing the database: keep trying, and say so once per new error.
      if (e.what() != last_migrate_error_) log_.error("{}; retrying in 1 s", e.what());
      last_migrate_error_ = e.what();
    }
  }

  void became_decider() {
    health_.clear();
    next_tick_ = 0;
    next_targets_ = 0;
  }

  // One pass of the decider's duties that are due.
  void serve(TimeMs now) {
    if (now >= next_tick_) {
      // Settings are read on every tick: set_monitor_setting takes effect
      // without a restart.
      if (auto s = decider_.settings()) {
        settings_ = *s;
        health_.configure(HealthSettings::from(settings_));
      }
      decider_.request_all();
      next_tick_ = now + std::max<TimeMs>(settings_.get("decide_tick_ms", 500), 10);
    }
    if (decider_.active() && now >= next_targets_) {
      if (auto targets = decider_.health_targets()) health_.set_targets(*targets);
      next_targets_ = now + health_.settings().period;
    }
    if (!decider_.active()) return health_.clear();
    health_.start_due(steady_ms());
    decider_.decide_requested();
    // Without traffic the server would end the idle session; a query also
    // tells us early that the session died.
    if (decider_.active() && decider_.ms_since_last_query() >= kHeartbeatMs) decider_.settings();
    if (!decider_.active()) health_.clear();
  }

  TimeMs next_wakeup() const {
    TimeMs next = steady_ms() + kRetryMs;
    if (postgres_) next = std::min(next, next_postgres_check_);
    if (!migrated_) next = std::min(next, next_connect_);
    if (migrated_ && !decider_.active()) next = std::min(next, next_acquire_);
    if (decider_.active()) next = std::min({next, next_tick_, next_targets_, health_.next_wakeup()});
    return next;
  }

  std::optional<int> handle_signals() {
    while (auto sig = signals_.take()) {
      switch (*sig) {
        case SIGINT:
          log_.info("SIGINT: stopping the monitor service and its Postgres");
          decider_.resign("stopping", false);
          if (postgres_) postgres_->stop();
          return 0;
        case SIGTERM:
        case SIGQUIT:
          log_.info("{}: stopping the monitor service; Postgres keeps running", *sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
          decider_.resign("stopping", false);
          return 0;
        case SIGHUP:
          log_.info("SIGHUP: nothing to reload; monitor settings are read from the database on every tick");
          break;
        default:
          break;
      }
    }
    return std::nullopt;
  }

  InstancePaths paths_;
  MonitorConfig config_;
  Logger log_;
  SignalWatch& signals_;
  std::string conninfo_;
  std::string where_;
  std::optional<PostgresSupervisor> postgres_;
  Decider decider_;
  HealthChecker health_;
  MonitorSettings settings_;
  bool migrated_ = false;
  std::string last_migrate_error_;
  TimeMs next_postgres_check_ = 0;
  TimeMs next_connect_ = 0;
  TimeMs next_acquire_ = 0;
  TimeMs next_tick_ = 0;
  TimeMs next_targets_ = 0;
};

}  // namespace

int run_monitor(const InstancePaths& paths, const ConfigFile& config, LogSink& log, SignalWatch& signals) {
  refuse_root("run the monitor");
  Logger logger(log, "monitor");
  auto monitor = MonitorConfig::from(config);
  PidLock lock(paths.pid_file(), "the monitor in " + paths.pgdata.string());
  MonitorService service(paths, monitor, logger, signals);
  return service.run();
}

}  // namespace pgf
