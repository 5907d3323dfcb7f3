// Hosts for fault-injection scenarios: one network namespace per host (monitor,
// each data node, the client), each with a veth to a bridge that lives in a
// namespace of its own. Nothing is linked to the root namespace and no
// namespace has a default route, so no packet can leave the machine (see
// shared/NOTES.md: a link set down from the root namespace once sent packets
// off the machine). Links are cut and healed from inside the bridge namespace.
//
// Where namespaces cannot be made (no CAP_NET_ADMIN / CAP_SYS_ADMIN, or
// PGFAILOVER_SCENARIO_NETNS=0), every host is 127.0.0.1 with its own ports and
// partitions are not available (cut() throws PartitionUnavailable).
//
// Everything is removed by the destructor, also when a test fails; teardown()
// does the same and returns what it had to clean up that should have been gone
// already (processes still running in a namespace), and leftovers() checks that
// nothing is left.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "common/process.h"

namespace pgf::scenario {

struct LabHost {
  std::string name;     // "monitor", "a", "client", ...
  std::string address;  // its address in the lab subnet, or 127.0.0.1
  std::string netns;    // namespace name ("" without namespaces)
  std::string port_in_bridge;  // its veth in the bridge namespace
  std::string netns_path() const { return netns.empty() ? "" : "/run/netns/" + netns; }
};

struct PartitionUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class NetLab {
 public:
  explicit NetLab(const std::vector<std::string>& host_names);
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  // True when every host has its own namespace.
  bool isolated() const { return isolated_; }
  // Why namespaces are not used ("" when they are).
  const std::string& fallback_reason() const { return fallback_reason_; }
  const std::string& subnet() const { return subnet_; }  // "10.x.y.0/24" or ""
  const std::string& prefix() const { return prefix_; }

  const LabHost& host(const std::string& name) const;
  const std::vector<LabHost>& hosts() const { return hosts_; }

  // The host's link down / up, from inside the bridge namespace.
  void cut(const std::string& name);
  void heal(const std::string& name);

  // Fills in the namespace of `host` (and the postgres user when we are root).
  ProcessSpec spec(const std::string& host, std::vector<std::string> argv) const;

  // PIDs of the processes running in the host's namespace (empty without namespaces).
  std::vector<int> processes_in(const std::string& host) const;
  // SIGKILL every process in the host's namespace: the host lost. Returns how many.
  int kill_all_in(const std::string& host);

  // Removes everything. Returns a description of each process that was still
  // running in one of the namespaces (it is killed first).
  std::vector<std::string> teardown();
  // What this lab made that still exists (namespaces, the safety route).
  std::vector<std::string> leftovers() const;

 private:
  std::vector<LabHost> hosts_;
  std::string prefix_;
  std::string bridge_ns_;
  std::string subnet_;
  std::string guard_route_;  // "unreachable <subnet>" added in the root namespace
  std::vector<std::string> made_ns_;
  bool isolated_ = false;
  bool torn_down_ = false;
  std::string fallback_reason_;
};

// Runs `ip args...` (in the root namespace; use `-n NS` to act inside one).
void ip(const std::vector<std::string>& args);

// Removes namespaces of earlier runs of this harness whose process is gone
// (a crashed run), killing what still runs in them. Returns what it removed.
std::vector<std::string> remove_stale_namespaces();

// Inode of a network namespace file (/run/netns/X or /proc/PID/ns/net), 0 if none.
unsigned long netns_inode(const std::string& path);

}  // namespace pgf::scenario
