// A monitor and data nodes stood up with the real binary (`create monitor`,
// `create postgres`, `run`) on 127.0.0.1 with free ports, for tests that need
// a working formation. Every service is stopped by PID when its object goes
// away, also when a test fails half-way.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/pg_connection.h"
#include "common/process.h"
#include "tests/support/harness.h"

namespace pgf::test {

// True if `args` make a TLS choice of their own (--ssl-self-signed, --no-ssl, --ssl-ca-file).
bool has_tls_choice(const std::vector<std::string>& args);

// `pgfailover create monitor` and its service. TLS on every link by default
// (--ssl-self-signed), so each test that stands up a formation exercises it;
// `create_args` add to or replace that choice (--auth, --ssl-ca-file ...).
struct TestMonitor {
  fs::path pgdata;
  int port;
  std::unique_ptr<Service> service;
  std::string sslmode = "require";  // what keepers and tests ask for: the monitor's TLS choice
  std::string password;             // pgfailover_node's, when created with --auth scram-sha-256

  explicit TestMonitor(const TestDir& dir, const std::string& name = "monitor",
                       const std::vector<std::string>& create_args = {});
  ~TestMonitor();
  TestMonitor(const TestMonitor&) = delete;
  TestMonitor& operator=(const TestMonitor&) = delete;

  // postgresql://pgfailover_node@127.0.0.1:PORT/pgfailover?sslmode=... (no password).
  std::string uri() const;
  // A connection as pgfailover_node, the role of keepers and the CLI (with its password, if any).
  PgConnection api() const;
  // name -> (reported state or "-", goal state)
  std::map<std::string, std::pair<std::string, std::string>> states(const std::string& formation = "default") const;
};

// A data node: `pgfailover create postgres` and its keeper service.
struct TestNode {
  std::string name;
  fs::path pgdata;
  fs::path state_dir;
  int port;
  std::unique_ptr<Service> service;
  std::vector<std::unique_ptr<Service>> retired;

  TestNode(const TestDir& dir, std::string name);
  ~TestNode();
  TestNode(const TestNode&) = delete;
  TestNode& operator=(const TestNode&) = delete;

  // `create postgres`, with --ssl-self-signed unless `extra` makes its own TLS choice.
  void create(const TestMonitor& m, const std::vector<std::string>& extra = {});
  // `pgfailover run`, with extra environment for that process only.
  void start(const std::map<std::string, std::string>& env = {});
  // Superuser connection over the node's Unix socket.
  PgConnection sql() const;
  std::string value(const std::string& query) const;
  // Waits up to 15 s until `query` returns `want` (a standby replays a moment
  // after the synchronous commit that its flush acknowledged).
  void eventually(const std::string& query, const std::string& want) const;
  std::string log() const;
};

// Waits until every node in `want` has reported its goal state and that is the
// given state; on timeout fails with the states seen and the logs of `nodes`.
void wait_states(const TestMonitor& m, const std::map<std::string, std::string>& want, std::chrono::seconds timeout,
                 const std::vector<const TestNode*>& nodes = {});

// A monitor and nodes: the first becomes the primary, the others secondaries.
class TestCluster {
 public:
  TestCluster(std::string_view name, const std::vector<std::string>& node_names);
  TestNode& node(const std::string& name);
  TestNode& add_node(const std::string& name, const std::vector<std::string>& extra = {});
  std::vector<const TestNode*> all_nodes() const;
  const TestDir& dir() const { return dir_; }
  TestMonitor& monitor() { return *monitor_; }
  // The node currently assigned a writable state ("" if none).
  std::string primary() const;

 private:
  TestDir dir_;
  std::unique_ptr<TestMonitor> monitor_;
  std::vector<std::unique_ptr<TestNode>> nodes_;  // destroyed before the monitor (declared after it)
};

// `pgfailover args...` with extra environment variables (and some removed).
CommandResult pgfailover_env(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                             const std::vector<std::string>& unset = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(120));

std::string tail(const std::string& s, size_t n = 3000);

}  // namespace pgf::test
