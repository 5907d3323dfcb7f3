#include "cli/demo.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "cli/event_follow.h"
#include "cli/monitor_access.h"
#include "cli/output.h"
#include "common/clock.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/net.h"
#include "common/pg_connection.h"
#include "common/pid_lock.h"
#include "common/process.h"

namespace pgf {

namespace {

using nlohmann::json;

constexpr const char* kStateFileName = "demo.json";
constexpr const char* kPassFileName = "pgpass";
// The demo's nodes use self-signed certificates: encrypted, not verified.
constexpr const char* kAppSslMode = "require";
// The role clients of the demo connect as; its password is only in <dir>/pgpass.
constexpr const char* kAppUser = "demo";
constexpr const char* kServiceUser = "postgres";

struct DemoInstance {
  std::string name;
  fs::path pgdata;
  int port = 0;
  int service_pid = 0;  // the `pgfailover run` we started last
};

struct DemoState {
  fs::path dir;
  std::optional<std::string> run_as;  // the service user when we were started by root
  DemoInstance monitor;
  std::vector<DemoInstance> nodes;

  fs::path file() const { return dir / kStateFileName; }
  fs::path passfile() const { return dir / kPassFileName; }
  std::string monitor_uri() const {
    return fmt::format("postgresql://pgfailover_node@127.0.0.1:{}/pgfailover?sslmode=require", monitor.port);
  }
  std::vector<const DemoInstance*> all() const {
    std::vector<const DemoInstance*> out;
    for (const auto& n : nodes) out.push_back(&n);
    out.push_back(&monitor);  // last: keepers stop while their monitor still answers
    return out;
  }
  DemoInstance& node(const std::string& name) {
    for (auto& n : nodes) {
      if (n.name == name) return n;
    }
    throw Error("node {} is not part of the demo in {}", name, dir.string());
  }
};

json to_json(const DemoInstance& i) {
  return {{"name", i.name}, {"pgdata", i.pgdata.string()}, {"port", i.port}, {"service_pid", i.service_pid}};
}

DemoInstance instance_from(const json& j) {
  return {j.at("name").get<std::string>(), j.at("pgdata").get<std::string>(), j.at("port").get<int>(),
          j.at("service_pid").get<int>()};
}

// Written after every process we start, so `down` finds each of them even
// when `up` failed half-way.
void save(const DemoState& s) {
  json nodes = json::array();
  for (const auto& n : s.nodes) nodes.push_back(to_json(n));
  json j{{"run_as", s.run_as ? json(*s.run_as) : json(nullptr)}, {"monitor", to_json(s.monitor)}, {"nodes", nodes}};
  write_file_atomic(s.file(), j.dump(2) + "\n", 0644);
}

DemoState load(const fs::path& dir) {
  DemoState s;
  s.dir = fs::absolute(dir);
  auto text = read_file_if_exists(s.file());
  if (!text) throw Error("no demo in {} (no {}): start one with pgfailover demo up --dir {}", s.dir.string(), kStateFileName, s.dir.string());
  try {
    auto j = json::parse(*text);
    if (!j.at("run_as").is_null()) s.run_as = j.at("run_as").get<std::string>();
    s.monitor = instance_from(j.at("monitor"));
    for (const auto& n : j.at("nodes")) s.nodes.push_back(instance_from(n));
  } catch (const json::exception& e) {
    throw Error("{} is not a demo state file: {}", s.file().string(), e.what());
  }
  return s;
}

std::string self_binary() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find the pgfailover binary (/proc/self/exe): {}", ec.message());
  return p.string();
}

// `pgfailover args...` as the service user, to completion.
CommandResult run_pgfailover(const DemoState& s, std::vector<std::string> args, const std::string& what,
                             std::chrono::seconds timeout = std::chrono::seconds(120)) {
  ProcessSpec spec;
  spec.argv = {self_binary()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.run_as_user = s.run_as;
  spec.unset_env = {"PGDATA", "PGFAILOVER_MONITOR"};
  return run_checked(spec, what, timeout);
}

// `pgfailover run` in the background, in its own process group (a Ctrl-C in
// the operator's terminal must not reach it), its output in its state dir.
int start_service(const DemoState& s, const fs::path& pgdata) {
  auto paths = InstancePaths::for_pgdata(pgdata);
  ProcessSpec spec;
  spec.argv = {self_binary(), "run", "--pgdata", pgdata.string()};
  spec.run_as_user = s.run_as;
  spec.unset_env = {"PGDATA", "PGFAILOVER_MONITOR"};
  spec.stdout_path = paths.service_log().string();
  spec.stderr_path = spec.stdout_path;
  spec.new_process_group = true;
  auto child = ChildProcess::spawn(spec);
  return child.release();
}

bool wait_dead(int pid, std::chrono::milliseconds timeout) {
  auto deadline = steady_ms() + timeout.count();
  while (process_alive(pid)) {
    if (steady_ms() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// SIGKILL to a process and to the process group it leads.
void kill_group(int pid) {
  if (pid <= 0 || !process_alive(pid)) return;
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  wait_dead(pid, std::chrono::seconds(10));
}

// A pid file outlives a SIGKILLed process, and pids are reused: a pid counts
// only while its command line still names the data directory.
bool runs_on(int pid, const fs::path& pgdata) {
  if (pid <= 0 || !process_alive(pid)) return false;
  auto cmdline = read_file_if_exists(fs::path("/proc") / std::to_string(pid) / "cmdline").value_or("");
  for (auto& c : cmdline) {
    if (c == '\0') c = ' ';
  }
  return cmdline.find(pgdata.string()) != std::string::npos;
}

std::optional<int> postmaster_pid(const DemoInstance& i) {
  auto text = read_file_if_exists(i.pgdata / "postmaster.pid");
  if (!text) return std::nullopt;
  int pid = std::atoi(text->c_str());
  if (!runs_on(pid, i.pgdata)) return std::nullopt;
  return pid;
}

// The pid of the `pgfailover run` of an instance: the holder of its pid lock,
// else the one we recorded if it still runs.
std::optional<int> service_pid(const DemoInstance& i) {
  if (auto holder = PidLock::holder(InstancePaths::for_pgdata(i.pgdata).pid_file())) return holder;
  if (runs_on(i.service_pid, i.pgdata)) return i.service_pid;
  return std::nullopt;
}

// Everything of the demo stopped: gracefully (stop --postgres), then by
// SIGKILL for whatever is left. Returns what it had to kill.
std::vector<std::string> stop_everything(const DemoState& s, std::ostream& out) {
  std::vector<std::string> killed;
  for (const auto* i : s.all()) {
    if (service_pid(*i)) {
      auto start = steady_ms();
      try {
        run_pgfailover(s, {"stop", "--pgdata", i->pgdata.string(), "--postgres", "--timeout", "20"},
                       "pgfailover stop of " + i->name, std::chrono::seconds(30));
        out << "stopped " << i->name << " in " << (steady_ms() - start) / 1000.0 << " s\n";
      } catch (const Error& e) {
        out << "could not stop " << i->name << " cleanly (" << e.what() << "): killing it\n";
      }
    }
    // A service that died leaves a running Postgres behind, and a stop that
    // timed out leaves anything: kill by PID.
    if (auto pid = service_pid(*i)) {
      kill_group(*pid);
      killed.push_back(fmt::format("{} service (pid {})", i->name, *pid));
    }
    if (runs_on(i->service_pid, i->pgdata)) {
      kill_group(i->service_pid);
      killed.push_back(fmt::format("{} service (pid {})", i->name, i->service_pid));
    }
    if (auto pid = postmaster_pid(*i)) {
      kill_group(*pid);
      killed.push_back(fmt::format("{} Postgres (pid {})", i->name, *pid));
    }
  }
  return killed;
}

std::string random_password() {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string out;
  while (out.size() < 24) {
    unsigned char c = 0;
    if (!urandom.read(reinterpret_cast<char*>(&c), 1)) throw Error("cannot read /dev/urandom");
    if (c < 248) out += alphabet[c % alphabet.size()];
  }
  return out;
}

void own(const DemoState& s, const fs::path& p) {
  if (s.run_as) chown_path(p, *s.run_as);
}

// The application's role and table, created on the primary through its Unix
// socket by the service user. The password goes from a 0600 file to psql and
// to <dir>/pgpass, never to a command line or the terminal.
void create_app_role(const DemoState& s, const DemoInstance& primary) {
  auto password = random_password();
  auto sql_file = s.dir / ".create-demo-role.sql";
  write_file_atomic(sql_file,
                    fmt::format("CREATE ROLE {} LOGIN PASSWORD {};\n"
                                "CREATE TABLE demo_writes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                                " at timestamptz NOT NULL DEFAULT now(), note text);\n"
                                "GRANT SELECT, INSERT ON demo_writes TO {};\n",
                                kAppUser, sql_literal(password), kAppUser),
                    0600);
  own(s, sql_file);
  struct RemoveFile {
    fs::path p;
    ~RemoveFile() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove_sql{sql_file};
  auto socket_dir = InstancePaths::for_pgdata(primary.pgdata).socket_dir();
  ProcessSpec spec;
  spec.argv = {PostgresBinaries::locate().tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socket_dir.string(),
               "-p", std::to_string(primary.port), "-U", kServiceUser, "-d", "postgres", "-f", sql_file.string()};
  spec.run_as_user = s.run_as;
  run_checked(spec, "creating the demo role", std::chrono::seconds(60));
  write_file_atomic(s.passfile(), fmt::format("127.0.0.1:*:*:{}:{}\n", kAppUser, password), 0600);
  own(s, s.passfile());
}

MonitorApi connect_monitor(const DemoState& s) { return MonitorApi::connect(resolve_monitor({s.monitor_uri(), ""})); }

// Polls until `goal` holds (on every event and every 200 ms).
void wait_for(MonitorApi& api, const EventFollower::Goal& goal, std::chrono::seconds timeout, const std::string& what) {
  EventFollower follower(api, "default");
  std::ostringstream ignored;  // `up` reports progress in its own words
  if (!follower.follow_until(goal, timeout, ignored)) {
    std::string now;
    for (const auto& n : api.current_state("default")) {
      now += fmt::format("{}{} {}/{}", now.empty() ? "" : ", ", n.name, n.reported_state.value_or("-"), n.assigned_state);
    }
    throw Error("{} did not happen within {} s (now: {})", what, timeout.count(), now.empty() ? "no nodes" : now);
  }
}

// Reached its assigned state, and the monitor's health check agrees it is up
// (so the state the demo prints is the steady one).
bool settled(const NodeStatus& n, std::string_view state) {
  return n.assigned_state == state && n.reported_state && *n.reported_state == state && n.health == "good";
}

EventFollower::Goal one_primary_rest_secondary(size_t count) {
  return [count](const std::vector<NodeStatus>& nodes) {
    if (nodes.size() != count) return false;
    if (count == 1) return settled(nodes.front(), "single");  // nobody to replicate to
    int primaries = 0;
    for (const auto& n : nodes) {
      if (settled(n, "primary")) {
        ++primaries;
      } else if (!settled(n, "secondary")) {
        return false;
      }
    }
    return primaries == 1;
  };
}

// The formation URI with the demo's user: the same hosts clients are given.
std::string libpq_uri_for_app(const std::string& uri) {
  static constexpr std::string_view scheme = "postgresql://";
  return std::string(scheme) + kAppUser + "@" + uri.substr(scheme.size());
}

void print_state_and_uris(const DemoState& s, MonitorApi& api, std::ostream& out) {
  out << "\n" << render_state_table(api.current_state("default")) << "\n";
  // Every node serves TLS (--ssl-self-signed): so do the applications' URIs.
  auto libpq = api.formation_uri("default", "libpq", kAppSslMode);
  auto jdbc = api.formation_uri("default", "jdbc", kAppSslMode);
  out << "Monitor:             " << s.monitor_uri() << "\n"
      << "Application (libpq): " << libpq_uri_for_app(libpq) << "\n"
      << "Application (JDBC):  " << jdbc << "&user=" << kAppUser << "\n"
      << "The password of role " << kAppUser << " is in " << s.passfile().string() << ", e.g.\n"
      << "  PGPASSFILE=" << s.passfile().string() << " psql '" << libpq_uri_for_app(libpq) << "'\n";
}

class Timeline {
 public:
  explicit Timeline(std::ostream& out) : out_(out), start_(steady_ms()) {}
  std::int64_t elapsed() const { return steady_ms() - start_; }
  void say(const std::string& what) { out_ << fmt::format("{:>7} ms  {}\n", elapsed(), what) << std::flush; }

 private:
  std::ostream& out_;
  std::int64_t start_;
};

// One INSERT through the multi-host URI, as an application would do it: the
// port of the server that took it, or nullopt.
std::optional<int> write_through(const std::string& libpq_uri, const fs::path& passfile, std::string* why) {
  try {
    auto ci = ConnInfo::parse(libpq_uri, "formation URI");
    ci.set("user", kAppUser);
    ci.set("passfile", passfile.string());
    ci.set("connect_timeout", "1");
    auto c = PgConnection::connect(ci.to_conninfo(), "the formation");
    auto port = c.query_value("INSERT INTO demo_writes (note) VALUES ('demo failover') RETURNING inet_server_port()");
    return port ? std::optional(std::stoi(*port)) : std::nullopt;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

}  // namespace

void demo_up(const DemoOptions& o, std::ostream& out) {
  if (o.nodes < 1 || o.nodes > 9) throw Error("--nodes {} is out of range 1..9", o.nodes);
  Timeline clock(out);
  DemoState s;
  s.dir = fs::absolute(o.dir);
  if (fs::exists(s.file())) {
    throw Error("a demo is already set up in {}: pgfailover demo down --dir {} first", s.dir.string(), s.dir.string());
  }
  if (!dir_is_empty_or_missing(s.dir)) {
    throw Error("{} is not empty and holds no demo: give an empty or new --dir", s.dir.string());
  }
  if (running_as_root()) {
    s.run_as = kServiceUser;
  } else if (current_user_name() != kServiceUser) {
    out << "note: running as " << current_user_name() << ", not " << kServiceUser << "\n";
  }
  make_dirs(s.dir, 0755);
  own(s, s.dir);
  s.monitor = {"monitor", s.dir / "monitor", find_free_port("127.0.0.1"), 0};
  for (int i = 1; i <= o.nodes; ++i) {
    s.nodes.push_back({"node" + std::to_string(i), s.dir / ("node" + std::to_string(i)), 0, 0});
  }
  save(s);

  try {
    try {
      run_pgfailover(s, {"create", "monitor", "--pgdata", s.monitor.pgdata.string(), "--pgport",
                         std::to_string(s.monitor.port), "--hostname", "127.0.0.1", "--ssl-self-signed"},
                     "pgfailover create monitor");
    } catch (const Error& e) {
      if (!s.run_as) throw;
      throw Error("{} (the {} user must be able to run {})", e.what(), *s.run_as, self_binary());
    }
    s.monitor.service_pid = start_service(s, s.monitor.pgdata);
    save(s);
    std::optional<MonitorApi> api;
    auto deadline = steady_ms() + o.timeout_seconds * 1000;
    while (!api) {
      try {
        api.emplace(connect_monitor(s));
        api->current_state("default");
      } catch (const Error& e) {
        api.reset();
        if (steady_ms() > deadline || !process_alive(s.monitor.service_pid)) {
          throw Error("the monitor did not start ({}); see {}", e.what(),
                      InstancePaths::for_pgdata(s.monitor.pgdata).service_log().string());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    clock.say(fmt::format("monitor running on 127.0.0.1:{} (pid {})", s.monitor.port, s.monitor.service_pid));

    auto create_and_start = [&](DemoInstance& n) {
      // A port nobody listens on now; `create postgres` fails cleanly if it is
      // taken in between, and we try another.
      for (int attempt = 0;; ++attempt) {
        n.port = find_free_port("127.0.0.1");
        try {
          run_pgfailover(s, {"create", "postgres", "--pgdata", n.pgdata.string(), "--pgport", std::to_string(n.port),
                             "--hostname", "127.0.0.1", "--name", n.name, "--monitor", s.monitor_uri(),
                             "--ssl-self-signed"},
                         "pgfailover create postgres " + n.name);
          break;
        } catch (const Error&) {
          if (attempt >= 2 || !tcp_port_open("127.0.0.1", n.port)) throw;
        }
      }
      n.service_pid = start_service(s, n.pgdata);
      save(s);
    };
    create_and_start(s.nodes[0]);
    wait_for(*api, node_reached(s.nodes[0].name, {"single"}), std::chrono::seconds(o.timeout_seconds),
             s.nodes[0].name + " becoming the primary");
    clock.say(fmt::format("{} is the primary (single) on port {}", s.nodes[0].name, s.nodes[0].port));
    for (size_t i = 1; i < s.nodes.size(); ++i) create_and_start(s.nodes[i]);
    wait_for(*api, one_primary_rest_secondary(s.nodes.size()), std::chrono::seconds(o.timeout_seconds),
             "a primary with secondaries");
    clock.say(s.nodes.size() > 1 ? "primary and secondaries in place, replicating synchronously"
                                 : "one node, no standby (give --nodes 2 for failover)");
    auto primary = writable_node(api->current_state("default"), 0);
    create_app_role(s, s.node(primary->name));
    print_state_and_uris(s, *api, out);
    out << "\nNext: pgfailover demo failover --dir " << s.dir.string() << "   (or: pgfailover watch --monitor "
        << s.monitor_uri() << ")\n"
        << "Logs: " << s.dir.string() << "/*.pgfailover/pgfailover.log; stop it all: pgfailover demo down --dir "
        << s.dir.string() << "\n";
  } catch (const Error& e) {
    std::ostringstream ignored;
    stop_everything(s, ignored);
    throw Error("demo up failed: {} (everything started was stopped; logs stay in {} until demo down)", e.what(),
                s.dir.string());
  }
}

void demo_failover(const DemoOptions& o, std::ostream& out) {
  auto s = load(o.dir);
  auto api = connect_monitor(s);
  auto nodes = api.current_state("default");
  auto primary = writable_node(nodes, 0);
  if (!primary || !settled(*primary, "primary")) {
    throw Error("no settled primary with a standby right now: see pgfailover show state --monitor {}", s.monitor_uri());
  }
  auto& victim = s.node(primary->name);
  auto libpq = api.formation_uri("default", "libpq", kAppSslMode);
  EventFollower follower(api, "default");

  out << "Killing the primary " << victim.name << " (127.0.0.1:" << victim.port << "): its keeper and its Postgres,\n"
      << "then writing through " << libpq_uri_for_app(libpq) << " until a write succeeds.\n\n";
  auto keeper = service_pid(victim);
  auto postmaster = postmaster_pid(victim);
  Timeline clock(out);
  if (keeper) kill_group(*keeper);
  if (postmaster) kill_group(*postmaster);
  clock.say(fmt::format("killed {}: keeper (pid {}) and Postgres (pid {}) with SIGKILL", victim.name,
                        keeper ? std::to_string(*keeper) : "none", postmaster ? std::to_string(*postmaster) : "none"));

  auto print_events = [&] {
    for (const auto& e : follower.take_new_events()) clock.say("monitor: " + describe_event(e));
  };
  auto deadline = steady_ms() + o.timeout_seconds * 1000;
  std::string why;
  std::optional<int> wrote_to;
  int attempts = 0;
  while (!(wrote_to = write_through(libpq, s.passfile(), &why))) {
    ++attempts;
    print_events();
    if (steady_ms() > deadline) {
      throw Error("no write succeeded within {} s (last error: {})", o.timeout_seconds, why);
    }
    api.wait_for_events(std::chrono::milliseconds(100));
  }
  print_events();
  std::string by = std::to_string(*wrote_to);
  for (const auto& n : s.nodes) {
    if (n.port == *wrote_to) by = n.name + " (127.0.0.1:" + by + ")";
  }
  clock.say(fmt::format("write accepted by {} through the multi-host URI, after {} failed attempts", by, attempts));
  auto writes_back_ms = clock.elapsed();

  victim.service_pid = start_service(s, victim.pgdata);
  save(s);
  clock.say(fmt::format("restarted the keeper of {} (pid {}): it rejoins as a standby", victim.name,
                        victim.service_pid));
  auto rejoined = [&](const std::vector<NodeStatus>& now) {
    return one_primary_rest_secondary(s.nodes.size())(now);
  };
  deadline = steady_ms() + o.timeout_seconds * 1000;
  while (!rejoined(api.current_state("default"))) {
    print_events();
    if (steady_ms() > deadline) {
      throw Error("{} did not rejoin as a secondary within {} s; see {}", victim.name, o.timeout_seconds,
                  InstancePaths::for_pgdata(victim.pgdata).service_log().string());
    }
    api.wait_for_events(std::chrono::milliseconds(200));
  }
  print_events();
  clock.say(victim.name + " is a secondary again");
  out << "\nWrites were refused for " << writes_back_ms << " ms.\n"
      << render_state_table(api.current_state("default"));
}

void demo_down(const DemoOptions& o, std::ostream& out) {
  auto start = steady_ms();
  auto s = load(o.dir);
  auto killed = stop_everything(s, out);
  for (const auto& k : killed) out << "killed " << k << "\n";
  std::error_code ec;
  fs::remove_all(s.dir, ec);
  if (ec) throw Error("everything is stopped, but {} could not be removed: {}", s.dir.string(), ec.message());
  out << "demo stopped and " << s.dir.string() << " removed in " << (steady_ms() - start) / 1000.0 << " s\n";
}

}  // namespace pgf
