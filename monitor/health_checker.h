// Health checks of the data nodes' Postgres: one non-blocking libpq connect per
// node and period, all of them driven by the service's single poll() loop, so
// a node that does not answer never delays the checks of the others or a
// decision. A server that answers at all (even "password authentication
// failed") is up: the question is whether that Postgres runs, not whether we
// may log in.
#pragma once

#include <poll.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "monitor/group_store.h"

namespace pgf {

struct HealthSettings {
  TimeMs period = 1000;   // between the starts of two checks of one node
  TimeMs timeout = 1000;  // a check without an answer by then failed
  // Default: 2 failures a second apart, the second after at most a 1 s
  // timeout, so a dead node turns bad within 3 s.
  int failures_for_bad = 2;
  static HealthSettings from(const MonitorSettings& s);
};

// How the checks log in on the nodes: as pgfailover_monitor, with the
// monitor's TLS choice, and its password under scram-sha-256 (in memory only).
struct HealthCheckLogin {
  std::string sslmode;      // "" leaves libpq's default
  std::string sslrootcert;  // verify-full: the CA
  std::optional<std::string> password;
};

class HealthChecker {
 public:
  explicit HealthChecker(Logger log, HealthCheckLogin login = {});
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  void configure(const HealthSettings& s) { settings_ = s; }
  const HealthSettings& settings() const { return settings_; }
  // The nodes to check; checks of nodes no longer listed are abandoned.
  void set_targets(const std::vector<HealthTarget>& targets);
  // Abandons every check (this process stopped deciding).
  void clear();

  // Starts the checks that are due. `now` is steady_ms().
  void start_due(TimeMs now);
  // The sockets of checks in progress, for poll().
  void add_poll_fds(std::vector<pollfd>& fds) const;
  // Advances checks whose socket poll() reported ready, and times out the
  // ones that took too long.
  void advance(const std::vector<pollfd>& fds, TimeMs now);
  // Checks completed since the last call.
  std::vector<HealthObservation> take_results();
  // When start_due()/advance() next have something to do.
  TimeMs next_wakeup() const;

 private:
  struct Probe;
  void finish(Probe& p, bool up, std::string detail);
  void step(Probe& p);

  Logger log_;
  HealthCheckLogin login_;
  bool warned_no_tls_ = false;
  HealthSettings settings_;
  std::vector<std::unique_ptr<Probe>> probes_;  // by node id
  std::vector<HealthObservation> results_;
};

}  // namespace pgf
