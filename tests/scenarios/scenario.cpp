#include "tests/scenarios/scenario.h"

#include <signal.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/net.h"

namespace pgf::scenario {

namespace {

std::string client_binary() { return PGF_SCENARIO_CLIENT_BINARY; }
std::string pgfailover_binary() { return PGF_SCENARIO_PGFAILOVER_BINARY; }
std::string psql_binary() { return "/usr/lib/postgresql/15/bin/psql"; }

std::string tail_of(const std::string& s, size_t n = 2500) { return s.size() > n ? s.substr(s.size() - n) : s; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string random_password() {
  std::random_device rd;
  std::string out;
  const char* chars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  for (int i = 0; i < 24; ++i) out.push_back(chars[rd() % 57]);
  return out;
}

// TLS options of `create monitor|postgres`, when this build has them (issue 8
// makes one of them mandatory): self-signed certificates work inside the
// namespaces like anywhere else.
std::vector<std::string> tls_options() {
  static std::optional<std::vector<std::string>> cached;
  if (!cached) {
    ProcessSpec spec;
    spec.argv = {pgfailover_binary(), "create", "monitor", "--help"};
    auto r = run_command(spec, std::chrono::seconds(30));
    cached = std::vector<std::string>{};
    if (r.out.find("--ssl-self-signed") != std::string::npos) cached->push_back("--ssl-self-signed");
  }
  return *cached;
}

void kill_group_and_wait(int pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  auto deadline = steady_ms() + 10000;
  while (process_alive(pid) && steady_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

std::optional<int> pid_from_file(const fs::path& pidfile) {
  auto text = read_file_if_exists(pidfile);
  if (!text) return std::nullopt;
  int pid = std::atoi(text->c_str());
  if (pid <= 0 || !process_alive(pid)) return std::nullopt;
  return pid;
}

bool is_mounted(const fs::path& p) {
  std::ifstream mounts("/proc/mounts");
  std::string dev, where, rest;
  while (mounts >> dev >> where && std::getline(mounts, rest)) {
    if (where == p.string()) return true;
  }
  return false;
}

}  // namespace

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t poll_until(const std::function<bool()>& ok, std::chrono::milliseconds timeout, const std::string& what) {
  auto start = steady_ms();
  std::string last_error;
  while (true) {
    try {
      if (ok()) return steady_ms() - start;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (steady_ms() - start > timeout.count()) {
      throw Error("timed out after {} s waiting for {}{}", timeout.count() / 1000.0, what,
                  last_error.empty() ? "" : " (last error: " + last_error + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------- checker

std::set<std::int64_t> ClientLog::acked() const {
  std::set<std::int64_t> out;
  for (const auto& a : writes) out.insert(a.seq);
  return out;
}

std::string CheckResult::summary() const {
  std::string s;
  for (const auto& v : violations) s += "VIOLATION: " + v + "\n";
  for (const auto& n : notes) s += n + "\n";
  return s;
}

std::vector<std::string> check_single_writer(const std::vector<Ack>& acks) {
  struct Epoch {
    std::string node;
    int timeline;
    std::int64_t first_acked = INT64_MAX;  // earliest acknowledgement received
    std::int64_t last_sent = INT64_MIN;    // latest request sent that was acknowledged
    std::vector<const Ack*> acks;
  };
  std::map<std::pair<std::string, int>, Epoch> epochs;
  for (const auto& a : acks) {
    auto& e = epochs[{a.node, a.timeline}];
    e.node = a.node;
    e.timeline = a.timeline;
    e.first_acked = std::min(e.first_acked, a.acked_us);
    e.last_sent = std::max(e.last_sent, a.sent_us);
    e.acks.push_back(&a);
  }
  std::vector<std::string> out;
  auto name = [](const Epoch& e) { return fmt::format("{} (timeline {})", e.node, e.timeline); };
  for (const auto& [kx, x] : epochs) {
    for (const auto& [ky, y] : epochs) {
      if (kx >= ky) continue;
      if (x.node != y.node && x.timeline == y.timeline) {
        out.push_back(fmt::format("I1: {} and {} both acknowledged writes on timeline {}: two promotions from one "
                                  "history",
                                  x.node, y.node, x.timeline));
        continue;
      }
      // Interleaving, both ways: some acknowledgement of B lies provably
      // between two acknowledgements of A.
      for (auto [a, b] : {std::pair{&x, &y}, std::pair{&y, &x}}) {
        for (const Ack* k : b->acks) {
          if (k->sent_us > a->first_acked && k->acked_us < a->last_sent) {
            out.push_back(fmt::format(
                "I1: acknowledgements interleave: {} acknowledged at {:.3f} s, then {} at {:.3f} s, then {} again "
                "(sent at {:.3f} s)",
                name(*a), a->first_acked / 1e6, name(*b), k->acked_us / 1e6, name(*a), a->last_sent / 1e6));
            break;
          }
        }
      }
      // An older timeline acknowledging after a newer one did.
      const Epoch& older = x.timeline < y.timeline ? x : y;
      const Epoch& newer = x.timeline < y.timeline ? y : x;
      if (older.timeline != newer.timeline && older.last_sent > newer.first_acked) {
        out.push_back(fmt::format("I1: {} acknowledged a write sent at {:.3f} s, after {} had acknowledged one at "
                                  "{:.3f} s",
                                  name(older), older.last_sent / 1e6, name(newer), newer.first_acked / 1e6));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- cluster

Cluster::Cluster(const std::string& name, ClusterOptions options)
    : name_(name),
      options_(std::move(options)),
      lab_([&] {
        std::vector<std::string> hosts{"monitor"};
        for (const auto& n : options_.nodes) hosts.push_back(n.name);
        hosts.push_back("client");
        return std::make_unique<NetLab>(hosts);
      }()),
      dir_("pgf-scenario-" + name, running_as_root() ? std::optional<std::string>("postgres") : std::nullopt) {
  if (std::getenv("PGFAILOVER_KEEP_TEST_DIRS")) dir_.keep();
  if (!lab_->isolated()) {
    std::fprintf(stderr,
                 "scenario %s: no network namespaces (%s): every host is 127.0.0.1 with its own ports; partition "
                 "scenarios are skipped\n",
                 name.c_str(), lab_->fallback_reason().c_str());
  }
  try {
    tls_args_ = tls_options();
    passfile_ = dir() / "pgpass";
    writer_log_ = dir() / "writer.log";
    sampler_log_ = dir() / "sampler.log";
    for (const auto& spec : options_.nodes) {
      Node n;
      n.spec = spec;
      n.pgdata = dir() / spec.name;
      n.state_dir = dir() / (spec.name + ".pgfailover");
      n.port = lab_->isolated() ? 5432 : find_free_port("127.0.0.1");
      nodes_.push_back(std::move(n));
    }
    create_monitor();
    create_node(nodes_.front());
    wait_states({{nodes_.front().spec.name, "single"}}, 60s);
    setup_application(nodes_.front());
    for (size_t i = 1; i < nodes_.size(); ++i) create_node(nodes_[i]);
    if (nodes_.size() > 1) wait_stable(90s);
    if (options_.clients) start_clients();
  } catch (const std::exception& e) {
    std::string diag = diagnostics();
    teardown();
    throw Error("setting up scenario {} failed: {}\n{}", name, e.what(), diag);
  }
}

Cluster::~Cluster() {
  try {
    teardown();
  } catch (...) {
  }
}

std::vector<std::string> Cluster::node_names() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n.spec.name);
  return out;
}

Cluster::Node& Cluster::node(const std::string& name) {
  for (auto& n : nodes_) {
    if (n.spec.name == name) return n;
  }
  throw Error("no node {} in scenario {}", name, name_);
}

const Cluster::Node& Cluster::node(const std::string& name) const {
  for (const auto& n : nodes_) {
    if (n.spec.name == name) return n;
  }
  throw Error("no node {} in scenario {}", name, name_);
}

fs::path Cluster::pgdata(const std::string& n) const { return node(n).pgdata; }

std::string Cluster::monitor_uri() const {
  return fmt::format("postgresql://pgfailover_node@{}:{}/pgfailover", lab_->host("monitor").address, monitor_port_);
}

std::string Cluster::node_at(const std::string& host_port) const {
  for (const auto& n : nodes_) {
    if (fmt::format("{}:{}", lab_->host(n.spec.name).address, n.port) == host_port) return n.spec.name;
  }
  return host_port;
}

ProcessSpec Cluster::spec_on(const std::string& host, std::vector<std::string> argv) const {
  auto s = lab_->spec(host, std::move(argv));
  s.env["PGPASSFILE"] = passfile_.string();
  s.env["PGCONNECT_TIMEOUT"] = "2";
  s.unset_env = {"PGDATA", "PGFAILOVER_MONITOR", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"};
  return s;
}

void Cluster::create_monitor() {
  monitor_pgdata_ = dir() / "monitor";
  monitor_port_ = lab_->isolated() ? 5431 : find_free_port("127.0.0.1");
  std::vector<std::string> argv{pgfailover_binary(), "create",     "monitor",
                                "--pgdata",          monitor_pgdata_.string(), "--pgport",
                                std::to_string(monitor_port_), "--hostname", lab_->host("monitor").address,
                                "--auth",            "scram-sha-256"};
  argv.insert(argv.end(), tls_args_.begin(), tls_args_.end());
  run_checked(spec_on("monitor", argv), "create monitor", 120s);
  auto secrets = ConfigFile::load((dir() / "monitor.pgfailover" / "secrets").string());
  auto pw = secrets.get("monitor.pgfailover_node_password");
  if (!pw) throw Error("the monitor's secrets file has no keeper password");
  write_file_atomic(passfile_, fmt::format("*:*:pgfailover:pgfailover_node:{}\n", *pw), 0600);
  if (running_as_root()) chown_path(passfile_, "postgres");
  start_monitor();
  for (const auto& [k, v] : options_.monitor_settings) set_monitor_setting(k, v);
}

void Cluster::start_monitor() {
  auto spec = spec_on("monitor", {pgfailover_binary(), "run", "--pgdata", monitor_pgdata_.string()});
  spec.stdout_path = (dir() / "monitor.pgfailover" / "run.log").string();
  spec.stderr_path = spec.stdout_path;
  spec.parent_death_signal = SIGKILL;
  monitor_ = std::make_unique<ChildProcess>(ChildProcess::spawn(spec));
  poll_until([&] { return cli({"show", "state", "--json"}, 10s).status.ok(); }, 60s, "the monitor answering");
  if (auto pm = pid_from_file(monitor_pgdata_ / "postmaster.pid")) monitor_postmasters_.push_back(*pm);
}

void Cluster::kill_monitor() {
  if (lab_->isolated()) {
    lab_->kill_all_in("monitor");
  } else {
    if (monitor_ && monitor_->running()) monitor_->signal(SIGKILL);
    if (auto pm = pid_from_file(monitor_pgdata_ / "postmaster.pid")) kill_group_and_wait(*pm);
  }
  if (monitor_) monitor_->wait();
}

void Cluster::create_node(Node& n) {
  if (n.spec.pgdata_tmpfs_mb) {
    if (!running_as_root()) throw Error("a tmpfs PGDATA needs root");
    make_dirs(n.pgdata, 0700);
    ProcessSpec mount;
    mount.argv = {"mount", "-t", "tmpfs", "-o",
                  fmt::format("size={}m,mode=0700,uid={},gid={}", *n.spec.pgdata_tmpfs_mb, "postgres", "postgres"),
                  "pgf-scenario", n.pgdata.string()};
    auto r = run_command(mount, 30s);
    if (!r.status.ok()) {
      // uid= wants numbers on some systems
      mount.argv[4] = fmt::format("size={}m,mode=0700", *n.spec.pgdata_tmpfs_mb);
      run_checked(mount, "mount tmpfs", 30s);
    }
    n.mounted = true;
    chown_path(n.pgdata, "postgres");
  }
  std::vector<std::string> argv{pgfailover_binary(), "create",        "postgres",
                                "--pgdata",          n.pgdata.string(), "--pgport",
                                std::to_string(n.port), "--hostname", lab_->host(n.spec.name).address,
                                "--monitor",         monitor_uri(),    "--name",
                                n.spec.name};
  argv.insert(argv.end(), n.spec.create_args.begin(), n.spec.create_args.end());
  argv.insert(argv.end(), tls_args_.begin(), tls_args_.end());
  if (!tls_args_.empty()) {
    // A binary with issue 8's options: trust is for loopback only unless asked
    // for, so the nodes use the passwords the monitor generated, as the monitor does.
    for (const std::string a : {"--auth", "scram-sha-256", "--secrets-file"}) argv.push_back(a);
    argv.push_back((dir() / "monitor.pgfailover" / "secrets").string());
  }
  run_checked(spec_on(n.spec.name, argv), "create postgres " + n.spec.name, 120s);
  start_keeper(n.spec.name, n.spec.env);
}

void Cluster::start_keeper(const std::string& name, const std::map<std::string, std::string>& env) {
  auto& n = node(name);
  if (n.keeper && n.keeper->running()) throw Error("the keeper of {} is already running", name);
  auto spec = spec_on(name, {pgfailover_binary(), "run", "--pgdata", n.pgdata.string()});
  for (const auto& [k, v] : env) spec.env[k] = v;
  spec.stdout_path = (n.state_dir / "run.log").string();
  spec.stderr_path = spec.stdout_path;
  spec.parent_death_signal = SIGKILL;
  n.keeper = std::make_unique<ChildProcess>(ChildProcess::spawn(spec));
}

bool Cluster::keeper_running(const std::string& name) {
  auto& n = node(name);
  return n.keeper && n.keeper->running();
}

void Cluster::kill_keeper(const std::string& name) {
  auto& n = node(name);
  if (n.keeper && n.keeper->running()) {
    n.keeper->signal(SIGKILL);
    n.keeper->wait();
  }
}

std::optional<int> Cluster::postmaster_pid(const std::string& name) const {
  return pid_from_file(node(name).pgdata / "postmaster.pid");
}

void Cluster::remember_postmaster(Node& n) {
  if (auto pm = pid_from_file(n.pgdata / "postmaster.pid")) n.postmasters_seen.push_back(*pm);
}

void Cluster::crash_postgres(const std::string& name) {
  auto& n = node(name);
  auto pm = pid_from_file(n.pgdata / "postmaster.pid");
  if (!pm) throw Error("no postmaster runs for {}", name);
  n.postmasters_seen.push_back(*pm);
  kill_group_and_wait(*pm);
}

void Cluster::lose_host(const std::string& name) {
  auto& n = node(name);
  remember_postmaster(n);
  if (lab_->isolated()) {
    lab_->kill_all_in(name);
  } else {
    if (n.keeper && n.keeper->running()) n.keeper->signal(SIGKILL);
    if (auto pm = pid_from_file(n.pgdata / "postmaster.pid")) kill_group_and_wait(*pm);
  }
  if (n.keeper && n.keeper->valid()) n.keeper->wait();
}

std::optional<int> Cluster::walreceiver_pid(const std::string& name) {
  auto v = psql(name, "SELECT pid FROM pg_stat_wal_receiver");
  if (v.empty()) return std::nullopt;
  return std::atoi(v.c_str());
}

// ---- CLI

CommandResult Cluster::cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{pgfailover_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--monitor");
  argv.push_back(monitor_uri());
  return run_command(spec_on("client", argv), timeout);
}

CommandResult Cluster::cli_ok(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  auto r = cli(args, timeout);
  if (!r.status.ok()) {
    std::string cmd = "pgfailover";
    for (const auto& a : args) cmd += " " + a;
    throw Error("{} failed ({}): {}{}", cmd, r.status.describe(), trim(r.err), trim(r.out));
  }
  return r;
}

nlohmann::json Cluster::state() { return nlohmann::json::parse(cli_ok({"show", "state", "--json"}, 20s).out); }

std::map<std::string, std::pair<std::string, std::string>> Cluster::states() {
  std::map<std::string, std::pair<std::string, std::string>> out;
  auto st = state();  // not in the for: a temporary's member would dangle
  for (const auto& n : st.at("nodes")) {
    auto str = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string("-"); };
    out[n.at("name").get<std::string>()] = {str(n.at("reported_state")), str(n.at("assigned_state"))};
  }
  return out;
}

std::string Cluster::writable_node() {
  for (const auto& [name, s] : states()) {
    if (s.second == "primary" || s.second == "wait_primary" || s.second == "single") return name;
  }
  return "";
}

void Cluster::wait_states(const std::map<std::string, std::string>& want, std::chrono::milliseconds timeout) {
  std::map<std::string, std::pair<std::string, std::string>> seen;
  try {
    poll_until(
        [&] {
          seen = states();
          for (const auto& [n, s] : want) {
            auto it = seen.find(n);
            if (it == seen.end() || it->second.first != s || it->second.second != s) return false;
          }
          return true;
        },
        timeout, "states");
  } catch (const Error& e) {
    std::string got, wanted;
    for (const auto& [n, s] : seen) got += n + "=" + s.first + "/" + s.second + " ";
    for (const auto& [n, s] : want) wanted += n + "=" + s + " ";
    std::string raw;
    try {
      raw = cli({"show", "state", "--json"}, 20s).out;
    } catch (const std::exception& x) {
      raw = x.what();
    }
    throw Error("after {} s: wanted {}but have (reported/assigned) {}({}); show state --json: {}",
                timeout.count() / 1000.0, wanted, got, e.what(), raw);
  }
}

std::string Cluster::wait_stable(std::chrono::milliseconds timeout) {
  std::string primary;
  std::map<std::string, std::pair<std::string, std::string>> seen;
  try {
    poll_until(
        [&] {
          seen = states();
          if (seen.size() != nodes_.size()) return false;
          primary.clear();
          for (const auto& [n, s] : seen) {
            if (s.first != s.second) return false;
            if (s.first == "primary") {
              if (!primary.empty()) return false;
              primary = n;
            } else if (s.first != "secondary") {
              return false;
            }
          }
          return !primary.empty();
        },
        timeout, "one primary and its secondaries");
  } catch (const Error& e) {
    std::string got;
    for (const auto& [n, s] : seen) got += n + "=" + s.first + "/" + s.second + " ";
    throw Error("after {} s the group is not back to one primary and its secondaries: (reported/assigned) {}({})",
                timeout.count() / 1000.0, got, e.what());
  }
  for (auto& n : nodes_) remember_postmaster(n);
  return primary;
}

void Cluster::set_monitor_setting(const std::string& name, const std::string& value) {
  cli_ok({"set", "monitor", name, value}, 30s);
}

std::string Cluster::events_text(int count) {
  auto r = cli({"show", "events", "--count", std::to_string(count)}, 20s);
  return r.out + r.err;
}

// ---- SQL

std::string Cluster::psql(const std::string& name, const std::string& sql, std::chrono::milliseconds timeout) {
  const auto& n = node(name);
  auto spec = lab_->spec(name, {psql_binary(), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", n.state_dir.string(), "-p",
                                std::to_string(n.port), "-d", "postgres", "-c", sql});
  spec.env["PGCONNECT_TIMEOUT"] = "5";
  auto r = run_command(spec, timeout);
  if (!r.status.ok()) throw Error("psql on {} failed: {}", name, trim(r.err));
  return trim(r.out);
}

std::string Cluster::keeper_log(const std::string& name) const {
  return read_file_if_exists(node(name).state_dir / "run.log").value_or("");
}

std::string Cluster::postgres_log(const std::string& name) const {
  return read_file_if_exists(node(name).state_dir / "postgres.log").value_or("");
}

std::string Cluster::monitor_log() const {
  return read_file_if_exists(dir() / "monitor.pgfailover" / "run.log").value_or("");
}

void Cluster::setup_application(const Node& primary) {
  auto password = random_password();
  // The role's password goes through a file, not the command line.
  auto sql_file = dir() / "app.sql";
  write_file_atomic(sql_file,
                    fmt::format("CREATE ROLE app LOGIN PASSWORD '{}';\n"
                                "CREATE TABLE pgf_writes (seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT "
                                "clock_timestamp());\n"
                                "CREATE TABLE pgf_probe (id bigint GENERATED ALWAYS AS IDENTITY, node text, "
                                "at timestamptz NOT NULL DEFAULT clock_timestamp());\n"
                                "GRANT SELECT, INSERT ON pgf_writes, pgf_probe TO app;\n",
                                password),
                    0600);
  if (running_as_root()) chown_path(sql_file, "postgres");
  auto spec = lab_->spec(primary.spec.name, {psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                                             primary.state_dir.string(), "-p", std::to_string(primary.port), "-d",
                                             "postgres", "-f", sql_file.string()});
  run_checked(spec, "creating the application role", 60s);
  fs::remove(sql_file);
  // The client host may connect as app (below the keeper's block; copied to
  // the standbys by their base backups).
  {
    std::ofstream hba(primary.pgdata / "pg_hba.conf", std::ios::app);
    hba << "host all app " << lab_->host("client").address << "/32 scram-sha-256\n";
  }
  psql(primary.spec.name, "SELECT pg_reload_conf()");
  std::ofstream(passfile_, std::ios::app) << "*:*:*:app:" << password << "\n";

  std::string hosts, ports;
  for (const auto& n : nodes_) {
    hosts += (hosts.empty() ? "" : ",") + lab_->host(n.spec.name).address;
  }
  auto r = cli_ok({"show", "uri", "--format", "libpq"}, 30s);
  app_uri_ = trim(r.out);
  app_uri_ += (app_uri_.find('?') == std::string::npos ? "?" : "&") + std::string("user=app&application_name=pgf_writer");
}

// ---- clients

void Cluster::start_clients() {
  if (writer_ && writer_->running()) return;
  // The URI names every node of the formation: fetch it again now they are all registered.
  auto r = cli_ok({"show", "uri", "--format", "libpq"}, 30s);
  app_uri_ = trim(r.out) + "&user=app&application_name=pgf_writer";
  auto wspec = spec_on("client", {client_binary(), "writer", "--uri", app_uri_, "--out", writer_log_.string(),
                                  "--interval-ms", std::to_string(options_.writer_interval_ms)});
  wspec.stdout_path = (dir() / "client.err").string();
  wspec.stderr_path = wspec.stdout_path;
  wspec.parent_death_signal = SIGKILL;
  writer_ = std::make_unique<ChildProcess>(ChildProcess::spawn(wspec));

  std::vector<std::string> sargv{client_binary(), "sampler", "--out", sampler_log_.string()};
  for (const auto& n : nodes_) {
    sargv.push_back("--node");
    sargv.push_back(fmt::format("{}=host={} port={} dbname=postgres user=app connect_timeout=2 "
                                "application_name=pgf_sampler",
                                n.spec.name, lab_->host(n.spec.name).address, n.port));
  }
  auto sspec = spec_on("client", sargv);
  sspec.stdout_path = wspec.stdout_path;
  sspec.stderr_path = wspec.stdout_path;
  sspec.parent_death_signal = SIGKILL;
  sampler_ = std::make_unique<ChildProcess>(ChildProcess::spawn(sspec));
  wait_writes(5, 30s);
}

void Cluster::stop_clients() {
  for (auto* c : {writer_.get(), sampler_.get()}) {
    if (c && c->running()) c->signal(SIGTERM);
  }
  for (auto* c : {writer_.get(), sampler_.get()}) {
    if (c && c->valid() && !c->wait_for(std::chrono::seconds(8))) c->stop(std::chrono::milliseconds(0));
  }
}

ClientLog Cluster::read_client_log() const {
  ClientLog log;
  {
    std::ifstream in(writer_log_);
    for (std::string line; std::getline(in, line);) {
      std::istringstream w(line);
      std::string kind;
      w >> kind;
      if (kind == "A") {
        Ack a;
        std::string server;
        w >> a.seq >> a.sent_us >> a.acked_us >> server >> a.timeline;
        if (!w) continue;  // a line being written
        a.node = node_at(server);
        log.writes.push_back(a);
        ++log.write_attempts;
      } else if (kind == "E" || kind == "T") {
        ++log.write_attempts;
        ++log.write_errors;
      } else if (kind == "U") {
        ++log.write_attempts;
        ++log.unsafe_returns;
      }
    }
  }
  {
    std::ifstream in(sampler_log_);
    for (std::string line; std::getline(in, line);) {
      std::istringstream w(line);
      std::string kind;
      w >> kind;
      if (kind == "A" || kind == "L") {
        Ack a;
        w >> a.node >> a.sent_us >> a.acked_us >> a.timeline;
        if (!w) continue;
        a.late = kind == "L";
        log.probes.push_back(a);
      } else if (kind == "T") {
        ++log.probe_timeouts;
      }
    }
  }
  return log;
}

void Cluster::wait_writes(int n, std::chrono::milliseconds timeout, const std::string& on) {
  auto count = [&] {
    auto log = read_client_log();
    return std::count_if(log.writes.begin(), log.writes.end(), [&](const Ack& a) { return on.empty() || a.node == on; });
  };
  auto start = count();
  poll_until([&] { return count() >= start + n; }, timeout,
             fmt::format("{} acknowledged writes{}", n, on.empty() ? "" : " on " + on));
}

CheckResult Cluster::check(std::chrono::milliseconds settle) {
  CheckResult res;
  auto primary = wait_stable(settle);
  if (writer_ && writer_->valid()) {
    if (!writer_->running()) res.violations.push_back("the writer exited: " + writer_->exit_status()->describe());
    else wait_writes(20, 30s, primary);
  }
  stop_clients();
  auto log = read_client_log();
  auto rows_text = psql(primary, "SELECT seq FROM pgf_writes ORDER BY seq", 60s);
  std::set<std::int64_t> rows;
  std::istringstream in(rows_text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) rows.insert(std::atoll(l.c_str()));
  }
  auto acked = log.acked();
  std::vector<std::int64_t> missing;
  for (auto s : acked) {
    if (!rows.count(s)) missing.push_back(s);
  }
  res.acked = static_cast<std::int64_t>(acked.size());
  res.lost = static_cast<std::int64_t>(missing.size());
  if (!missing.empty()) {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(missing.size(), 10); ++i) first += " " + std::to_string(missing[i]);
    res.violations.push_back(fmt::format("I2: {} of {} acknowledged writes are not on the final primary {}:{}",
                                         missing.size(), acked.size(), primary, first));
  }
  if (acked.empty()) res.violations.push_back("the writer had no write acknowledged");
  std::vector<Ack> all = log.writes;
  all.insert(all.end(), log.probes.begin(), log.probes.end());
  for (auto& v : check_single_writer(all)) res.violations.push_back(v);

  // Figures for the log.
  std::int64_t gap = 0, gap_at = 0;
  for (size_t i = 1; i < log.writes.size(); ++i) {
    auto g = log.writes[i].acked_us - log.writes[i - 1].acked_us;
    if (g > gap) gap = g, gap_at = log.writes[i - 1].acked_us;
  }
  std::map<std::string, int> per_node;
  for (const auto& a : log.writes) per_node[fmt::format("{}@tl{}", a.node, a.timeline)]++;
  std::string epochs;
  for (const auto& [k, v] : per_node) epochs += fmt::format(" {}={}", k, v);
  res.notes.push_back(fmt::format("final primary {}; {} writes acknowledged of {} attempts ({} failed, {} returned "
                                  "without their synchronous wait), {} lost; longest gap {:.3f} s (after {:.3f} s); "
                                  "acknowledged per node:{}; {} probes acknowledged ({} late), {} probe timeouts",
                                  primary, acked.size(), log.write_attempts, log.write_errors, log.unsafe_returns,
                                  missing.size(), gap / 1e6, gap_at / 1e6, epochs, log.probes.size(),
                                  std::count_if(log.probes.begin(), log.probes.end(), [](const Ack& a) { return a.late; }),
                                  log.probe_timeouts));
  return res;
}

// ---- teardown

std::vector<std::string> Cluster::teardown() {
  std::vector<std::string> left;
  if (torn_down_) return left;
  torn_down_ = true;
  stop_clients();
  std::vector<int> pids;
  for (auto* c : {writer_.get(), sampler_.get(), monitor_.get()}) {
    if (c && c->valid()) pids.push_back(c->pid());
  }
  // Keepers: SIGINT stops Postgres (fast shutdown) too.
  for (auto& n : nodes_) {
    remember_postmaster(n);
    if (n.keeper && n.keeper->running()) n.keeper->signal(SIGINT);
  }
  if (monitor_ && monitor_->running()) monitor_->signal(SIGINT);
  for (auto& n : nodes_) {
    if (n.keeper && n.keeper->valid()) {
      pids.push_back(n.keeper->pid());
      if (!n.keeper->wait_for(std::chrono::seconds(20))) n.keeper->stop(std::chrono::milliseconds(0));
    }
    if (auto pm = pid_from_file(n.pgdata / "postmaster.pid")) kill_group_and_wait(*pm);
    pids.insert(pids.end(), n.postmasters_seen.begin(), n.postmasters_seen.end());
  }
  if (monitor_ && monitor_->valid() && !monitor_->wait_for(std::chrono::seconds(20))) {
    monitor_->stop(std::chrono::milliseconds(0));
  }
  if (auto pm = pid_from_file(monitor_pgdata_ / "postmaster.pid")) {
    monitor_postmasters_.push_back(*pm);
    kill_group_and_wait(*pm);
  }
  pids.insert(pids.end(), monitor_postmasters_.begin(), monitor_postmasters_.end());
  for (const auto& p : lab_->teardown()) left.push_back("still running at the end: " + p);
  for (const auto& l : lab_->leftovers()) left.push_back("left behind: " + l);
  for (int p : pids) {
    if (process_alive(p)) left.push_back(fmt::format("process {} still alive", p));
  }
  for (auto& n : nodes_) {
    if (!n.mounted) continue;
    ProcessSpec umount;
    umount.argv = {"umount", n.pgdata.string()};
    for (int i = 0; i < 50 && is_mounted(n.pgdata); ++i) {
      run_command(umount, 30s);
      if (is_mounted(n.pgdata)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (is_mounted(n.pgdata)) left.push_back("tmpfs still mounted on " + n.pgdata.string());
  }
  return left;
}

std::string Cluster::diagnostics() {
  std::string out = "--- scenario " + name_ + " in " + dir().string() + "\n";
  try {
    out += "--- events:\n" + events_text(30);
  } catch (const std::exception& e) {
    out += std::string("(no events: ") + e.what() + ")\n";
  }
  for (const auto& n : nodes_) {
    out += "--- keeper " + n.spec.name + ":\n" + tail_of(keeper_log(n.spec.name)) + "\n";
    out += "--- postgres " + n.spec.name + ":\n" +
           tail_of(postgres_log(n.spec.name), 1500) + "\n";
  }
  out += "--- monitor:\n" + tail_of(monitor_log()) + "\n";
  out += "--- client:\n" + tail_of(read_file_if_exists(dir() / "client.err").value_or("")) + "\n";
  return out;
}

}  // namespace pgf::scenario
