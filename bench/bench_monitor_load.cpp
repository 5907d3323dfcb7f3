// bench_monitor_load: thousands of simulated nodes report once a second each,
// through a few connections, to a real monitor (`pgfailover create monitor` +
// `pgfailover run`: its Postgres, the real SQL API, the decider and the health
// checker running). Each simulated node is a group member that reaches every
// goal at once and reports like a keeper (node_active with its state, LSN,
// upstream, synchronous settings, pg_stat_replication on primaries), so the
// groups settle into primary + secondary and then report steadily.
//
// Phases: baseline (`SELECT 1` at the same rate on the same connections,
// before any node exists), warm-up (nodes register and settle), measured
// (paced at one report per node per second), saturation (unpaced).
// Prints reports/s, latency p50/p99/max, the monitor's CPU (its service and
// every Postgres process) and memory (PSS), and writes JSON.
//
//   sudo build/bench/bench_monitor_load --nodes 3000 --connections 4 --seconds 30 [--json bench_monitor_load.json]
#include <libpq-fe.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <dirent.h>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/net.h"
#include "common/process.h"

using namespace pgf;
using namespace pgf::bench;

namespace {

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct SimNode {
  std::int64_t id = 0;
  int group = 0;
  std::int64_t sysid = 0;
  std::string state = "init";
  std::int64_t goal_version = 0;
  std::string upstream;       // "" = NULL
  int sync_num = 0;
  std::string sync_standbys = "{}";
  std::vector<std::int64_t> peers;
  double phase = 0;  // seconds into each second when it reports
};

const char* kReport =
    "SELECT goal_state, goal_version, upstream_id, sync_num, sync_standbys, peers::text "
    "FROM pgfailover.node_active($1::bigint, $2, true, 1, '0/3000000'::pg_lsn, $3::bigint, $4::bool, $5::int, "
    "$6::bigint[], $7::bigint[], $8::jsonb, $9::bigint, $10::bigint)";

PGconn* connect_or_throw(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string e = PQerrorMessage(c);
    PQfinish(c);
    throw Error("cannot connect to the monitor: {}", e);
  }
  return c;
}

std::vector<std::int64_t> parse_peer_ids(const std::string& json) {
  std::vector<std::int64_t> out;
  for (const auto& p : nlohmann::json::parse(json)) out.push_back(p.at("id").get<std::int64_t>());
  return out;
}

// One report of a simulated node; updates it from the answer. Returns false on error.
bool report(PGconn* c, SimNode& n, std::string* error) {
  std::string id = std::to_string(n.id), streaming = n.upstream.empty() ? "false" : "true",
              sync_num = std::to_string(n.sync_num), sysid = std::to_string(n.sysid),
              version = std::to_string(n.goal_version);
  std::string peers = "{";
  std::string replication = "[]";
  bool primary_role = n.state == "single" || n.state == "wait_primary" || n.state == "primary";
  if (primary_role && !n.peers.empty()) {
    replication = "[";
    for (size_t i = 0; i < n.peers.size(); ++i) {
      replication += fmt::format("{}{{\"application_name\":\"pgfailover_node_{}\",\"state\":\"streaming\","
                                 "\"sync_state\":\"{}\",\"flush_lsn\":\"0/3000000\",\"replay_lag\":0}}",
                                 i ? "," : "", n.peers[i], n.sync_num > 0 ? "quorum" : "async");
    }
    replication += "]";
  }
  for (size_t i = 0; i < n.peers.size(); ++i) peers += (i ? "," : "") + std::to_string(n.peers[i]);
  peers += "}";
  const char* params[10] = {id.c_str(),
                            n.state.c_str(),
                            n.upstream.empty() ? nullptr : n.upstream.c_str(),
                            streaming.c_str(),
                            sync_num.c_str(),
                            n.sync_standbys.c_str(),
                            primary_role ? peers.c_str() : "{}",
                            replication.c_str(),
                            sysid.c_str(),
                            version.c_str()};
  PGresult* r = PQexecPrepared(c, "report", 10, params, nullptr, nullptr, 0);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) {
    n.state = PQgetvalue(r, 0, 0);
    n.goal_version = std::atoll(PQgetvalue(r, 0, 1));
    n.upstream = PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2);
    n.sync_num = PQgetisnull(r, 0, 3) ? 0 : std::atoi(PQgetvalue(r, 0, 3));
    n.sync_standbys = PQgetisnull(r, 0, 4) ? "{}" : PQgetvalue(r, 0, 4);
    if (n.peers.empty() && !PQgetisnull(r, 0, 5)) n.peers = parse_peer_ids(PQgetvalue(r, 0, 5));
  } else if (error) {
    *error = PQresultErrorMessage(r);
  }
  PQclear(r);
  return ok;
}

struct Phase {
  std::vector<double> latencies_ms;
  std::int64_t done = 0, errors = 0;
  double seconds = 0;
  std::string first_error;
};

// Runs `seconds` of load over `conns` connections: each node reports once per
// second at its phase (paced), or back to back (unpaced). `baseline` sends
// SELECT 1 instead of the report.
Phase run_phase(const std::vector<PGconn*>& conns, std::vector<SimNode>& nodes, double seconds, bool paced,
                bool baseline) {
  Phase out;
  std::mutex m;
  std::vector<std::thread> threads;
  auto start = now_us();
  auto end = start + static_cast<std::int64_t>(seconds * 1e6);
  for (size_t t = 0; t < conns.size(); ++t) {
    threads.emplace_back([&, t] {
      std::vector<SimNode*> mine;
      for (size_t i = t; i < nodes.size(); i += conns.size()) mine.push_back(&nodes[i]);
      std::vector<double> lat;
      lat.reserve(static_cast<size_t>(seconds * static_cast<double>(mine.size()) + 16));
      std::int64_t errors = 0;
      std::string first_error;
      for (std::int64_t second = 0;; ++second) {
        for (SimNode* n : mine) {
          auto due = start + second * 1000000 + static_cast<std::int64_t>(n->phase * 1e6);
          if (paced) {
            auto wait = due - now_us();
            if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
          }
          auto t0 = now_us();
          if (t0 >= end) goto done;
          bool ok;
          std::string err;
          if (baseline) {
            PGresult* r = PQexecPrepared(conns[t], "one", 0, nullptr, nullptr, nullptr, 0);
            ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            if (!ok) err = PQresultErrorMessage(r);
            PQclear(r);
          } else {
            ok = report(conns[t], *n, &err);
          }
          lat.push_back((now_us() - t0) / 1000.0);
          if (!ok) {
            ++errors;
            if (first_error.empty()) first_error = err;
          }
        }
      }
    done:
      std::lock_guard lk(m);
      out.latencies_ms.insert(out.latencies_ms.end(), lat.begin(), lat.end());
      out.errors += errors;
      if (out.first_error.empty()) out.first_error = first_error;
    });
  }
  for (auto& th : threads) th.join();
  out.seconds = (now_us() - start) / 1e6;
  out.done = static_cast<std::int64_t>(out.latencies_ms.size());
  return out;
}

// CPU ticks (user + system) and PSS of a process; zeros if it is gone.
struct ProcStat {
  long long ticks = 0;
  long long pss_kb = 0;
  long long rss_kb = 0;
};

ProcStat proc_stat(int pid) {
  ProcStat s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto rp = text.rfind(')');
  if (rp == std::string::npos) return s;
  std::istringstream w(text.substr(rp + 2));
  std::string field;
  std::vector<std::string> f;
  while (w >> field) f.push_back(field);
  if (f.size() > 13) s.ticks = std::atoll(f[11].c_str()) + std::atoll(f[12].c_str());
  std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
  for (std::string line; std::getline(rollup, line);) {
    if (line.rfind("Pss:", 0) == 0) s.pss_kb = std::atoll(line.c_str() + 4);
    if (line.rfind("Rss:", 0) == 0) s.rss_kb = std::atoll(line.c_str() + 4);
  }
  return s;
}

int parent_of(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto rp = text.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream w(text.substr(rp + 2));
  std::string state;
  int ppid = 0;
  w >> state >> ppid;
  return ppid;
}

// The monitor: its service and its postmaster with every child.
std::set<int> monitor_pids(int service, int postmaster) {
  std::set<int> out{service, postmaster};
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    int pid = std::atoi(e->d_name);
    if (pid > 0 && parent_of(pid) == postmaster) out.insert(pid);
  }
  if (d) closedir(d);
  return out;
}

struct Usage {
  std::map<int, long long> ticks;
};

Usage usage_of(const std::set<int>& pids) {
  Usage u;
  for (int p : pids) u.ticks[p] = proc_stat(p).ticks;
  return u;
}

// CPU of the monitor between two samples, in % of one core.
double cpu_percent(const Usage& before, const Usage& after, double seconds) {
  long long ticks = 0;
  for (const auto& [pid, t] : after.ticks) {
    auto it = before.ticks.find(pid);
    ticks += t - (it == before.ticks.end() ? 0 : it->second);
  }
  return 100.0 * static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds;
}

double own_cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv,
            {{"nodes", "3000"}, {"connections", "4"}, {"seconds", "30"}, {"warmup", "120"}, {"saturation", "10"},
             {"json", "bench_monitor_load.json"}},
            "usage: bench_monitor_load [--nodes N] [--connections K] [--seconds S] [--warmup S] [--saturation S] "
            "[--json FILE]\n");
  int n_nodes = static_cast<int>(args.num("nodes"));
  int n_conns = static_cast<int>(args.num("connections"));
  double seconds = static_cast<double>(args.num("seconds"));
  signal(SIGPIPE, SIG_IGN);
  std::optional<std::string> user;
  if (running_as_root()) user = "postgres";
  TempDir dir("pgf-bench-monitor-load", user);
  fs::path pgdata = dir / "monitor";
  int port = find_free_port("127.0.0.1");
  ChildProcess service;
  int postmaster = 0;
  auto stop_all = [&] {
    if (service.valid() && service.running()) {
      service.signal(SIGINT);
      if (!service.wait_for(std::chrono::seconds(20))) service.stop(std::chrono::milliseconds(0));
    }
    if (postmaster > 0 && process_alive(postmaster)) {
      ::kill(-postmaster, SIGKILL);
      ::kill(postmaster, SIGKILL);
    }
  };
  try {
    ProcessSpec create;
    create.argv = {PGF_BENCH_PGFAILOVER_BINARY, "create", "monitor", "--pgdata", pgdata.string(), "--pgport",
                   std::to_string(port)};
    create.run_as_user = user;
    {
      ProcessSpec help;
      help.argv = {PGF_BENCH_PGFAILOVER_BINARY, "create", "monitor", "--help"};
      if (run_command(help, std::chrono::seconds(30)).out.find("--ssl-self-signed") != std::string::npos)
        create.argv.push_back("--ssl-self-signed");
    }
    run_checked(create, "create monitor", std::chrono::minutes(2));
    ProcessSpec run;
    run.argv = {PGF_BENCH_PGFAILOVER_BINARY, "run", "--pgdata", pgdata.string()};
    run.run_as_user = user;
    run.stdout_path = (dir / "monitor.log").string();
    run.stderr_path = run.stdout_path;
    run.parent_death_signal = SIGKILL;
    service = ChildProcess::spawn(run);
    auto conninfo = fmt::format("host=127.0.0.1 port={} dbname=pgfailover user=pgfailover_node connect_timeout=5", port);
    std::vector<PGconn*> conns;
    auto start_wait = steady_ms();
    while (true) {
      PGconn* c = PQconnectdb(conninfo.c_str());
      bool ok = PQstatus(c) == CONNECTION_OK;
      PQfinish(c);
      if (ok) break;
      if (steady_ms() - start_wait > 60000) throw Error("the monitor did not accept connections within 60 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    postmaster = std::atoi(read_file(pgdata / "postmaster.pid").c_str());
    for (int i = 0; i < n_conns; ++i) {
      conns.push_back(connect_or_throw(conninfo));
      PQclear(PQprepare(conns.back(), "report", kReport, 10, nullptr));
      PQclear(PQprepare(conns.back(), "one", "SELECT 1", 0, nullptr));
    }

    std::vector<SimNode> nodes(static_cast<size_t>(n_nodes));
    for (int i = 0; i < n_nodes; ++i) nodes[i].phase = static_cast<double>(i) / n_nodes;

    // 1. Baseline: the same rate of trivial calls on the same connections.
    std::printf("baseline: SELECT 1 at %d calls/s over %d connections for %.0f s\n", n_nodes, n_conns, seconds / 2);
    std::fflush(stdout);
    auto base = run_phase(conns, nodes, seconds / 2, true, true);

    // 2. Register the nodes: groups of two (a primary and its standby).
    std::printf("registering %d nodes in %d groups\n", n_nodes, (n_nodes + 1) / 2);
    std::fflush(stdout);
    for (int i = 0; i < n_nodes; ++i) {
      auto& n = nodes[i];
      n.group = i / 2;
      n.sysid = 7000000000000000000LL + n.group;
      std::string name = fmt::format("sim{}", i), host = fmt::format("127.1.{}.{}", i / 250, i % 250 + 1),
                  group = std::to_string(n.group), sysid = std::to_string(n.sysid);
      const char* p[5] = {name.c_str(), host.c_str(), sysid.c_str(), group.c_str(), nullptr};
      PGresult* r = PQexecParams(conns[0],
                                 "SELECT node_id FROM pgfailover.register_node('default', $1, $2, 5432, $3::bigint, 50, "
                                 "true, $4::int)",
                                 4, nullptr, p, nullptr, nullptr, 0);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::string e = PQresultErrorMessage(r);
        PQclear(r);
        throw Error("register_node: {}", e);
      }
      n.id = std::atoll(PQgetvalue(r, 0, 0));
      PQclear(r);
    }

    // 3. Warm-up: report until every group is primary + secondary.
    auto settled = [&] {
      int ok = 0;
      for (const auto& n : nodes) ok += n.state == "primary" || n.state == "secondary";
      return ok;
    };
    double warm = 0;
    while (warm < static_cast<double>(args.num("warmup")) && settled() < n_nodes) {
      auto ph = run_phase(conns, nodes, 5, true, false);
      warm += ph.seconds;
      std::map<std::string, int> hist;
      for (const auto& n : nodes) hist[n.state]++;
      std::string h;
      for (const auto& [k, v] : hist) h += fmt::format(" {}={}", k, v);
      std::printf("warm-up %.0f s: %d of %d nodes settled (primary or secondary):%s; %lld errors%s%s\n", warm,
                  settled(), n_nodes, h.c_str(), static_cast<long long>(ph.errors), ph.first_error.empty() ? "" : ": ",
                  ph.first_error.c_str());
      std::fflush(stdout);
    }

    // 4. Measured: one report per node per second.
    auto pids = monitor_pids(service.pid(), postmaster);
    auto u0 = usage_of(pids);
    double own0 = own_cpu_seconds();
    std::printf("measuring %.0f s at %d reports/s over %d connections\n", seconds, n_nodes, n_conns);
    std::fflush(stdout);
    auto load = run_phase(conns, nodes, seconds, true, false);
    auto pids_after = monitor_pids(service.pid(), postmaster);
    auto u1 = usage_of(pids_after);
    double own_cpu = 100.0 * (own_cpu_seconds() - own0) / load.seconds;
    double cpu = cpu_percent(u0, u1, load.seconds);
    long long pss = 0, rss = 0;
    for (int p : pids_after) {
      auto s = proc_stat(p);
      pss += s.pss_kb;
      rss += s.rss_kb;
    }

    // 5. Saturation: back to back.
    std::printf("saturation: back to back for %ld s\n", args.num("saturation"));
    std::fflush(stdout);
    auto sat = run_phase(conns, nodes, static_cast<double>(args.num("saturation")), false, false);

    for (auto* c : conns) PQfinish(c);
    stop_all();

    double rate = static_cast<double>(load.done) / load.seconds;
    double sat_rate = static_cast<double>(sat.done) / sat.seconds;
    double p50 = percentile(load.latencies_ms, 50), p99 = percentile(load.latencies_ms, 99),
           pmax = max_of(load.latencies_ms);
    double b50 = percentile(base.latencies_ms, 50), b99 = percentile(base.latencies_ms, 99);
    std::printf("\n");
    print_table({{"phase", "calls/s", "p50 (ms)", "p99 (ms)", "max (ms)", "errors"},
                 {"baseline SELECT 1", fmt_num(base.done / base.seconds, 0), fmt_num(b50), fmt_num(b99),
                  fmt_num(max_of(base.latencies_ms)), std::to_string(base.errors)},
                 {"node_active, paced", fmt_num(rate, 0), fmt_num(p50), fmt_num(p99), fmt_num(pmax),
                  std::to_string(load.errors)},
                 {"node_active, saturation", fmt_num(sat_rate, 0), fmt_num(percentile(sat.latencies_ms, 50)),
                  fmt_num(percentile(sat.latencies_ms, 99)), fmt_num(max_of(sat.latencies_ms)),
                  std::to_string(sat.errors)}});
    std::printf("\n");
    print_table({{"figure", "value", "target"},
                 {"simulated nodes / connections", fmt::format("{} / {}", n_nodes, n_conns), ""},
                 {"reports/s (paced)", fmt_num(rate, 0), ">= 2000"},
                 {"p50 latency (ms)", fmt_num(p50), ""},
                 {"p99 latency (ms)", fmt_num(p99), "<= 20"},
                 {"p50 vs SELECT 1 baseline", fmt_num(b50 > 0 ? p50 / b50 : 0, 1) + "x", ""},
                 {"max reports/s (saturation)", fmt_num(sat_rate, 0), ""},
                 {"monitor CPU (% of one core)", fmt_num(cpu, 0), ""},
                 {"monitor memory PSS / RSS (MiB)", fmt_num(pss / 1024.0, 0) + " / " + fmt_num(rss / 1024.0, 0), ""},
                 {"load generator CPU (% of one core)", fmt_num(own_cpu, 0), ""},
                 {"groups settled", fmt::format("{} of {} nodes", settled(), n_nodes), ""}});
    if (!load.first_error.empty()) std::printf("first error: %s\n", load.first_error.c_str());
    bool met = rate >= 2000 && p99 <= 20 && load.errors == 0;
    write_json(args.str("json"),
               {{"benchmark", "monitor-load"},
                {"machine", machine_info()},
                {"nodes", n_nodes},
                {"connections", n_conns},
                {"seconds", load.seconds},
                {"reports_per_s", rate},
                {"latency_ms", {{"p50", p50}, {"p99", p99}, {"max", pmax}}},
                {"errors", load.errors},
                {"baseline_select1_ms", {{"p50", b50}, {"p99", b99}}},
                {"ratio_p50_to_baseline", b50 > 0 ? p50 / b50 : 0},
                {"saturation_reports_per_s", sat_rate},
                {"monitor_cpu_percent_of_one_core", cpu},
                {"monitor_pss_mib", pss / 1024.0},
                {"monitor_rss_mib", rss / 1024.0},
                {"load_generator_cpu_percent_of_one_core", own_cpu},
                {"nodes_settled", settled()},
                {"target", {{"reports_per_s", 2000}, {"p99_ms", 20}}},
                {"met", met}});
    return 0;
  } catch (const std::exception& e) {
    stop_all();
    std::fprintf(stderr, "bench_monitor_load: %s\n", e.what());
    return 1;
  }
}
