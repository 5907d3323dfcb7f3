// Shared by integration and scenario tests: the pgfailover binary, per-test
// directories, services started in the background and always stopped by PID,
// and polling with a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/process.h"

namespace pgf::test {

// The pgfailover binary built with the tests.
std::string pgfailover_binary();
// The repository's sql/ folder.
std::string sql_dir();

// Runs `pgfailover args...` to completion (as the current user).
CommandResult pgfailover(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));
// Same, but fails the test with its output unless it exits 0.
CommandResult pgfailover_ok(const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout = std::chrono::seconds(120));

// A per-test directory, removed at the end unless PGFAILOVER_KEEP_TEST_DIRS is set.
class TestDir {
 public:
  explicit TestDir(std::string_view name);
  const fs::path& path() const { return dir_.path(); }
  fs::path operator/(std::string_view p) const { return dir_ / p; }

 private:
  TempDir dir_;
};

// `pgfailover run --pgdata DIR` in the background, its output in <state dir>/run.log.
// Stopping (or destruction) sends SIGINT so Postgres stops too, waits, and
// kills by PID whatever is left: the service and the postmaster it ran.
class Service {
 public:
  Service(const fs::path& pgdata, std::vector<std::string> extra_args = {});
  Service(Service&&) = default;
  Service& operator=(Service&&) = default;
  ~Service();
  int pid() const { return child_.pid(); }
  bool running() { return child_.running(); }
  void kill9();              // the service only; its Postgres keeps running
  void kill9_with_postgres();  // the whole host as far as this node goes
  void stop();               // SIGINT, wait, then kill what is left
  std::string log() const;   // the service's output so far
  const fs::path& pgdata() const { return pgdata_; }

 private:
  fs::path pgdata_;
  ChildProcess child_;
};

// The pid of the postmaster running on a data directory, if any.
std::optional<int> postmaster_pid(const fs::path& pgdata);
// Kills a postmaster (and its children) by PID with SIGKILL and waits for it.
void kill_postmaster(const fs::path& pgdata);

// Polls `ok` every 50 ms until it returns true or `timeout` passes; on timeout
// fails with `what`. Returns the time it took.
std::chrono::milliseconds wait_until(const std::function<bool()>& ok, std::chrono::milliseconds timeout,
                                     const std::string& what);

// A free TCP port on 127.0.0.1.
int free_port();

}  // namespace pgf::test
