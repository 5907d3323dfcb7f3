// Child processes with RAII: a ChildProcess that is still running when it goes
// out of scope is killed and reaped, so no test or command leaves one behind.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgf {

struct ProcessSpec {
  std::vector<std::string> argv;                 // argv[0] is a path or a name found in PATH
  std::map<std::string, std::string> env;        // added to (or overriding) the inherited environment
  std::vector<std::string> unset_env;            // removed from the inherited environment
  std::optional<std::string> cwd;
  std::optional<std::string> run_as_user;        // needs root: setgid/initgroups/setuid before exec
  std::optional<std::string> stdout_path;        // append to this file; default: inherit
  std::optional<std::string> stderr_path;        // append to this file; default: inherit
  bool stdin_null = true;
  bool new_process_group = false;                // so a whole tree can be signalled
  // The child gets this signal when the spawning thread exits (prctl PR_SET_PDEATHSIG),
  // so it cannot outlive a crashed parent. 0: off.
  int parent_death_signal = 0;
  // A network namespace to enter (setns) before dropping to run_as_user and
  // exec'ing, e.g. "/run/netns/NAME": the child is the program itself (not
  // `ip netns exec`), so its PID is the one to signal. Needs CAP_SYS_ADMIN.
  // Empty: stay in the parent's namespace.
  std::optional<std::string> network_namespace;
};

struct ExitStatus {
  int code = -1;    // exit code, or -1 when killed by a signal
  int signal = 0;   // the signal that killed it, or 0
  bool ok() const { return code == 0; }
  std::string describe() const;
};

class ChildProcess {
 public:
  static ChildProcess spawn(const ProcessSpec& spec);

  ChildProcess() = default;
  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // SIGKILL and reap if still running

  int pid() const { return pid_; }
  bool valid() const { return pid_ > 0; }
  // Non-blocking: true if the child has not exited yet.
  bool running();
  std::optional<ExitStatus> exit_status() const { return status_; }
  // Waits up to `timeout`; nullopt if still running.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  ExitStatus wait();
  void signal(int sig);
  // SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
  ExitStatus stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Forget the child without killing it (it keeps running, unreaped by us).
  int release();

 private:
  explicit ChildProcess(int pid) : pid_(pid) {}
  int pid_ = -1;
  std::optional<ExitStatus> status_;
};

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs a command to completion, capturing stdout and stderr. Throws pgf::Error
// if it cannot start or runs longer than `timeout` (the child is killed).
CommandResult run_command(const ProcessSpec& spec, std::chrono::milliseconds timeout = std::chrono::minutes(10));

// Like run_command but throws pgf::Error("<what> failed: <exit>; <last stderr line>") unless it exits 0.
CommandResult run_checked(const ProcessSpec& spec, const std::string& what,
                          std::chrono::milliseconds timeout = std::chrono::minutes(10));

// True if a process with this pid exists (kill(pid, 0)), zombies included.
bool process_exists(int pid);
// Exists and has not exited: a zombie (exited, not yet reaped) is not alive.
bool process_alive(int pid);

// The user this process runs as, and whether it is root.
std::string current_user_name();
bool running_as_root();

}  // namespace pgf
