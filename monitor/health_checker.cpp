#include "monitor/health_checker.h"

#include <libpq-fe.h>

#include <algorithm>
#include <regex>
#include <string>

namespace pgf {

namespace {

// SQLSTATE 57P03 cannot_connect_now: starting up, shutting down, or not yet
// consistent in recovery. Like PQping's PQPING_REJECT, that is not "up".
constexpr std::string_view kCannotConnectNow = "57P03";

std::string first_line(std::string s) {
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

HealthSettings HealthSettings::from(const MonitorSettings& s) {
  HealthSettings h;
  h.period = std::max<TimeMs>(s.get("health_check_period_ms", h.period), 10);
  h.timeout = std::max<TimeMs>(s.get("health_check_timeout_ms", h.timeout), 10);
  h.failures_for_bad = static_cast<int>(std::max<std::int64_t>(s.get("health_check_retries", h.failures_for_bad), 1));
  return h;
}

struct HealthChecker::Probe {
  HealthTarget target;
  PGconn* conn = nullptr;
  short wait_for = 0;     // POLLIN or POLLOUT while a check is in flight
  int fd = -1;
  TimeMs started = 0;
  TimeMs next_due = 0;

  ~Probe() { close(); }
  void close() {
    if (conn) PQfinish(conn);
    conn = nullptr;
    fd = -1;
    wait_for = 0;
  }
  bool in_flight() const { return conn != nullptr; }
};

HealthChecker::HealthChecker(Logger log, HealthCheckLogin login) : log_(std::move(log)), login_(std::move(login)) {}
HealthChecker::~HealthChecker() = default;

void HealthChecker::set_targets(const std::vector<HealthTarget>& targets) {
  std::vector<std::unique_ptr<Probe>> next;
  for (const auto& t : targets) {
    auto it = std::find_if(probes_.begin(), probes_.end(), [&](const auto& p) { return p && p->target.id == t.id; });
    if (it != probes_.end() && (*it)->target.host == t.host && (*it)->target.port == t.port) {
      (*it)->target = t;
      next.push_back(std::move(*it));
    } else {
      auto p = std::make_unique<Probe>();
      p->target = t;
      next.push_back(std::move(p));
    }
  }
  probes_ = std::move(next);  // probes of nodes that left are closed here
}

void HealthChecker::clear() {
  probes_.clear();
  results_.clear();
}

void HealthChecker::start_due(TimeMs now) {
  for (auto& p : probes_) {
    if (p->in_flight() || now < p->next_due) continue;
    p->started = now;
    p->next_due = now + settings_.period;
    std::string port = std::to_string(p->target.port);
    // libpq counts connect_timeout in whole seconds and no less than 2; the
    // loop enforces the real timeout, this only bounds a check we forgot.
    std::string connect_timeout = std::to_string(std::max<TimeMs>(2, (settings_.timeout + 999) / 1000));
    std::vector<const char*> keys{"host", "port", "user", "dbname", "connect_timeout", "application_name", "gssencmode"};
    std::vector<const char*> values{p->target.host.c_str(), port.c_str(), "pgfailover_monitor", "postgres",
                                    connect_timeout.c_str(), "pgfailover_health_check", "disable"};
    if (!login_.sslmode.empty()) {
      keys.push_back("sslmode");
      values.push_back(login_.sslmode.c_str());
    }
    if (!login_.sslrootcert.empty()) {
      keys.push_back("sslrootcert");
      values.push_back(login_.sslrootcert.c_str());
    }
    if (login_.password) {
      keys.push_back("password");
      values.push_back(login_.password->c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    p->conn = PQconnectStartParams(keys.data(), values.data(), 0);
    if (!p->conn) {
      finish(*p, false, "out of memory");
      continue;
    }
    // The SQLSTATE of a refusal tells a live server from a dead one.
    PQsetErrorVerbosity(p->conn, PQERRORS_VERBOSE);
    if (PQstatus(p->conn) == CONNECTION_BAD) {
      finish(*p, false, first_line(PQerrorMessage(p->conn)));
      continue;
    }
    p->fd = PQsocket(p->conn);
    p->wait_for = POLLOUT;  // libpq's rule: behave as if PQconnectPoll returned PGRES_POLLING_WRITING
  }
}

void HealthChecker::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& p : probes_) {
    if (p->in_flight() && p->fd >= 0) fds.push_back({p->fd, p->wait_for, 0});
  }
}

void HealthChecker::step(Probe& p) {
  switch (PQconnectPoll(p.conn)) {
    case PGRES_POLLING_OK:
      finish(p, true, "accepts connections");
      return;
    case PGRES_POLLING_READING:
      p.wait_for = POLLIN;
      break;
    case PGRES_POLLING_WRITING:
      p.wait_for = POLLOUT;
      break;
    default: {
      std::string msg = PQerrorMessage(p.conn);
      if (PQconnectionNeedsPassword(p.conn)) {
        finish(p, true, "answers (asks for a password)");
        return;
      }
      // It answered the TLS request with "no": alive, but set up without TLS
      // while the monitor uses it. Up; said once, it is a configuration error.
      if (msg.find("server does not support SSL") != std::string::npos) {
        if (!warned_no_tls_) {
          log_.warn("node {} ({}:{}) does not offer TLS but the monitor requires it: create every node with the "
                    "monitor's TLS choice", p.target.name, p.target.host, p.target.port);
          warned_no_tls_ = true;
        }
        finish(p, true, "answers (without TLS)");
        return;
      }
      // Verbose messages read "FATAL:  28P01: password authentication failed ...".
      static const std::regex sqlstate(R"(:  ([0-9A-Z]{5}): )");
      std::smatch m;
      if (std::regex_search(msg, m, sqlstate) && m[1].str() != kCannotConnectNow) {
        finish(p, true, "answers (" + first_line(m.suffix().str()) + ")");
      } else {
        finish(p, false, first_line(msg));
      }
      return;
    }
  }
  // The socket can change when libpq moves on to the host's next address.
  p.fd = PQsocket(p.conn);
}

void HealthChecker::advance(const std::vector<pollfd>& fds, TimeMs now) {
  for (auto& p : probes_) {
    if (!p->in_flight()) continue;
    auto it = std::find_if(fds.begin(), fds.end(), [&](const pollfd& f) { return f.fd == p->fd; });
    if (it != fds.end() && it->revents != 0) step(*p);
    if (p->in_flight() && now - p->started >= settings_.timeout) {
      finish(*p, false, fmt::format("no answer within {:.1f} s", static_cast<double>(settings_.timeout) / 1000.0));
    }
  }
}

void HealthChecker::finish(Probe& p, bool up, std::string detail) {
  p.close();
  log_.debug("node {} ({}:{}): {}", p.target.name, p.target.host, p.target.port, detail);
  results_.push_back({p.target.id, up, std::move(detail)});
}

std::vector<HealthObservation> HealthChecker::take_results() {
  std::vector<HealthObservation> out;
  out.swap(results_);
  return out;
}

TimeMs HealthChecker::next_wakeup() const {
  TimeMs next = INT64_MAX;
  for (const auto& p : probes_) next = std::min(next, p->in_flight() ? p->started + settings_.timeout : p->next_due);
  return next;
}

}  // namespace pgf
