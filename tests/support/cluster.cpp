#include "tests/support/cluster.h"

#include <catch2/catch.hpp>
#include <thread>

#include "common/clock.h"
#include "common/instance_paths.h"
#include "common/secrets.h"

namespace pgf::test {

std::string tail(const std::string& s, size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

// ---- TestMonitor

bool has_tls_choice(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--ssl-self-signed" || a == "--no-ssl" || a == "--ssl-ca-file") return true;
  }
  return false;
}

TestMonitor::TestMonitor(const TestDir& dir, const std::string& name, const std::vector<std::string>& create_args)
    : pgdata(dir / name), port(free_port()) {
  std::vector<std::string> args{"create", "monitor", "--pgdata", pgdata.string(), "--pgport", std::to_string(port)};
  if (!has_tls_choice(create_args)) args.push_back("--ssl-self-signed");
  args.insert(args.end(), create_args.begin(), create_args.end());
  for (const auto& a : create_args) {
    if (a == "--ssl-ca-file") sslmode = "verify-full";
    if (a == "--no-ssl") sslmode.clear();
  }
  pgfailover_ok(args);
  if (auto secrets = InstancePaths::for_pgdata(pgdata).secrets_file(); fs::exists(secrets)) {
    password = RolePasswords::load(secrets).keeper.value_or("");
  }
  service = std::make_unique<Service>(pgdata);
  wait_until([&] { return states().empty(); }, std::chrono::seconds(30), "the monitor accepting keepers");
}

TestMonitor::~TestMonitor() {
  service.reset();
  kill_postmaster(pgdata);
}

std::string TestMonitor::uri() const {
  return "postgresql://pgfailover_node@127.0.0.1:" + std::to_string(port) + "/pgfailover" +
         (sslmode.empty() ? "" : "?sslmode=" + sslmode);
}

PgConnection TestMonitor::api() const {
  // verify-full needs the CA; the tests check the monitor's answers, and TLS
  // itself is checked where it is the subject (security_test.cpp).
  std::string mode = sslmode == "verify-full" ? "require" : sslmode;
  return PgConnection::connect("host=127.0.0.1 port=" + std::to_string(port) +
                                   " dbname=pgfailover user=pgfailover_node connect_timeout=2" +
                                   (mode.empty() ? "" : " sslmode=" + mode) +
                                   (password.empty() ? "" : " password=" + conninfo_quote(password)),
                               "test monitor");
}

std::map<std::string, std::pair<std::string, std::string>> TestMonitor::states(const std::string& formation) const {
  auto c = api();
  auto r = c.exec(
      "SELECT name, coalesce(reported_state, '-') AS reported, goal_state FROM pgfailover.current_state($1)",
      {param(formation)});
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (int i = 0; i < r.rows(); ++i) out[r.str(i, "name")] = {r.str(i, "reported"), r.str(i, "goal_state")};
  return out;
}

// ---- TestNode

TestNode::TestNode(const TestDir& dir, std::string name_)
    : name(std::move(name_)),
      pgdata(dir / name),
      state_dir(InstancePaths::for_pgdata(pgdata).state_dir),
      port(free_port()) {}

TestNode::~TestNode() {
  service.reset();
  retired.clear();
  kill_postmaster(pgdata);
}

void TestNode::create(const TestMonitor& m, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"create", "postgres", "--pgdata", pgdata.string(), "--pgport", std::to_string(port),
                                "--hostname", "127.0.0.1", "--monitor", m.uri(), "--name", name};
  if (!has_tls_choice(extra)) args.push_back("--ssl-self-signed");
  args.insert(args.end(), extra.begin(), extra.end());
  pgfailover_ok(args);
}

void TestNode::start(const std::map<std::string, std::string>& env) {
  // A Service kills its data directory's postmaster when destroyed: keep the
  // exited ones until the end, so a restarted keeper finds Postgres as the
  // previous one left it.
  if (service) retired.push_back(std::move(service));
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  service = std::make_unique<Service>(pgdata);
  for (const auto& [k, v] : env) unsetenv(k.c_str());
}

PgConnection TestNode::sql() const {
  return PgConnection::connect("host=" + state_dir.string() + " port=" + std::to_string(port) +
                                   " dbname=postgres connect_timeout=2",
                               "test node " + name);
}

std::string TestNode::value(const std::string& query) const { return sql().query_value(query).value_or("NULL"); }

void TestNode::eventually(const std::string& query, const std::string& want) const {
  std::string last;
  auto deadline = steady_ms() + 15000;
  while (steady_ms() < deadline) {
    try {
      last = value(query);
      if (last == want) return;
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL(name << ": " << query << " returned \"" << last << "\", not \"" << want << "\" after 15 s");
}

std::string TestNode::log() const {
  return service ? service->log() : read_file_if_exists(state_dir / "run.log").value_or("");
}

// ---- waiting

void wait_states(const TestMonitor& m, const std::map<std::string, std::string>& want, std::chrono::seconds timeout,
                 const std::vector<const TestNode*>& nodes) {
  auto deadline = steady_ms() + std::chrono::milliseconds(timeout).count();
  std::map<std::string, std::pair<std::string, std::string>> seen;
  while (true) {
    try {
      seen = m.states();
      bool ok = true;
      for (const auto& [node, state] : want) {
        auto it = seen.find(node);
        ok = ok && it != seen.end() && it->second.first == state && it->second.second == state;
      }
      if (ok) return;
    } catch (const std::exception&) {
    }
    if (steady_ms() > deadline) {
      std::string got, expected, logs;
      for (const auto& [n, s] : seen) got += n + "=" + s.first + "/" + s.second + " ";
      for (const auto& [n, s] : want) expected += n + "=" + s + " ";
      for (const auto* k : nodes) logs += "\n--- " + k->name + ":\n" + tail(k->log());
      FAIL("after " << timeout.count() << " s: wanted " << expected << "but have (reported/goal) " << got << logs
                    << "\n--- monitor:\n" << tail(m.service->log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---- TestCluster

TestCluster::TestCluster(std::string_view name, const std::vector<std::string>& node_names)
    : dir_(name), monitor_(std::make_unique<TestMonitor>(dir_)) {
  REQUIRE(!node_names.empty());
  auto& first = add_node(node_names.front());
  wait_states(*monitor_, {{first.name, "single"}}, std::chrono::seconds(60), all_nodes());
  for (size_t i = 1; i < node_names.size(); ++i) add_node(node_names[i]);
  std::map<std::string, std::string> want{{first.name, "primary"}};
  for (size_t i = 1; i < node_names.size(); ++i) want[node_names[i]] = "secondary";
  if (node_names.size() > 1) wait_states(*monitor_, want, std::chrono::seconds(60), all_nodes());
}

TestNode& TestCluster::add_node(const std::string& name, const std::vector<std::string>& extra) {
  nodes_.push_back(std::make_unique<TestNode>(dir_, name));
  auto& n = *nodes_.back();
  n.create(*monitor_, extra);
  n.start();
  return n;
}

TestNode& TestCluster::node(const std::string& name) {
  for (auto& n : nodes_) {
    if (n->name == name) return *n;
  }
  FAIL("no node " << name << " in the test cluster");
  throw std::logic_error("unreachable");
}

std::vector<const TestNode*> TestCluster::all_nodes() const {
  std::vector<const TestNode*> out;
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::string TestCluster::primary() const {
  for (const auto& [name, s] : monitor_->states()) {
    if (s.second == "primary" || s.second == "wait_primary" || s.second == "single") return name;
  }
  return "";
}

// ---- running the CLI

CommandResult pgfailover_env(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                             const std::vector<std::string>& unset, std::chrono::milliseconds timeout) {
  ProcessSpec spec;
  spec.argv.push_back(pgfailover_binary());
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env;
  spec.unset_env = unset;
  return run_command(spec, timeout);
}

}  // namespace pgf::test
