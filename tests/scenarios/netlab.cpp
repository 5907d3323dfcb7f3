#include "tests/scenarios/netlab.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fmt/format.h>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/error.h"

namespace pgf::scenario {

namespace {

constexpr const char* kPrefix = "pgfs";  // namespaces: pgfs<pid>x<n>-<host>, bridge: pgfs<pid>x<n>-br

std::atomic<int> g_lab_counter{0};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> list_namespaces() {
  std::vector<std::string> out;
  DIR* d = opendir("/run/netns");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  return out;
}

// Every PID whose network namespace has this inode.
std::vector<int> pids_in_netns(unsigned long inode) {
  std::vector<int> out;
  if (inode == 0) return out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (netns_inode("/proc/" + std::to_string(pid) + "/ns/net") == inode) out.push_back(static_cast<int>(pid));
  }
  closedir(d);
  return out;
}

std::string describe_pid(int pid) {
  std::string cmd;
  if (auto f = std::fopen(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), "r")) {
    char buf[512];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    for (size_t i = 0; i < n; ++i) cmd.push_back(buf[i] == '\0' ? ' ' : buf[i]);
  }
  return fmt::format("pid {} ({})", pid, trim(cmd));
}

// SIGKILL each and wait (up to 10 s) until none is alive.
void kill_and_wait(const std::vector<int>& pids) {
  for (int p : pids) ::kill(p, SIGKILL);
  auto deadline = steady_ms() + 10000;
  for (int p : pids) {
    while (process_alive(p) && steady_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool run_ip(const std::vector<std::string>& args, std::string* err) {
  ProcessSpec spec;
  spec.argv = {"ip"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  auto r = run_command(spec, std::chrono::seconds(20));
  if (!r.status.ok() && err) *err = trim(r.err.empty() ? r.out : r.err);
  return r.status.ok();
}

struct Prefix4 {
  std::uint32_t net;
  int len;
};

std::optional<Prefix4> parse_prefix(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  int len = slash == std::string::npos ? 32 : std::atoi(text.c_str() + slash + 1);
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1 || len < 0 || len > 32) return std::nullopt;
  return Prefix4{ntohl(a.s_addr), len};
}

bool overlaps(Prefix4 x, Prefix4 y) {
  int len = std::min(x.len, y.len);
  std::uint32_t mask = len == 0 ? 0 : ~std::uint32_t{0} << (32 - len);
  return (x.net & mask) == (y.net & mask);
}

// A /24 in 10.0.0.0/8 that no route of the root namespace covers (except the
// default route), derived from our PID so that parallel runs differ.
std::string pick_subnet() {
  ProcessSpec spec;
  spec.argv = {"ip", "-4", "route", "show", "table", "all"};
  auto routes = run_command(spec, std::chrono::seconds(20)).out;
  std::vector<Prefix4> taken;
  std::istringstream in(routes);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (w == "default") break;
      if (auto p = parse_prefix(w)) {
        taken.push_back(*p);
        break;
      }
    }
  }
  unsigned seed = static_cast<unsigned>(getpid()) * 7u + static_cast<unsigned>(g_lab_counter.load());
  for (unsigned i = 0; i < 4096; ++i) {
    unsigned v = (seed + i * 97u) % (128u * 256u);
    std::string s = fmt::format("10.{}.{}.0/24", 64 + v / 256, v % 256);
    auto p = *parse_prefix(s);
    bool free = true;
    for (const auto& t : taken) free = free && !overlaps(p, t);
    if (free) return s;
  }
  throw Error("no free /24 in 10.64.0.0/10 for the test network");
}

}  // namespace

unsigned long netns_inode(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<unsigned long>(st.st_ino);
}

void ip(const std::vector<std::string>& args) {
  std::string err;
  if (!run_ip(args, &err)) {
    std::string cmd = "ip";
    for (const auto& a : args) cmd += " " + a;
    throw Error("{} failed: {}", cmd, err);
  }
}

std::vector<std::string> remove_stale_namespaces() {
  std::vector<std::string> removed;
  for (const auto& n : list_namespaces()) {
    if (n.rfind(kPrefix, 0) != 0) continue;
    int pid = std::atoi(n.c_str() + std::char_traits<char>::length(kPrefix));
    auto x = n.find('x');
    if (pid <= 0 || x == std::string::npos || pid == getpid() || process_exists(pid)) continue;
    kill_and_wait(pids_in_netns(netns_inode("/run/netns/" + n)));
    std::string err;
    if (run_ip({"netns", "del", n}, &err)) removed.push_back(n);
  }
  return removed;
}

NetLab::NetLab(const std::vector<std::string>& host_names) {
  int n = g_lab_counter.fetch_add(1);
  prefix_ = fmt::format("{}{}x{}", kPrefix, getpid(), n);
  for (const auto& h : host_names) hosts_.push_back(LabHost{h, "127.0.0.1", "", ""});

  const char* env = std::getenv("PGFAILOVER_SCENARIO_NETNS");
  if (env && std::string(env) == "0") {
    fallback_reason_ = "PGFAILOVER_SCENARIO_NETNS=0";
  } else if (geteuid() != 0) {
    fallback_reason_ = "not running as root (no CAP_NET_ADMIN)";
  }
  if (!fallback_reason_.empty()) return;

  try {
    remove_stale_namespaces();
    subnet_ = pick_subnet();
    std::string base = subnet_.substr(0, subnet_.rfind('.') + 1);  // "10.x.y."
    // A safety net in the root namespace: should anything there ever address
    // the test subnet, it is refused instead of following the default route.
    guard_route_ = subnet_;
    ip({"route", "add", "unreachable", subnet_, "metric", "9999"});

    bridge_ns_ = prefix_ + "-br";
    ip({"netns", "add", bridge_ns_});
    made_ns_.push_back(bridge_ns_);
    ip({"-n", bridge_ns_, "link", "add", "br0", "type", "bridge"});
    ip({"-n", bridge_ns_, "link", "set", "br0", "up"});
    for (size_t i = 0; i < hosts_.size(); ++i) {
      auto& h = hosts_[i];
      h.netns = prefix_ + "-" + h.name;
      h.port_in_bridge = fmt::format("p{}", i);
      h.address = base + std::to_string(10 + i);
      ip({"netns", "add", h.netns});
      made_ns_.push_back(h.netns);
      // The pair is made inside the bridge namespace and its far end moved
      // straight into the host's: no end ever exists in the root namespace.
      ip({"-n", bridge_ns_, "link", "add", h.port_in_bridge, "type", "veth", "peer", "name", "eth0", "netns", h.netns});
      ip({"-n", bridge_ns_, "link", "set", h.port_in_bridge, "master", "br0"});
      ip({"-n", bridge_ns_, "link", "set", h.port_in_bridge, "up"});
      ip({"-n", h.netns, "addr", "add", h.address + "/24", "dev", "eth0"});
      ip({"-n", h.netns, "link", "set", "lo", "up"});
      ip({"-n", h.netns, "link", "set", "eth0", "up"});
    }
    isolated_ = true;
  } catch (const std::exception& e) {
    fallback_reason_ = std::string("cannot make network namespaces: ") + e.what();
    teardown();  // what was made so far; nothing else will be
    for (auto& h : hosts_) h = LabHost{h.name, "127.0.0.1", "", ""};
    subnet_.clear();
    isolated_ = false;
  }
}

NetLab::~NetLab() {
  try {
    teardown();
  } catch (...) {
  }
}

const LabHost& NetLab::host(const std::string& name) const {
  for (const auto& h : hosts_) {
    if (h.name == name) return h;
  }
  throw Error("no host {} in the lab", name);
}

void NetLab::cut(const std::string& name) {
  if (!isolated_) throw PartitionUnavailable("network partitions need network namespaces (" + fallback_reason_ + ")");
  ip({"-n", bridge_ns_, "link", "set", host(name).port_in_bridge, "down"});
}

void NetLab::heal(const std::string& name) {
  if (!isolated_) throw PartitionUnavailable("network partitions need network namespaces (" + fallback_reason_ + ")");
  ip({"-n", bridge_ns_, "link", "set", host(name).port_in_bridge, "up"});
}

ProcessSpec NetLab::spec(const std::string& name, std::vector<std::string> argv) const {
  ProcessSpec s;
  s.argv = std::move(argv);
  if (isolated_) s.network_namespace = host(name).netns_path();
  if (running_as_root()) s.run_as_user = "postgres";
  return s;
}

std::vector<int> NetLab::processes_in(const std::string& name) const {
  if (!isolated_) return {};
  return pids_in_netns(netns_inode(host(name).netns_path()));
}

int NetLab::kill_all_in(const std::string& name) {
  auto pids = processes_in(name);
  kill_and_wait(pids);
  return static_cast<int>(pids.size());
}

std::vector<std::string> NetLab::teardown() {
  std::vector<std::string> late;
  if (torn_down_) return late;
  torn_down_ = true;
  // Hosts first, the bridge last.
  for (auto it = made_ns_.rbegin(); it != made_ns_.rend(); ++it) {
    auto pids = pids_in_netns(netns_inode("/run/netns/" + *it));
    for (int p : pids) late.push_back(*it + ": " + describe_pid(p));
    kill_and_wait(pids);
    std::string err;
    for (int attempt = 0; attempt < 50 && !run_ip({"netns", "del", *it}, &err); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  made_ns_.clear();
  if (!guard_route_.empty()) {
    std::string err;
    run_ip({"route", "del", "unreachable", guard_route_, "metric", "9999"}, &err);
  }
  return late;
}

std::vector<std::string> NetLab::leftovers() const {
  std::vector<std::string> out;
  for (const auto& n : list_namespaces()) {
    if (n.rfind(prefix_ + "-", 0) == 0) out.push_back("network namespace " + n);
  }
  if (!guard_route_.empty()) {
    ProcessSpec spec;
    spec.argv = {"ip", "-4", "route", "show", "type", "unreachable"};
    auto r = run_command(spec, std::chrono::seconds(20));
    if (r.out.find(guard_route_) != std::string::npos) out.push_back("route unreachable " + guard_route_);
  }
  return out;
}

}  // namespace pgf::scenario
