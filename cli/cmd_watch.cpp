// `pgfailover watch`: the state table and the latest events, redrawn when the
// monitor writes an event (LISTEN pgfailover_events) and every --interval.
// On a terminal it takes the screen and quits on q or Ctrl-C; otherwise it
// prints one snapshot each time what it shows changes, for logs and tests.
#include <CLI/CLI.hpp>

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli.h"
#include "cli/command_options.h"
#include "cli/monitor_access.h"
#include "cli/output.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/signal_watch.h"

namespace pgf {

namespace {

struct WatchOptions {
  MonitorOptions monitor;
  int events = 8;
  int interval_ms = 1000;
  int count = 0;
};

// Keys without Enter and without echo while watching; restored on every way out.
class RawKeyboard {
 public:
  RawKeyboard() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // ISIG stays: Ctrl-C is a signal we watch
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawKeyboard() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawKeyboard(const RawKeyboard&) = delete;
  RawKeyboard& operator=(const RawKeyboard&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// The alternate screen, so the operator's scrollback is there again after q.
class FullScreen {
 public:
  FullScreen() { std::cout << "\x1b[?1049h\x1b[?25l" << std::flush; }
  ~FullScreen() { std::cout << "\x1b[?25h\x1b[?1049l" << std::flush; }
  FullScreen(const FullScreen&) = delete;
  FullScreen& operator=(const FullScreen&) = delete;
};

std::string now_text() {
  auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
  return buf;
}

// A terminal wraps long lines and scrolls the table away: cut each line to
// the terminal's width instead (long event reasons lose their end).
std::string fit_to_terminal(const std::string& text) {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return text;
  std::string out;
  size_t column = 0;
  for (char c : text) {
    if (c == '\n') {
      column = 0;
      out += c;
      continue;
    }
    bool starts_character = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts_character) ++column;
    if (column <= ws.ws_col) out += c;
  }
  return out;
}

class WatchView {
 public:
  WatchView(const WatchOptions& o, MonitorTarget target)
      : o_(o), target_(std::move(target)), formation_(resolve_formation(o.monitor.formation, target_.local)) {}

  int socket() const { return api_ ? api_->socket() : -1; }

  // What the screen shows, without a clock: equal text means nothing changed.
  std::string snapshot() {
    try {
      if (!api_) {
        api_.emplace(MonitorApi::connect(target_));
        api_->listen_events();
      }
      auto nodes = api_->current_state(formation_);
      auto events = api_->last_events(formation_, o_.events);
      return "Formation \"" + formation_ + "\" on monitor " + target_.endpoint + "\n\n" + render_state_table(nodes) +
             "\nLatest events\n" + render_events_table(events);
    } catch (const PgError& e) {
      // Bad input (unknown formation: P0002, 22023) will not get better by
      // watching; anything else (a timeout, a restarting monitor) may.
      if (e.sqlstate() == "P0002" || e.sqlstate() == "22023") throw;
      api_.reset();
      return "Formation \"" + formation_ + "\": " + e.what() + " (retrying)\n";
    } catch (const Error& e) {
      api_.reset();
      return "Formation \"" + formation_ + "\": " + e.what() + " (retrying)\n";
    }
  }

  void consume_notifications() {
    if (!api_) return;
    try {
      api_->wait_for_events(std::chrono::milliseconds(0));
    } catch (const Error&) {
      api_.reset();
    }
  }

 private:
  const WatchOptions& o_;
  MonitorTarget target_;
  std::string formation_;
  std::optional<MonitorApi> api_;
};

void run_watch(const WatchOptions& o) {
  SignalWatch signals;  // Ctrl-C and SIGTERM end the loop cleanly (terminal restored)
  WatchView view(o, resolve_monitor(o.monitor.where));
  bool tty = isatty(STDOUT_FILENO);
  std::optional<FullScreen> screen;
  std::optional<RawKeyboard> keyboard;
  if (tty) {
    screen.emplace();
    keyboard.emplace();
  }
  std::string shown;
  int printed = 0;
  auto last_draw = steady_ms() - o.interval_ms;
  while (true) {
    auto text = view.snapshot();
    if (tty) {
      // Redrawn on every turn so lag and the clock stay current.
      std::cout << "\x1b[H\x1b[2J" << fit_to_terminal(text) << "\n" << now_text() << "  q: quit" << std::flush;
      last_draw = steady_ms();
    } else if (text != shown) {
      std::cout << "--- " << now_text() << "\n" << text << std::flush;
      shown = text;
      if (o.count > 0 && ++printed >= o.count) return;
    }
    // Wait for an event, a key, a signal or the next refresh.
    pollfd fds[3] = {{signals.fd(), POLLIN, 0}, {view.socket(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (keyboard && keyboard->active()) fds[2].fd = STDIN_FILENO;
    auto wait = std::max<std::int64_t>(0, last_draw + o.interval_ms - steady_ms());
    if (!tty) wait = o.interval_ms;
    ::poll(fds, 3, static_cast<int>(wait));
    if (fds[0].revents & POLLIN) {
      signals.take();
      return;
    }
    if (fds[2].revents & POLLIN) {
      char key = 0;
      if (::read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q' || key == 3)) return;
    }
    if (fds[1].revents) view.consume_notifications();
  }
}

}  // namespace

void add_watch_command(CLI::App& app, CliEnv&) {
  auto o = std::make_shared<WatchOptions>();
  auto* cmd = app.add_subcommand("watch", "Live view of the state and the latest events (q or Ctrl-C quits)");
  add_formation_options(cmd, o->monitor);
  cmd->add_option("--events", o->events, "How many of the latest events to show (default 8)")->check(CLI::Range(0, 1000));
  cmd->add_option("--interval", o->interval_ms, "Refresh at least every this many milliseconds (default 1000)")
      ->check(CLI::Range(50, 600000));
  cmd->add_option("--count", o->count,
                  "When the output is not a terminal: exit after this many snapshots (default 0: until stopped)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(std::string(kMonitorHelp) +
              "Redrawn as soon as the monitor writes an event. When the output is not a terminal, one snapshot\n"
              "is printed per change.\nExample:\n  pgfailover watch --pgdata /var/lib/postgresql/15/main");
  cmd->callback([o] { run_watch(*o); });
}

}  // namespace pgf
