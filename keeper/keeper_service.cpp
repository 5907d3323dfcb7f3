// The keeper loop: every turn collect the facts of the local Postgres, report
// them to the monitor (node_active), and carry out the transition table's plan
// for the goal it returned. The period is keeper_poll_ms (at most 1 s); a
// NOTIFY on pgfailover_node_<id> wakes the loop at once. See docs/keeper.md.
#include "keeper/keeper_service.h"

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/instance_paths.h"
#include "common/local_postgres.h"
#include "common/log.h"
#include "common/pid_lock.h"
#include "common/signal_watch.h"
#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/monitor_client.h"
#include "keeper/node_setup.h"
#include "keeper/postgres_node.h"
#include "keeper/transition_table.h"

namespace pgf {

namespace {

// Logs a repeated failure once, then again only when it changes or every 10 s.
class RepeatFilter {
 public:
  bool should_log(const std::string& msg, std::int64_t now) {
    if (msg != last_ || now - logged_at_ >= 10000) {
      last_ = msg;
      logged_at_ = now;
      return true;
    }
    return false;
  }
  void reset() { last_.clear(); }
  bool active() const { return !last_.empty(); }

 private:
  std::string last_;
  std::int64_t logged_at_ = 0;
};

// Fault injection for tests: PGFAILOVER_FAULT_KILL_AFTER_ACTION=<action name>
// makes the keeper SIGKILL itself right after that action returned Done, i.e.
// in the middle of its transition, before the new state is recorded. The
// same as a kill -9 at the worst moment, but deterministic.
class FaultInjection : public NodeActions {
 public:
  FaultInjection(NodeActions& inner, const Logger& log) : inner_(inner), log_(log) {
    const char* env = std::getenv("PGFAILOVER_FAULT_KILL_AFTER_ACTION");
    if (!env || !*env) return;
    for (const auto& a : kActions) {
      if (a.name == env) kill_after_ = a.action;
    }
    if (!kill_after_) throw Error("PGFAILOVER_FAULT_KILL_AFTER_ACTION={} is not an action name", env);
    log_.warn("fault injection: the keeper kills itself after the action {}", env);
  }
  Progress run(Action a, const Goal& g) override {
    auto p = inner_.run(a, g);
    if (p == Progress::Done && kill_after_ == a) {
      log_.warn("fault injection: killing the keeper after {}", name(a));
      ::raise(SIGKILL);
    }
    return p;
  }

 private:
  NodeActions& inner_;
  const Logger& log_;
  std::optional<Action> kill_after_;
};

// Reports while the loop is busy in one long action (a base backup, pg_rewind,
// a checkpoint of a large cluster, a slow shutdown), so the monitor does not
// take a keeper that is working for a lost node. It repeats the facts of the
// turn's report (Postgres down stays down: the monitor's restart timeout
// still counts) and never acts on the answer. Its own monitor connection.
class Heartbeat {
 public:
  Heartbeat(const std::string& uri, const Logger& log, NodeId id)
      : monitor_(uri, log.child("heartbeat")), log_(log), id_(id), thread_([this] { loop(); }) {}
  ~Heartbeat() {
    {
      std::lock_guard lk(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  // The loop starts acting on a turn whose report was `r`.
  void busy(const NodeReport& r, std::int64_t period_ms) {
    std::lock_guard lk(mutex_);
    report_ = r;
    period_ms_ = period_ms;
    busy_since_ = steady_ms();
    busy_ = true;
  }
  void idle() {
    std::lock_guard lk(mutex_);
    busy_ = false;
  }
  std::int64_t last_contact_ms() const { return last_contact_ms_.load(); }

 private:
  void loop() {
    std::unique_lock lk(mutex_);
    std::int64_t last_sent = 0;
    while (!stop_) {
      cv_.wait_for(lk, std::chrono::milliseconds(100));
      if (stop_) break;
      auto now = steady_ms();
      if (!busy_ || now - busy_since_ < period_ms_ || now - last_sent < period_ms_) continue;
      NodeReport r = report_;
      lk.unlock();
      try {
        monitor_.node_active(id_, r);
        monitor_.take_goal_change();  // never read here: do not let them pile up
        last_contact_ms_ = wall_ms();
      } catch (const std::exception& e) {
        log_.debug("heartbeat: {}", e.what());
      }
      lk.lock();
      last_sent = steady_ms();
    }
  }

  MonitorClient monitor_;
  Logger log_;
  NodeId id_;
  std::mutex mutex_;
  std::condition_variable cv_;
  NodeReport report_;
  bool busy_ = false;
  bool stop_ = false;
  std::int64_t busy_since_ = 0;
  std::int64_t period_ms_ = 1000;
  std::atomic<std::int64_t> last_contact_ms_{0};
  std::thread thread_;  // last: starts once everything above is initialised
};

// Marks the loop busy for the heartbeat while in scope.
class BusyScope {
 public:
  BusyScope(Heartbeat& h, const NodeReport& r, std::int64_t period_ms) : h_(h) { h_.busy(r, period_ms); }
  ~BusyScope() { h_.idle(); }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;

 private:
  Heartbeat& h_;
};

class KeeperLoop {
 public:
  KeeperLoop(const InstancePaths& paths, const KeeperConfig& cfg, KeeperState& state, LogSink& sink,
             SignalWatch& signals)
      : cfg_(cfg),
        state_(state),
        log_(sink, "keeper"),
        signals_(signals),
        monitor_(monitor_conninfo(cfg, paths), log_.child("monitor")),
        node_(postgres_node_options(cfg, paths), state, log_.child("node")),
        actions_(node_, log_),
        heartbeat_(monitor_conninfo(cfg, paths), log_, state.record().node_id) {
    const auto& r = state_.record();
    last_contact_ms_ = r.last_monitor_contact_ms;
    last_standby_seen_ms_ = r.last_standby_seen_ms;
    persisted_contact_ms_ = r.last_monitor_contact_ms;
    partition_timeout_ms_ = r.network_partition_timeout_ms;
    poll_ms_ = r.keeper_poll_ms;
  }

  int run() {
    const auto& r = state_.record();
    log_.info("keeper of node {} (id {}) in formation {} started: state {}, data directory {}, monitor at {}", r.name,
              r.node_id, r.formation, name(r.current), cfg_.pgdata.string(), monitor_.endpoint());
    if (r.in_progress) {
      log_.info("resuming: the transition {} -> {} was in progress when the keeper stopped",
                name(r.in_progress->from), name(r.in_progress->to));
    }
    // Dropped before: tell the monitor once more if it still listens, then leave.
    if (r.current == NodeState::Dropped) dropped_turns_left_ = 1;
    while (true) {
      if (auto code = handle_signals()) return *code;
      auto wait_ms = turn();
      if (state_.record().current == NodeState::Dropped) {
        // Leave once the monitor has heard that the node is gone (it then
        // deletes the node), or once it no longer answers for it.
        if (dropped_reported_ || --dropped_turns_left_ <= 0) {
          log_.info("node dropped from its group: the keeper exits");
          return 0;
        }
      }
      if (auto code = wait(wait_ms)) return *code;
    }
  }

 private:
  // One turn; returns how long to wait before the next one.
  std::int64_t turn() {
    auto now = wall_ms();
    node_.supervise();
    auto facts = node_.collect_facts(known_peers());
    if (facts.standby_streaming) last_standby_seen_ms_ = now;

    NodeReport rep;
    rep.state = state_.record().current;
    rep.reached_goal_version = state_.record().current_goal_version;
    rep.pg_running = facts.pg_running;
    rep.timeline = facts.timeline;
    rep.lsn = facts.lsn;
    rep.upstream = facts.upstream;
    rep.streaming = facts.streaming;
    rep.sync = facts.sync;
    rep.peers_ready = facts.peers_ready;
    rep.replication_json = facts.replication_json;
    rep.system_identifier = facts.system_identifier;

    log_replication_change(facts);

    std::optional<Assignment> fresh;
    try {
      fresh = monitor_.node_active(state_.record().node_id, rep);
      last_contact_ms_ = wall_ms();
      if (rep.state == NodeState::Dropped) dropped_reported_ = true;
      if (monitor_errors_.active()) log_.info("reached the monitor at {} again", monitor_.endpoint());
      monitor_errors_.reset();
      assignment_ = *fresh;
      partition_timeout_ms_ = fresh->network_partition_timeout_ms;
      poll_ms_ = fresh->keeper_poll_ms;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (monitor_errors_.should_log(msg, steady_ms())) {
        log_.warn("{}; retrying in {:.1f} s", msg, period_ms() / 1000.0);
      }
    }
    persist_contacts(fresh.has_value());

    KeeperTurnFacts tf;
    if (fresh) tf.fresh_goal = fresh->goal.state;
    tf.now_ms = wall_ms();
    last_contact_ms_ = std::max(last_contact_ms_, heartbeat_.last_contact_ms());
    tf.last_monitor_contact_ms = last_contact_ms_;
    tf.last_standby_seen_ms = last_standby_seen_ms_;
    tf.network_partition_timeout_ms = partition_timeout_ms_;

    NodeState current = state_.record().current;
    TurnPlan plan;
    try {
      plan = plan_turn(current, tf);
    } catch (const std::exception& e) {
      // A pair the table does not have: refused, never guessed.
      if (plan_errors_.should_log(e.what(), steady_ms())) log_.error("{}", e.what());
      return period_ms();
    }
    plan_errors_.reset();

    Goal goal;
    if (assignment_) {
      goal = assignment_->goal;
    } else {
      // Nothing heard from the monitor since the keeper started: keep what is
      // configured rather than apply an empty goal.
      goal.state = current;
      goal.known = false;
    }
    node_.set_goal_fresh(fresh.has_value());

    switch (plan.kind) {
      case TurnPlan::Kind::Idle:
        return period_ms();
      case TurnPlan::Kind::Steady:
        try {
          BusyScope busy(heartbeat_, rep, period_ms());
          Progress p = run_transition(*plan.transition, actions_, goal);
          action_errors_.reset();
          // Holding the state the monitor assigned again (under a newer goal
          // version) counts as reaching it: say so in the next report.
          if (p == Progress::Done && fresh && fresh->goal.state == current) state_.set_goal_version(fresh->goal.version);
        } catch (const std::exception& e) {
          if (action_errors_.should_log(e.what(), steady_ms())) {
            log_.error("{} ({}): {}", name(current), plan.why, e.what());
          }
        }
        return period_ms();
      case TurnPlan::Kind::Fence:
      case TurnPlan::Kind::Transition: {
        BusyScope busy(heartbeat_, rep, period_ms());
        return transition(plan, goal, current);
      }
    }
    return period_ms();
  }

  std::int64_t transition(const TurnPlan& plan, const Goal& goal, NodeState current) {
    const auto& rec = state_.record();
    TransitionInProgress want{current, plan.next_state, 0};
    if (!rec.in_progress || rec.in_progress->from != want.from || rec.in_progress->to != want.to) {
      state_.begin_transition(current, plan.next_state, wall_ms());
    }
    if (announced_ != std::make_pair(current, plan.next_state)) {
      announced_ = {current, plan.next_state};
      started_ms_ = steady_ms();
      std::string actions;
      for (Action a : plan.transition->actions) {
        if (!actions.empty()) actions += ", ";
        actions += std::string(name(a));
      }
      if (plan.kind == TurnPlan::Kind::Fence) {
        log_.warn("{}", plan.why);
      } else {
        log_.info("{} ({})", plan.why, actions.empty() ? "no actions" : actions);
      }
    }
    Progress p;
    try {
      p = run_transition(*plan.transition, actions_, goal);
      action_errors_.reset();
    } catch (const std::exception& e) {
      if (action_errors_.should_log(e.what(), steady_ms())) {
        log_.error("{} -> {} failed: {}; retrying", name(current), name(plan.next_state), e.what());
      }
      return period_ms();
    }
    // Waiting (replay, WAL to fetch, a start): look again soon, less often
    // once it has taken a while.
    if (p == Progress::Waiting) return steady_ms() - started_ms_ < 2000 ? 100 : 500;
    // A fence is the keeper's own doing: it keeps the version it had, so the
    // monitor never takes it for the goal it assigned.
    std::uint64_t version = plan.kind == TurnPlan::Kind::Fence ? state_.record().current_goal_version : goal.version;
    state_.finish_transition(plan.next_state, version, wall_ms());
    log_.info("reached state {} in {:.2f} s", name(plan.next_state), (steady_ms() - started_ms_) / 1000.0);
    announced_.reset();
    return 0;  // report the new state at once
  }

  // One line when what this node streams from changes (not on every turn).
  void log_replication_change(const NodeFacts& f) {
    std::string now;
    if (!f.pg_running) {
      now = "Postgres is not running";
    } else if (!f.in_recovery) {
      now = "";
    } else if (f.upstream) {
      now = fmt::format("{} from node {}", f.streaming ? "streaming" : "not streaming", *f.upstream);
    } else {
      now = "standby without an upstream";
    }
    if (now != last_replication_) {
      if (!now.empty()) log_.info("{}", now);
      last_replication_ = now;
    }
  }

  std::vector<Peer> known_peers() const { return assignment_ ? assignment_->goal.peers : std::vector<Peer>{}; }

  std::int64_t period_ms() const { return std::clamp<std::int64_t>(poll_ms_, 50, 1000); }

  // Kept in keeper.db so that self-fencing after a restart counts from the last
  // contact before it. Written every few seconds: an older value only makes a
  // restarted primary fence sooner, never later.
  void persist_contacts(bool contacted) {
    const auto& r = state_.record();
    bool settings_changed = r.network_partition_timeout_ms != partition_timeout_ms_ || r.keeper_poll_ms != poll_ms_;
    bool goal_changed = contacted && assignment_ && r.last_goal != assignment_->goal.state;
    bool stale = last_contact_ms_ - persisted_contact_ms_ >= 2000 || last_standby_seen_ms_ - r.last_standby_seen_ms >= 2000;
    if (!settings_changed && !goal_changed && !stale) return;
    KeeperRecord n = r;
    n.last_monitor_contact_ms = last_contact_ms_;
    n.last_standby_seen_ms = last_standby_seen_ms_;
    n.network_partition_timeout_ms = partition_timeout_ms_;
    n.keeper_poll_ms = poll_ms_;
    if (goal_changed) {
      n.last_goal = assignment_->goal.state;
      n.last_goal_at_ms = wall_ms();
    }
    try {
      state_.save(n);
      persisted_contact_ms_ = last_contact_ms_;
    } catch (const std::exception& e) {
      log_.error("{}", e.what());
    }
  }

  // Returns an exit code when the keeper has to stop.
  std::optional<int> handle_signals() {
    while (auto sig = signals_.take()) {
      switch (*sig) {
        case SIGTERM:
        case SIGQUIT:
          log_.info("received {}: the keeper stops, Postgres keeps running", *sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
          node_.release_postgres();
          return 0;
        case SIGINT:
          log_.info("received SIGINT: stopping Postgres (fast) and the keeper");
          try {
            node_.stop_postgres();
          } catch (const std::exception& e) {
            log_.error("cannot stop Postgres: {}", e.what());
            return 1;
          }
          return 0;
        case SIGHUP:
          log_.info("received SIGHUP: nothing to reload (settings come from the monitor)");
          break;
        default:
          break;
      }
    }
    return std::nullopt;
  }

  std::optional<int> wait(std::int64_t ms) {
    if (ms <= 0) return handle_signals();
    if (monitor_.take_goal_change()) return handle_signals();
    auto deadline = steady_ms() + ms;
    while (true) {
      auto left = deadline - steady_ms();
      if (left <= 0) return std::nullopt;
      pollfd fds[2] = {{signals_.fd(), POLLIN, 0}, {monitor_.socket(), POLLIN, 0}};
      int n = fds[1].fd >= 0 ? 2 : 1;
      int rc = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(left));
      if (rc <= 0) continue;
      if (fds[0].revents) {
        if (auto code = handle_signals()) return code;
      }
      if (n == 2 && fds[1].revents) {
        // A goal changed (or the connection broke): take the next turn now.
        monitor_.take_goal_change();
        return std::nullopt;
      }
    }
  }

  const KeeperConfig& cfg_;
  KeeperState& state_;
  Logger log_;
  SignalWatch& signals_;
  MonitorClient monitor_;
  PostgresNode node_;
  FaultInjection actions_;
  Heartbeat heartbeat_;
  std::optional<Assignment> assignment_;
  std::int64_t last_contact_ms_ = 0;
  std::int64_t persisted_contact_ms_ = 0;
  std::int64_t last_standby_seen_ms_ = 0;
  std::int64_t partition_timeout_ms_ = 10000;
  std::int64_t poll_ms_ = 1000;
  std::string last_replication_ = "-";
  bool dropped_reported_ = false;
  int dropped_turns_left_ = 10;
  std::optional<std::pair<NodeState, NodeState>> announced_;
  std::int64_t started_ms_ = 0;
  RepeatFilter monitor_errors_, plan_errors_, action_errors_;
};

}  // namespace

int run_keeper(const InstancePaths& paths, const ConfigFile& config, LogSink& sink, SignalWatch& signals) {
  refuse_root("run the keeper");
  auto cfg = KeeperConfig::from_file(config);
  PidLock lock(paths.pid_file(), "data directory " + paths.pgdata.string());
  auto state = KeeperState::open(paths.keeper_db());
  KeeperLoop loop(paths, cfg, state, sink, signals);
  return loop.run();
}

}  // namespace pgf
