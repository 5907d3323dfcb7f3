// The decider: exactly one among the `run` processes that share a monitor
// database. It holds a session-level advisory lock on one dedicated session and
// makes every write (goals, events, health) through that same session, so the
// moment the session dies, the lock is gone and so is any ability to write:
// another process may take over without two of them ever writing at once.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/log.h"
#include "monitor/group_store.h"

namespace pgf {

class PgConnection;

class Decider {
 public:
  // `conninfo`: the monitor database; `where` describes it for messages (no secrets).
  Decider(std::string conninfo, std::string where, Logger log);
  ~Decider();
  Decider(const Decider&) = delete;
  Decider& operator=(const Decider&) = delete;

  bool active() const { return active_; }
  // Connects if needed and tries to take the lock; true while this process decides.
  bool try_acquire();
  // Stops deciding and drops the session (and with it the lock). `failure`:
  // it was not asked for, so it is logged as an error.
  void resign(std::string_view why, bool failure = true);

  // The session's socket while active (notifications arrive there), else -1.
  int socket() const;
  // Reads pending notifications: each names a group to decide.
  void collect_requests();
  void request_all() { all_requested_ = true; }
  // Decides every requested group, each in its own transaction.
  void decide_requested();

  // Reads the monitor settings; also proves the session is alive.
  std::optional<MonitorSettings> settings();
  std::optional<std::vector<HealthTarget>> health_targets();
  // Records health checks and logs each change of health with `details`.
  void record_health(const std::vector<HealthObservation>& checks, int failures_for_bad);

  std::int64_t ms_since_last_query() const;

 private:
  // Runs `f` on the session; a lost connection makes this process resign.
  template <typename F>
  bool on_session(const char* what, F&& f);
  // Returns true if the decision changed something (worth deciding again).
  bool decide_group(const GroupKey& key);
  void report_group_error(const GroupKey& key, const std::string& message);

  std::string conninfo_;
  std::string where_;
  Logger log_;
  std::unique_ptr<PgConnection> session_;
  bool active_ = false;
  TimeMs started_at_ = 0;  // database clock, when this process became the decider
  std::set<GroupKey> requested_;
  bool all_requested_ = false;
  std::int64_t last_query_at_ = 0;  // steady clock
  std::string last_connect_error_;
  std::map<GroupKey, std::pair<std::string, std::int64_t>> group_errors_;  // last message, when logged
};

}  // namespace pgf
