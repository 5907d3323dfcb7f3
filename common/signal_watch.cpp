#include "common/signal_watch.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.h"

namespace pgf {

namespace {
sigset_t watched() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGHUP);
  sigaddset(&s, SIGQUIT);
  return s;
}
}  // namespace

SignalWatch::SignalWatch() {
  sigset_t s = watched();
  if (sigprocmask(SIG_BLOCK, &s, nullptr) != 0) throw Error("sigprocmask: {}", errno_text(errno));
  fd_ = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) throw Error("signalfd: {}", errno_text(errno));
  // A broken pipe to a client must not kill a service.
  ::signal(SIGPIPE, SIG_IGN);
}

SignalWatch::~SignalWatch() {
  if (fd_ >= 0) ::close(fd_);
  sigset_t s = watched();
  sigprocmask(SIG_UNBLOCK, &s, nullptr);
}

std::optional<int> SignalWatch::take() {
  signalfd_siginfo info{};
  ssize_t n = ::read(fd_, &info, sizeof info);
  if (n != static_cast<ssize_t>(sizeof info)) return std::nullopt;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace pgf
