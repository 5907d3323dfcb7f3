#include "common/local_postgres.h"

#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/pg_connection.h"

namespace pgf {

void refuse_root(std::string_view what) {
  if (running_as_root()) {
    throw Error("refusing to {} as root: PostgreSQL cannot run as root; run pgfailover as the postgres user "
                "(sudo -u postgres pgfailover ...)",
                what);
  }
}

PostgresBinaries PostgresBinaries::locate(const std::string& hint) {
  auto has_postgres = [](const fs::path& dir) {
    std::error_code ec;
    return fs::exists(dir / "postgres", ec) && fs::exists(dir / "initdb", ec);
  };
  if (!hint.empty()) {
    fs::path p(hint);
    if (fs::is_regular_file(p)) p = p.parent_path();
    if (!has_postgres(p)) throw Error("no PostgreSQL server binaries in {}", p.string());
    return {p};
  }
  if (const char* env = std::getenv("PGFAILOVER_PG_BINDIR"); env && *env) {
    if (!has_postgres(env)) throw Error("PGFAILOVER_PG_BINDIR={} has no PostgreSQL server binaries", env);
    return {fs::path(env)};
  }
  fs::path debian = "/usr/lib/postgresql/15/bin";
  if (has_postgres(debian)) return {debian};
  try {
    auto r = run_command({.argv = {"pg_config", "--bindir"}}, std::chrono::seconds(10));
    std::string dir = r.out;
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
    if (r.status.ok() && has_postgres(dir)) return {fs::path(dir)};
  } catch (const Error&) {
  }
  throw Error("cannot find PostgreSQL 15 server binaries: install postgresql-15 or set PGFAILOVER_PG_BINDIR");
}

ControlData parse_control_data(std::string_view text) {
  ControlData cd;
  auto value_of = [&](std::string_view key) -> std::string {
    auto pos = text.find(key);
    if (pos == std::string_view::npos) return "";
    auto line_end = text.find('\n', pos);
    auto line = text.substr(pos + key.size(), line_end == std::string_view::npos ? std::string_view::npos
                                                                                 : line_end - pos - key.size());
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return "";
    line.remove_prefix(colon + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    return std::string(line);
  };
  auto sysid = value_of("Database system identifier");
  std::from_chars(sysid.data(), sysid.data() + sysid.size(), cd.system_identifier);
  cd.cluster_state = value_of("Database cluster state");
  auto tli = value_of("Latest checkpoint's TimeLineID");
  std::from_chars(tli.data(), tli.data() + tli.size(), cd.timeline);
  cd.checkpoint_lsn = value_of("Latest checkpoint location");
  cd.redo_lsn = value_of("Latest checkpoint's REDO location");
  auto checksums = value_of("Data page checksum version");
  cd.data_checksums = !checksums.empty() && checksums != "0";
  if (cd.system_identifier == 0) throw Error("pg_controldata output has no database system identifier");
  return cd;
}

LocalPostgres::LocalPostgres(fs::path pgdata, int port, fs::path socket_dir, PostgresBinaries bins, Logger log)
    : pgdata_(std::move(pgdata)), port_(port), socket_dir_(std::move(socket_dir)), bins_(std::move(bins)),
      log_(std::move(log)) {
  // sockaddr_un holds 107 bytes: "<dir>/.s.PGSQL.65535" must fit.
  if (socket_dir_.string().size() > 90) {
    throw Error("socket directory {} is too long for a Unix socket path (90 characters at most)", socket_dir_.string());
  }
}

bool LocalPostgres::initialized() const {
  std::error_code ec;
  return fs::exists(pgdata_ / "PG_VERSION", ec);
}

void LocalPostgres::initdb(const std::string& superuser) const {
  refuse_root("run initdb");
  log_.info("initdb of {}", pgdata_.string());
  run_checked({.argv = {bins_.tool("initdb"), "-D", pgdata_.string(), "-U", superuser, "--auth-local=peer",
                        "--auth-host=scram-sha-256", "--data-checksums", "-E", "UTF8", "--locale=C.UTF-8"},
               .env = {{"LC_ALL", "C.UTF-8"}}},
              "initdb of " + pgdata_.string(), std::chrono::minutes(5));
}

void LocalPostgres::write_settings(const std::map<std::string, std::string>& settings) const {
  std::string content =
      "# Managed by pgfailover: this file is rewritten by the keeper or monitor.\n"
      "# Put your own settings in postgresql.conf or with ALTER SYSTEM.\n";
  for (const auto& [k, v] : settings) content += k + " = " + sql_literal(v) + "\n";
  write_file_atomic(pgdata_ / kSettingsFile, content, 0600);

  fs::path conf = pgdata_ / "postgresql.conf";
  std::string main = read_file_if_exists(conf).value_or("");
  std::string include = std::string("include_if_exists = '") + kSettingsFile + "'";
  if (main.find(include) == std::string::npos) {
    if (!main.empty() && main.back() != '\n') main += '\n';
    main += "\n# Added by pgfailover: its settings come last so they win.\n" + include + "\n";
    write_file_atomic(conf, main, 0600);
  }
}

std::map<std::string, std::string> LocalPostgres::read_settings() const {
  std::map<std::string, std::string> out;
  auto text = read_file_if_exists(pgdata_ / kSettingsFile);
  if (!text) return out;
  std::string_view t = *text;
  while (!t.empty()) {
    auto nl = t.find('\n');
    auto line = t.substr(0, nl);
    t = nl == std::string_view::npos ? std::string_view{} : t.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find(" = ");
    if (eq == std::string_view::npos) continue;
    std::string value(line.substr(eq + 3));
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      std::string unq;
      for (size_t i = 1; i + 1 < value.size(); ++i) {
        if (value[i] == '\'' && i + 2 < value.size() && value[i + 1] == '\'') ++i;
        unq += value[i];
      }
      value = unq;
    }
    out[std::string(line.substr(0, eq))] = value;
  }
  return out;
}

std::optional<int> LocalPostgres::running_pid() const {
  auto text = read_file_if_exists(pgdata_ / "postmaster.pid");
  if (!text || text->empty()) return std::nullopt;
  int pid = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), pid);
  if (ec != std::errc() || pid <= 0) return std::nullopt;
  if (!process_alive(pid)) return std::nullopt;
  return pid;
}

bool LocalPostgres::accepts_connections() const {
  std::string conninfo = local_conninfo() + " connect_timeout=2";
  return PQping(conninfo.c_str()) == PQPING_OK;
}

ChildProcess LocalPostgres::spawn(const fs::path& log_file) const {
  refuse_root("start Postgres");
  if (auto pid = running_pid()) throw Error("Postgres is already running on {} (pid {})", pgdata_.string(), *pid);
  log_.info("starting Postgres on {} (port {})", pgdata_.string(), port_);
  return ChildProcess::spawn({
      .argv = {bins_.tool("postgres"), "-D", pgdata_.string(), "-p", std::to_string(port_), "-c",
               "unix_socket_directories=" + socket_dir_.string()},
      .stdout_path = log_file.string(),
      .stderr_path = log_file.string(),
      // Its own process group: a Ctrl-C meant for the keeper must not reach Postgres.
      // Postgres outlives a crashed keeper on purpose: safety never depends on the
      // keeper being alive (see docs/state-machine.md, I3), availability does not suffer.
      .new_process_group = true,
  });
}

ChildProcess LocalPostgres::start(const fs::path& log_file, std::chrono::milliseconds timeout) const {
  ChildProcess child = spawn(log_file);
  auto deadline = steady_ms() + timeout.count();
  while (steady_ms() < deadline) {
    if (!child.running()) {
      std::string tail;
      if (auto log = read_file_if_exists(log_file)) {
        tail = log->substr(log->size() > 600 ? log->size() - 600 : 0);
        for (auto& c : tail) {
          if (c == '\n') c = ' ';
        }
      }
      throw Error("Postgres on {} exited during start ({}); end of {}: {}", pgdata_.string(),
                  child.exit_status()->describe(), log_file.string(), tail);
    }
    std::string conninfo = local_conninfo() + " connect_timeout=2";
    auto ping = PQping(conninfo.c_str());
    if (ping == PQPING_OK) return child;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  child.stop(std::chrono::seconds(5));
  throw Error("Postgres on {} did not accept connections within {} s; see {}", pgdata_.string(),
              timeout.count() / 1000, log_file.string());
}

void LocalPostgres::stop(StopMode mode, std::chrono::milliseconds timeout) const {
  auto pid = running_pid();
  if (!pid) return;
  log_.info("stopping Postgres on {} (pid {}, {} shutdown)", pgdata_.string(), *pid,
            mode == StopMode::Fast ? "fast" : "immediate");
  ::kill(*pid, mode == StopMode::Fast ? SIGINT : SIGQUIT);
  auto deadline = steady_ms() + timeout.count();
  while (process_exists(*pid)) {
    if (steady_ms() >= deadline) {
      if (mode == StopMode::Fast) {
        log_.warn("Postgres on {} did not stop within {} s: immediate shutdown", pgdata_.string(), timeout.count() / 1000);
        ::kill(*pid, SIGQUIT);
        deadline = steady_ms() + 10000;
        mode = StopMode::Immediate;
        continue;
      }
      throw Error("Postgres on {} (pid {}) does not stop", pgdata_.string(), *pid);
    }
    if (!process_alive(*pid)) return;  // a zombie child of ours has exited too
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void LocalPostgres::reload() const {
  auto pid = running_pid();
  if (!pid) return;
  ::kill(*pid, SIGHUP);
}

std::string LocalPostgres::local_conninfo(const std::string& dbname) const {
  return "host=" + conninfo_quote(socket_dir_.string()) + " port=" + std::to_string(port_) +
         " dbname=" + conninfo_quote(dbname) + " application_name=pgfailover";
}

PgConnection LocalPostgres::connect(const std::string& dbname) const {
  return PgConnection::connect(local_conninfo(dbname), "local Postgres on port " + std::to_string(port_));
}

ControlData LocalPostgres::control_data() const {
  auto r = run_checked({.argv = {bins_.tool("pg_controldata"), pgdata_.string()}, .env = {{"LC_ALL", "C"}}},
                       "pg_controldata " + pgdata_.string(), std::chrono::seconds(30));
  return parse_control_data(r.out);
}

}  // namespace pgf
