#include "tests/support/harness.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/net.h"

namespace pgf::test {

std::string pgfailover_binary() { return PGFAILOVER_TEST_BINARY; }
std::string sql_dir() { return PGFAILOVER_SOURCE_SQL_DIR; }

CommandResult pgfailover(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  ProcessSpec spec;
  spec.argv.push_back(pgfailover_binary());
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  return run_command(spec, timeout);
}

CommandResult pgfailover_ok(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  auto r = pgfailover(args, timeout);
  if (!r.status.ok()) {
    std::string cmd = "pgfailover";
    for (const auto& a : args) cmd += " " + a;
    FAIL(cmd << " failed (" << r.status.describe() << ")\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  }
  return r;
}

TestDir::TestDir(std::string_view name) : dir_(std::string("pgf-") + std::string(name)) {
  if (std::getenv("PGFAILOVER_KEEP_TEST_DIRS")) dir_.keep();
}

Service::Service(const fs::path& pgdata, std::vector<std::string> extra_args) : pgdata_(pgdata) {
  auto paths = InstancePaths::for_pgdata(pgdata);
  ProcessSpec spec;
  spec.argv = {pgfailover_binary(), "run", "--pgdata", pgdata.string()};
  spec.argv.insert(spec.argv.end(), extra_args.begin(), extra_args.end());
  spec.stdout_path = (paths.state_dir / "run.log").string();
  spec.stderr_path = spec.stdout_path;
  child_ = ChildProcess::spawn(spec);
}

Service::~Service() {
  try {
    stop();
  } catch (...) {
  }
}

void Service::kill9() { child_.signal(SIGKILL), child_.wait(); }

void Service::kill9_with_postgres() {
  if (child_.valid() && child_.running()) kill9();
  kill_postmaster(pgdata_);
}

void Service::stop() {
  if (child_.valid() && child_.running()) {
    child_.signal(SIGINT);
    if (!child_.wait_for(std::chrono::seconds(30))) child_.stop(std::chrono::milliseconds(0));
  }
  kill_postmaster(pgdata_);
}

std::string Service::log() const {
  auto paths = InstancePaths::for_pgdata(pgdata_);
  return read_file_if_exists(paths.state_dir / "run.log").value_or("");
}

std::optional<int> postmaster_pid(const fs::path& pgdata) {
  auto text = read_file_if_exists(pgdata / "postmaster.pid");
  if (!text) return std::nullopt;
  int pid = std::atoi(text->c_str());
  if (pid <= 0 || !process_alive(pid)) return std::nullopt;
  return pid;
}

void kill_postmaster(const fs::path& pgdata) {
  auto pid = postmaster_pid(pgdata);
  if (!pid) return;
  // SIGKILL of the postmaster leaves its children to notice on their own; take
  // the whole process group (Postgres runs in its own) so nothing lingers.
  ::kill(-*pid, SIGKILL);
  ::kill(*pid, SIGKILL);
  auto deadline = steady_ms() + 10000;
  while (process_alive(*pid) && steady_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

std::chrono::milliseconds wait_until(const std::function<bool()>& ok, std::chrono::milliseconds timeout,
                                     const std::string& what) {
  auto start = steady_ms();
  while (true) {
    bool done = false;
    try {
      done = ok();
    } catch (const std::exception&) {
      done = false;
    }
    if (done) return std::chrono::milliseconds(steady_ms() - start);
    if (steady_ms() - start > timeout.count()) FAIL("timed out after " << timeout.count() / 1000.0 << " s waiting for " << what);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int free_port() { return find_free_port("127.0.0.1"); }

}  // namespace pgf::test
