// A pgfailover group on separate hosts (see netlab.h) for fault-injection
// scenarios and benchmarks: a monitor, data nodes and a client host, every
// process run as the postgres user inside its host's namespace with the real
// binary, stopped by PID. The client host runs a writer (increasing sequence
// numbers through the multi-host URI, every acknowledged commit recorded) and
// a sampler (a probe write to each node ten times a second); the checker reads
// both logs and asserts I1 and I2.
//
// Nothing here depends on Catch: failures throw pgf::Error, so benchmarks use
// it too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/process.h"
#include "tests/scenarios/netlab.h"

namespace pgf::scenario {

using namespace std::chrono_literals;

// Monotonic microseconds, the clock of the client's logs.
std::int64_t now_us();

struct NodeSpec {
  std::string name;
  std::vector<std::string> create_args;           // extra `create postgres` options
  std::map<std::string, std::string> env;         // the keeper's environment (fault injection)
  std::optional<int> pgdata_tmpfs_mb;             // PGDATA on a tmpfs of this size
};

struct ClusterOptions {
  std::vector<NodeSpec> nodes;  // the first becomes the primary
  bool clients = true;          // start the writer and the sampler once the group is formed
  std::int64_t writer_interval_ms = 10;
  // Monitor settings applied right after the monitor starts (name -> value).
  std::map<std::string, std::string> monitor_settings;
};

// One acknowledgement seen by the client: a writer commit or a sampler probe.
struct Ack {
  std::string node;
  std::int64_t sent_us = 0;
  std::int64_t acked_us = 0;
  int timeline = 0;
  std::int64_t seq = -1;  // writer only
  bool late = false;      // sampler: acknowledged after its timeout (was blocked)
};

struct ClientLog {
  std::vector<Ack> writes;        // acknowledged writer commits, in order
  std::vector<Ack> probes;        // acknowledged sampler probes
  std::int64_t write_attempts = 0;
  std::int64_t write_errors = 0;
  std::int64_t unsafe_returns = 0;  // commits returned without their synchronous wait
  std::int64_t probe_timeouts = 0;
  std::set<std::int64_t> acked() const;
};

struct CheckResult {
  std::vector<std::string> violations;  // empty: all good
  std::vector<std::string> notes;       // figures for the log
  std::int64_t acked = 0;
  std::int64_t lost = 0;
  std::string summary() const;
};

// I1 from the client's view: writable periods are (node, timeline) epochs; it
// is violated when acknowledgements of two epochs interleave (X acked, then Y,
// then X again, each provably after the previous), when an epoch of an older
// timeline acknowledges after a newer one did, or when two nodes acknowledge
// on the same timeline (two promotions from one history). A hand-over A -> B
// (A's last acknowledgement before B's first) is fine, and so is a later
// hand-back B -> A (A is then on a newer timeline).
std::vector<std::string> check_single_writer(const std::vector<Ack>& acks);

class Cluster {
 public:
  Cluster(const std::string& name, ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  NetLab& lab() { return *lab_; }
  const fs::path& dir() const { return dir_.path(); }
  std::vector<std::string> node_names() const;
  std::string monitor_uri() const;
  std::string app_uri() const { return app_uri_; }
  // The node a "host:port" (as the writer logs it) belongs to.
  std::string node_at(const std::string& host_port) const;
  bool isolated() const { return lab_->isolated(); }

  // ---- processes, by PID
  void start_keeper(const std::string& node, const std::map<std::string, std::string>& env = {});
  bool keeper_running(const std::string& node);
  void kill_keeper(const std::string& node);     // SIGKILL the keeper; Postgres runs on
  void crash_postgres(const std::string& node);  // SIGKILL the postmaster and its children
  void lose_host(const std::string& node);       // every process of the host killed
  void kill_monitor();                           // the monitor host lost
  void start_monitor();
  std::optional<int> postmaster_pid(const std::string& node) const;
  std::optional<int> walreceiver_pid(const std::string& node);

  // ---- links (throw PartitionUnavailable without namespaces)
  void cut(const std::string& host) { lab_->cut(host); }
  void heal(const std::string& host) { lab_->heal(host); }

  // ---- the CLI, run on the client host against the monitor
  CommandResult cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 120s);
  CommandResult cli_ok(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 120s);
  nlohmann::json state();  // show state --json
  // name -> (reported, assigned)
  std::map<std::string, std::pair<std::string, std::string>> states();
  std::string writable_node();  // assigned a writable state, "" if none
  void wait_states(const std::map<std::string, std::string>& want, std::chrono::milliseconds timeout);
  // One node reported and assigned primary, every other secondary. Returns the primary.
  std::string wait_stable(std::chrono::milliseconds timeout = 90s);
  void set_monitor_setting(const std::string& name, const std::string& value);
  std::string events_text(int count = 40);

  // ---- SQL on a node as its superuser, over its Unix socket (no network)
  std::string psql(const std::string& node, const std::string& sql, std::chrono::milliseconds timeout = 30s);
  std::string keeper_log(const std::string& node) const;
  std::string postgres_log(const std::string& node) const;
  std::string monitor_log() const;
  fs::path pgdata(const std::string& node) const;

  // ---- the client host
  void start_clients();
  void stop_clients();
  ClientLog read_client_log() const;
  // Waits until the writer has `n` more acknowledgements than now (on `node` if given).
  void wait_writes(int n, std::chrono::milliseconds timeout, const std::string& node = "");

  // Stops the clients, waits for the group to be stable, and checks I1 and I2
  // against the final primary.
  CheckResult check(std::chrono::milliseconds settle = 90s);

  // Stops every process by PID and removes the hosts. Returns what was left
  // that should not have been (processes, namespaces, mounts); empty is good.
  std::vector<std::string> teardown();

  // Diagnostics for a failure: states, events, the tails of the logs.
  std::string diagnostics();

 private:
  struct Node {
    NodeSpec spec;
    fs::path pgdata;
    fs::path state_dir;
    int port = 0;
    std::unique_ptr<ChildProcess> keeper;
    std::vector<int> postmasters_seen;
    bool mounted = false;
  };
  Node& node(const std::string& name);
  const Node& node(const std::string& name) const;
  ProcessSpec spec_on(const std::string& host, std::vector<std::string> argv) const;
  void create_monitor();
  void create_node(Node& n);
  void setup_application(const Node& primary);
  void remember_postmaster(Node& n);
  void stop_keeper(Node& n);

  std::string name_;
  ClusterOptions options_;
  std::unique_ptr<NetLab> lab_;
  TempDir dir_;
  fs::path passfile_;
  std::vector<std::string> tls_args_;
  fs::path monitor_pgdata_;
  int monitor_port_ = 0;
  std::unique_ptr<ChildProcess> monitor_;
  std::vector<int> monitor_postmasters_;
  std::vector<Node> nodes_;
  std::string app_uri_;
  std::unique_ptr<ChildProcess> writer_;
  std::unique_ptr<ChildProcess> sampler_;
  fs::path writer_log_;
  fs::path sampler_log_;
  bool torn_down_ = false;
};

// Polls `ok` every 50 ms (exceptions count as false) until true or timeout;
// then throws Error("timed out after S s waiting for <what>"). Returns the ms it took.
std::int64_t poll_until(const std::function<bool()>& ok, std::chrono::milliseconds timeout, const std::string& what);

}  // namespace pgf::scenario
