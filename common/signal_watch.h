// Termination and reload signals as a file descriptor (signalfd), so service
// loops can wait on sockets and signals in one poll() and no handler touches
// shared state. Create it in main() before any thread starts.
#pragma once

#include <optional>

namespace pgf {

class SignalWatch {
 public:
  SignalWatch();  // blocks SIGTERM, SIGINT, SIGHUP, SIGQUIT and delivers them here
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  int fd() const { return fd_; }
  // A pending signal number, without blocking.
  std::optional<int> take();

 private:
  int fd_ = -1;
};

}  // namespace pgf
