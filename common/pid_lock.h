// One running pgfailover per data directory: an flock()ed pid file. The lock
// dies with the process (even on kill -9), so a stale file never blocks a restart.
#pragma once

#include <optional>

#include "common/fs.h"

namespace pgf {

class PidLock {
 public:
  // Takes the lock or throws "another pgfailover (pid N) is already running for <what>".
  PidLock(const fs::path& pid_file, std::string_view what);
  ~PidLock();
  PidLock(const PidLock&) = delete;
  PidLock& operator=(const PidLock&) = delete;

  // The pid holding the lock on `pid_file`, if any process holds it.
  static std::optional<int> holder(const fs::path& pid_file);

 private:
  fs::path path_;
  int fd_ = -1;
};

}  // namespace pgf
