#include "common/pid_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "common/error.h"

namespace pgf {

namespace {
std::optional<int> read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return std::nullopt;
  int pid = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, pid);
  if (ec != std::errc() || pid <= 0) return std::nullopt;
  return pid;
}
}  // namespace

PidLock::PidLock(const fs::path& pid_file, std::string_view what) : path_(pid_file) {
  fd_ = ::open(pid_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error("cannot open {}: {}", pid_file.string(), errno_text(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    auto pid = read_pid(fd_);
    ::close(fd_);
    fd_ = -1;
    throw Error("another pgfailover (pid {}) is already running for {}", pid ? std::to_string(*pid) : "unknown", what);
  }
  std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    throw Error("cannot write {}: {}", pid_file.string(), errno_text(errno));
  }
}

PidLock::~PidLock() {
  if (fd_ < 0) return;
  (void)!::ftruncate(fd_, 0);
  ::close(fd_);  // releases the lock
}

std::optional<int> PidLock::holder(const fs::path& pid_file) {
  int fd = ::open(pid_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<int> pid;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) pid = read_pid(fd);
  ::close(fd);
  return pid;
}

}  // namespace pgf
