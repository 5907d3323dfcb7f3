#include "common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <fmt/format.h>
#include <thread>

#include "common/clock.h"
#include "common/error.h"

extern char** environ;

namespace pgf {

std::string ExitStatus::describe() const {
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, strsignal(signal));
  return fmt::format("exit code {}", code);
}

namespace {

ExitStatus decode(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

struct UserIds {
  uid_t uid;
  gid_t gid;
  std::string name;
  std::string home;
};

UserIds lookup_user(const std::string& user) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    throw Error("unknown user \"{}\"", user);
  }
  return {pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/"};
}

// Only async-signal-safe calls between fork and exec: report failures through
// the pipe and _exit.
[[noreturn]] void child_fail(int fd, const char* what) {
  int err = errno;
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  if (n > 0) (void)!write(fd, msg, static_cast<size_t>(n));
  _exit(127);
}

int open_append(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640); }

}  // namespace

ChildProcess ChildProcess::spawn(const ProcessSpec& spec) {
  if (spec.argv.empty()) throw Error("cannot start a process without a command");

  std::optional<UserIds> user;
  if (spec.run_as_user) user = lookup_user(*spec.run_as_user);

  // Build everything before fork: the child may only call async-signal-safe functions.
  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (user) {
    env_map["HOME"] = user->home;
    env_map["USER"] = user->name;
    env_map["LOGNAME"] = user->name;
  }
  for (const auto& k : spec.unset_env) env_map.erase(k);
  for (const auto& [k, v] : spec.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_fd = -1, err_fd = -1;
  if (spec.stdout_path && (out_fd = open_append(*spec.stdout_path)) < 0) {
    throw Error("cannot open {} for {}: {}", *spec.stdout_path, spec.argv[0], errno_text(errno));
  }
  if (spec.stderr_path && (err_fd = open_append(*spec.stderr_path)) < 0) {
    int e = errno;
    if (out_fd >= 0) ::close(out_fd);
    throw Error("cannot open {} for {}: {}", *spec.stderr_path, spec.argv[0], errno_text(e));
  }
  if (user) {
    // The log files must stay writable by the user the child becomes.
    if (out_fd >= 0) (void)!fchown(out_fd, user->uid, user->gid);
    if (err_fd >= 0) (void)!fchown(err_fd, user->uid, user->gid);
  }

  const char* netns_path =
      spec.network_namespace && !spec.network_namespace->empty() ? spec.network_namespace->c_str() : nullptr;

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) throw Error("pipe: {}", errno_text(errno));
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    throw Error("cannot start {}: fork: {}", spec.argv[0], errno_text(e));
  }
  if (pid == 0) {
    int wfd = status_pipe[1];
    ::close(status_pipe[0]);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);  // exec'd programs expect no blocked signals
    if (spec.parent_death_signal != 0) {
      if (prctl(PR_SET_PDEATHSIG, spec.parent_death_signal) != 0) child_fail(wfd, "prctl");
      if (getppid() != parent) _exit(128 + spec.parent_death_signal);  // parent already gone
    }
    if (spec.new_process_group) setpgid(0, 0);
    if (spec.stdin_null) {
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) {
        dup2(devnull, 0);
        ::close(devnull);
      }
    }
    if (out_fd >= 0 && dup2(out_fd, 1) < 0) child_fail(wfd, "dup2 stdout");
    if (err_fd >= 0 && dup2(err_fd, 2) < 0) child_fail(wfd, "dup2 stderr");
    if (netns_path) {
      // Before the credentials change: entering a namespace needs CAP_SYS_ADMIN.
      int ns = ::open(netns_path, O_RDONLY | O_CLOEXEC);
      if (ns < 0) child_fail(wfd, "open network namespace");
      if (setns(ns, CLONE_NEWNET) != 0) child_fail(wfd, "setns");
      ::close(ns);
    }
    if (user) {
      if (setgid(user->gid) != 0) child_fail(wfd, "setgid");
      if (initgroups(user->name.c_str(), user->gid) != 0) child_fail(wfd, "initgroups");
      if (setuid(user->uid) != 0) child_fail(wfd, "setuid");
      // The death signal is cleared by a credential change; set it again.
      if (spec.parent_death_signal != 0) prctl(PR_SET_PDEATHSIG, spec.parent_death_signal);
    }
    if (spec.cwd && chdir(spec.cwd->c_str()) != 0) child_fail(wfd, "chdir");
    execvpe(argv[0], argv.data(), envp.data());
    child_fail(wfd, "exec");
  }

  ::close(status_pipe[1]);
  if (out_fd >= 0) ::close(out_fd);
  if (err_fd >= 0) ::close(err_fd);
  char msg[256];
  ssize_t n;
  do {
    n = read(status_pipe[0], msg, sizeof msg - 1);
  } while (n < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  ChildProcess child(pid);
  if (n > 0) {
    msg[n] = '\0';
    child.wait();
    throw Error("cannot start {}: {}", spec.argv[0], msg);
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !status_) stop(std::chrono::milliseconds(0));
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int ws;
    while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0 || status_) return false;
  int ws;
  pid_t r = waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) {
    status_ = decode(ws);
    return false;
  }
  return r == 0;
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  auto deadline = steady_ms() + timeout.count();
  int sleep_ms = 1;
  while (running()) {
    if (steady_ms() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    sleep_ms = std::min(sleep_ms * 2, 50);
  }
  return status_;
}

ExitStatus ChildProcess::wait() {
  if (pid_ <= 0) throw Error("no process to wait for");
  if (status_) return *status_;
  int ws;
  pid_t r;
  do {
    r = waitpid(pid_, &ws, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) throw Error("waitpid({}): {}", pid_, errno_text(errno));
  status_ = decode(ws);
  return *status_;
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

ExitStatus ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) throw Error("no process to stop");
  if (!running()) return *status_;
  ::kill(pid_, SIGTERM);
  if (auto s = wait_for(grace)) return *s;
  ::kill(pid_, SIGKILL);
  return wait();
}

int ChildProcess::release() {
  int p = pid_;
  pid_ = -1;
  return p;
}

CommandResult run_command(const ProcessSpec& spec_in, std::chrono::milliseconds timeout) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw Error("pipe: {}", errno_text(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw Error("pipe: {}", errno_text(errno));
  }
  ProcessSpec spec = spec_in;
  spec.stdout_path = fmt::format("/dev/fd/{}", out_pipe[1]);
  spec.stderr_path = fmt::format("/dev/fd/{}", err_pipe[1]);
  ChildProcess child;
  try {
    child = ChildProcess::spawn(spec);
  } catch (...) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw;
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  auto deadline = steady_ms() + timeout.count();
  char buf[8192];
  while (open_fds > 0) {
    auto left = deadline - steady_ms();
    if (left <= 0) {
      ::close(out_pipe[0]);
      ::close(err_pipe[0]);
      child.stop(std::chrono::milliseconds(100));
      throw Error("{} did not finish within {} s", spec.argv[0], timeout.count() / 1000.0);
    }
    int rc = ::poll(fds, 2, static_cast<int>(std::min<std::int64_t>(left, 1000)));
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (n < 0 && errno != EINTR)) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  auto left = std::max<std::int64_t>(deadline - steady_ms(), 1000);
  auto st = child.wait_for(std::chrono::milliseconds(left));
  if (!st) {
    child.stop(std::chrono::milliseconds(100));
    throw Error("{} did not exit within {} s", spec.argv[0], timeout.count() / 1000.0);
  }
  result.status = *st;
  return result;
}

CommandResult run_checked(const ProcessSpec& spec, const std::string& what, std::chrono::milliseconds timeout) {
  auto r = run_command(spec, timeout);
  if (!r.status.ok()) {
    std::string tail = r.err.empty() ? r.out : r.err;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
    auto nl = tail.rfind('\n');
    // The last lines carry the reason; keep them short and on one line.
    std::string last = nl == std::string::npos ? tail : tail.substr(tail.rfind('\n', nl > 0 ? nl - 1 : 0) + 1);
    for (auto& c : last) {
      if (c == '\n') c = ' ';
    }
    throw Error("{} failed ({}): {}", what, r.status.describe(), last.empty() ? "no output" : last);
  }
  return r;
}

bool process_exists(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

bool process_alive(int pid) {
  if (!process_exists(pid)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto rp = text.rfind(')');
  return !(rp != std::string::npos && rp + 2 < text.size() && text[rp + 2] == 'Z');
}

std::string current_user_name() {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(geteuid(), &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::to_string(geteuid());
  return pw.pw_name;
}

bool running_as_root() { return geteuid() == 0; }

}  // namespace pgf
