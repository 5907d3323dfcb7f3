#include "tests/model/world.h"

#include <algorithm>
#include <fmt/format.h>

#include "common/error.h"

namespace pgf::model {

namespace {

constexpr TimeMs kNow = 1'000'000;
constexpr TimeMs kTick = 1000;
constexpr std::uint8_t kMarkerBase = 100;

NodeId id_of(int i) { return i + 1; }
int index_of(NodeId id) { return static_cast<int>(id) - 1; }

std::uint8_t bump(std::uint8_t age) {
  if (age == kNever) return kNever;
  return static_cast<std::uint8_t>(std::min<int>(age + 1, kAgeCap));
}

TimeMs at_age(std::uint8_t age) { return kNow - static_cast<TimeMs>(age) * kTick; }

bool is_prefix(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::uint8_t timeline_of(const std::vector<std::uint8_t>& wal) {
  return static_cast<std::uint8_t>(1 + std::count_if(wal.begin(), wal.end(), [](auto e) { return e >= kMarkerBase; }));
}

bool connected(const World& w, int a, int b) {
  const auto& x = w.nodes[a];
  const auto& y = w.nodes[b];
  return a != b && x.host_up && y.host_up && !x.gone && !y.gone && w.link[a][b];
}

// s streams from u right now: configured for it, both up, linked, histories compatible.
bool streams_from(const World& w, int s, int u) {
  const auto& x = w.nodes[s];
  if (!x.pg.running || !x.pg.standby || x.pg.upstream != u || u < 0) return false;
  const auto& up = w.nodes[u];
  return up.pg.running && connected(w, s, u) && is_prefix(x.pg.wal, up.pg.wal);
}

}  // namespace

Sync Sync::of(const SyncConfig& c) {
  Sync s;
  s.k = static_cast<std::uint8_t>(c.num_sync);
  for (NodeId id : c.standbys) s.mask |= static_cast<std::uint8_t>(1u << index_of(id));
  return s;
}

SyncConfig Sync::config() const {
  std::vector<NodeId> ids;
  for (int j = 0; j < kMaxNodes; ++j) {
    if (mask & (1u << j)) ids.push_back(id_of(j));
  }
  return SyncConfig::any(k, std::move(ids));
}

Goal GoalMemo::goal() const {
  Goal g;
  g.state = state;
  g.sync = sync.config();
  if (upstream >= 0) g.upstream = Peer{id_of(upstream), "", "", 0};
  if (state == NodeState::FastForward) g.target_lsn = target_lsn;
  return g;  // peers: the simulated Postgres needs none
}

DecisionSettings model_settings(int number_sync_standbys) {
  DecisionSettings s;
  s.number_sync_standbys = number_sync_standbys;
  s.node_lost_timeout = 1500;          // 2 ticks without a report
  s.postgres_restart_timeout = 2500;   // 3 ticks
  s.standby_stream_timeout = 1500;     // 2 ticks
  // Longer than detection plus election, as in production (10 s against ~3 s):
  // otherwise the old primary would always fence itself before a promotion and
  // the model could not tell whether the monitor's own proofs (I3) are needed.
  s.network_partition_timeout = 5500;  // 6 ticks
  s.startup_grace = 1000;              // 1 tick
  s.catchup_lag_bytes = 0;             // LSNs are write counts here: caught up means equal
  return s;
}

World initial_world(const Limits& limits) {
  World w;
  w.n = limits.nodes;
  for (int i = 0; i < w.n; ++i) {
    auto& node = w.nodes[i];
    node.rec.present = true;
    node.rec.priority = (limits.priority_zero_node && i == w.n - 1) ? 0 : 50;
    for (int j = 0; j < w.n; ++j) w.link[i][j] = i != j;
  }
  return w;
}

World::Hash World::hash() const {
  // The fields that matter go into a byte buffer; it is hashed 8 bytes at a
  // time with two independent mixes (128 bits: collisions are out of reach).
  std::uint8_t buf[512];
  size_t len = 0;
  auto put = [&](int v) { buf[len++] = static_cast<std::uint8_t>(v); };
  auto put_sync = [&](const Sync& c) {
    put(c.k);
    put(c.mask);
  };
  put(n);
  for (int i = 0; i < n; ++i) {
    const auto& x = nodes[i];
    put(x.gone);
    put(x.host_up);
    put(x.link_monitor);
    put(x.keeper_alive);
    put(static_cast<int>(x.current));
    put(x.current_version);
    put(x.last_goal ? static_cast<int>(x.last_goal->state) : 0xfe);
    if (x.last_goal) {
      put(x.last_goal->version);
      put_sync(x.last_goal->sync);
      put(x.last_goal->upstream);
      put(x.last_goal->target_lsn);
    }
    put(x.alone_age);
    put(x.pg.exists);
    put(x.pg.running);
    put(x.pg.standby);
    put(x.pg.access_ready);
    put(x.pg.upstream);
    put_sync(x.pg.sync);
    put(static_cast<int>(x.pg.wal.size()));
    for (auto e : x.pg.wal) put(e);
    const auto& r = x.rec;
    put(r.present);
    put(static_cast<int>(r.goal));
    put(r.goal_version);
    put(r.reported_goal_version);
    put_sync(r.assigned_sync);
    put(r.assigned_upstream);
    put(r.target_lsn);
    put(r.may_write);
    put(r.has_report);
    put(static_cast<int>(r.reported));
    put(r.report_age);
    put(r.pg_running);
    put(r.pg_down_age);
    put(r.lsn);
    put(r.timeline);
    put(r.reported_upstream);
    put(r.streaming);
    put(r.streaming_age);
    put_sync(r.reported_sync);
    put(r.peers_ready);
    put(static_cast<int>(r.health));
    put(r.health_age);
    put(r.maintenance_requested);
    put(r.drop_requested);
    put(r.priority);
    put(r.quorum);
    for (int j = 0; j < n; ++j) put(link[i][j]);
  }
  put(monitor_up);
  put(monitor_age);
  put(phase);
  put(switchover ? static_cast<int>(switchover->target.value_or(0)) : 0xfe);
  put(last_primary);
  put(next_write);
  put(acked);
  put(writes);
  put(operator_actions);
  put(faults);
  put(interruptions);
  Hash h{0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL};
  for (size_t i = 0; i < len; i += 8) {
    std::uint64_t word = 0;
    for (size_t k = 0; k < 8 && i + k < len; ++k) word |= static_cast<std::uint64_t>(buf[i + k]) << (8 * k);
    h.a = (h.a ^ word) * 0xff51afd7ed558ccdULL;
    h.a ^= h.a >> 33;
    h.b = (h.b + word) * 0xc4ceb9fe1a85ec53ULL;
    h.b ^= h.b >> 29;
  }
  h.a ^= len;
  return h;
}

// ---- Postgres

void replicate(World& w) {
  // Streaming is instantaneous here; repeat for cascades (fast_forward streams
  // from another standby).
  for (bool changed = true; changed;) {
    changed = false;
    for (int s = 0; s < w.n; ++s) {
      auto& x = w.nodes[s];
      int u = x.pg.upstream;
      if (!streams_from(w, s, u)) continue;
      if (x.pg.wal.size() < w.nodes[u].pg.wal.size()) {
        x.pg.wal = w.nodes[u].pg.wal;
        changed = true;
      }
    }
  }
}

bool can_acknowledge(const World& w, int i) {
  const auto& x = w.nodes[i];
  if (x.gone || !x.host_up || !x.pg.running || x.pg.standby) return false;
  if (x.pg.sync.k == 0) return true;
  int acks = 0;
  for (int m = 0; m < w.n; ++m) {
    if ((x.pg.sync.mask & (1u << m)) && streams_from(w, m, i)) ++acks;
  }
  return acks >= x.pg.sync.k;
}

void check_state(const World& w, Violations& v) {
  int acking = 0;
  for (int i = 0; i < w.n; ++i) acking += can_acknowledge(w, i) ? 1 : 0;
  if (acking > 1) v.push_back("split brain: two nodes can acknowledge writes");
  int assigned = 0;
  for (int i = 0; i < w.n; ++i) {
    const auto& r = w.nodes[i].rec;
    if (r.present && accepts_writes(r.goal)) ++assigned;
  }
  if (assigned > 1) v.push_back("I1: two nodes are assigned a writable state");
}

// ---- the monitor

namespace {

GroupSnapshot snapshot(const World& w) {
  GroupSnapshot g;
  g.formation = "default";
  g.monitor_started_at = at_age(w.monitor_age);
  if (w.last_primary >= 0) g.last_primary = id_of(w.last_primary);
  g.switchover = w.switchover;
  for (int i = 0; i < w.n; ++i) {
    const auto& r = w.nodes[i].rec;
    if (!r.present) continue;
    NodeSnapshot s;
    s.id = id_of(i);
    s.name = fmt::format("n{}", i + 1);
    s.host = "10.0.0." + std::to_string(i + 1);
    s.candidate_priority = r.priority;
    s.replication_quorum = r.quorum;
    s.goal = r.goal;
    s.goal_version = r.goal_version;
    s.reported_goal_version = r.reported_goal_version;
    s.assigned_sync = r.assigned_sync.config();
    if (r.assigned_upstream >= 0) s.assigned_upstream = id_of(r.assigned_upstream);
    if (r.goal == NodeState::FastForward) s.assigned_target_lsn = r.target_lsn;
    s.may_write = r.may_write;
    if (r.has_report) {
      s.reported = r.reported;
      s.last_report_at = at_age(r.report_age);
    }
    s.pg_running = r.pg_running;
    if (r.pg_down_age != kNever) s.pg_down_since = at_age(r.pg_down_age);
    s.lsn = r.lsn;
    s.timeline = r.timeline;
    if (r.reported_upstream >= 0) s.reported_upstream = id_of(r.reported_upstream);
    s.streaming = r.streaming;
    if (r.streaming_age != kNever) s.last_streaming_at = at_age(r.streaming_age);
    s.reported_sync = r.reported_sync.config();
    for (int j = 0; j < w.n; ++j) {
      if (r.peers_ready & (1u << j)) s.peers_ready.push_back(id_of(j));
    }
    s.health = r.health;
    s.health_since = at_age(r.health_age);
    s.maintenance_requested = r.maintenance_requested;
    s.drop_requested = r.drop_requested;
    g.nodes.push_back(std::move(s));
  }
  return g;
}

}  // namespace

void monitor_turn(World& w, const DecisionSettings& s, Violations& v, Coverage* cov) {
  if (!w.monitor_up) return;
  // Health checks, then the service deletes rows of nodes that confirmed their drop.
  for (int i = 0; i < w.n; ++i) {
    auto& x = w.nodes[i];
    auto& r = x.rec;
    if (!r.present) continue;
    Health h = x.host_up && !x.gone && x.pg.running && x.link_monitor ? Health::Good : Health::Bad;
    if (h != r.health) {
      r.health = h;
      r.health_age = 0;
    }
    if (r.goal == NodeState::Dropped && r.has_report && r.reported == NodeState::Dropped) {
      r = Record{};
      x.gone = true;
      x.keeper_alive = false;
      x.pg.running = false;
    }
  }
  GroupSnapshot g = snapshot(w);
  Decision d;
  try {
    d = decide(g, s, kNow);
  } catch (const std::exception& e) {
    v.push_back(std::string("decide() refused: ") + e.what());
    return;
  }
  if (cov) {
    for (const auto& e : d.events) cov->rules.insert(e.rule);
  }
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    auto& r = w.nodes[index_of(g.nodes[k].id)].rec;
    const auto& a = d.nodes[k];
    r.goal = a.goal;
    r.goal_version = static_cast<std::uint8_t>(a.goal_version);
    r.assigned_sync = Sync::of(a.sync);
    r.assigned_upstream = a.upstream ? static_cast<std::int8_t>(index_of(*a.upstream)) : -1;
    r.target_lsn = static_cast<std::uint8_t>(a.target_lsn.value_or(0));
    r.may_write = a.may_write;
  }
  w.last_primary = d.last_primary ? static_cast<std::int8_t>(index_of(*d.last_primary)) : -1;
  if (d.switchover_settled) w.switchover.reset();
}

// ---- keepers

namespace {

// The actions of the keeper's table, applied to the simulated Postgres. Each
// mirrors what keeper/postgres_node.cpp does, including the preconditions
// under which the real action fails or waits.
class ModelActions : public NodeActions {
 public:
  ModelActions(World& w, int i, Violations& v) : w_(w), i_(i), v_(v) {}

  Progress run(Action a, const Goal& goal) override {
    auto& pg = w_.nodes[i_].pg;
    switch (a) {
      case Action::InitPrimary:
        if (!pg.exists) {
          pg = Pg{};
          pg.exists = true;
        }
        if (pg.standby) throw Error("refusing to bootstrap a primary over a standby's data");
        pg.running = true;
        return Progress::Done;
      case Action::InitStandby: {
        int u = upstream(goal);
        if (u < 0 || !w_.nodes[u].pg.running || !connected(w_, i_, u)) throw Error("upstream unreachable");
        pg.exists = true;
        pg.wal = w_.nodes[u].pg.wal;
        pg.standby = true;
        pg.upstream = static_cast<std::int8_t>(u);
        pg.sync = Sync{};
        pg.access_ready = false;
        pg.running = true;
        return Progress::Done;
      }
      case Action::StartPostgres:
        if (pg.exists) pg.running = true;
        return Progress::Done;
      case Action::StopPostgres:
        replicate(w_);  // a clean shutdown sends every WAL record to connected standbys
        pg.running = false;
        return Progress::Done;
      case Action::EnterStandbyMode:
        if (pg.running && !pg.standby) throw Error("cannot enter standby mode while running as primary");
        pg.standby = true;
        pg.upstream = -1;
        return Progress::Done;
      case Action::StopReplication:
        if (pg.standby) pg.upstream = -1;
        return Progress::Done;
      case Action::WaitForReplay:
        return Progress::Done;
      case Action::RewindIfNeeded: {
        int u = upstream(goal);
        if (u < 0 || !w_.nodes[u].pg.running || !connected(w_, i_, u)) throw Error("upstream unreachable");
        rewind_if_diverged(u);
        return Progress::Done;
      }
      case Action::FollowUpstream: {
        int u = upstream(goal);
        if (!goal.known || u < 0) {  // keep what is configured
          if (pg.exists) pg.running = true;
          return Progress::Done;
        }
        if (pg.running && !pg.standby) throw Error("refusing to follow an upstream while running as primary");
        if (w_.nodes[u].pg.running && connected(w_, i_, u)) rewind_if_diverged(u);
        pg.standby = true;
        pg.upstream = static_cast<std::int8_t>(u);
        if (pg.exists) pg.running = true;
        return Progress::Done;
      }
      case Action::FastForward: {
        int u = upstream(goal);
        if (u < 0) throw Error("no upstream to fast-forward from");
        pg.standby = true;
        pg.upstream = static_cast<std::int8_t>(u);
        if (pg.exists) pg.running = true;
        replicate(w_);
        return pg.wal.size() >= goal.target_lsn.value_or(0) ? Progress::Done : Progress::Waiting;
      }
      case Action::Promote:
        if (!pg.exists) throw Error("no data to promote");
        if (pg.standby) {
          promote_checks();
          pg.standby = false;
          pg.upstream = -1;
          pg.wal.push_back(static_cast<std::uint8_t>(kMarkerBase + timeline_of(pg.wal)));
        }
        pg.running = true;
        return Progress::Done;
      case Action::Checkpoint:
        return Progress::Done;
      case Action::EnsureReplicationAccess:
        if (pg.running && !pg.standby) pg.access_ready = true;
        return Progress::Done;
      case Action::ApplySyncConfig:
        if (goal.known) pg.sync = Sync::of(goal.sync);
        return Progress::Done;
      case Action::Drop:
        pg.running = false;
        return Progress::Done;
    }
    return Progress::Done;
  }

 private:
  int upstream(const Goal& goal) const { return goal.upstream ? index_of(goal.upstream->id) : -1; }

  void rewind_if_diverged(int u) {
    auto& pg = w_.nodes[i_].pg;
    const auto& up = w_.nodes[u].pg.wal;
    if (is_prefix(pg.wal, up)) return;
    // pg_rewind (or a new base backup) needs the server stopped: back to the fork point.
    pg.running = false;
    size_t common = 0;
    while (common < pg.wal.size() && common < up.size() && pg.wal[common] == up[common]) ++common;
    pg.wal.resize(common);
    pg.access_ready = false;
  }

  // The moment of truth: this node starts accepting writes.
  void promote_checks() {
    const auto& me = w_.nodes[i_];
    for (int b = 1; b < 8; ++b) {
      if ((w_.acked & (1u << b)) && std::find(me.pg.wal.begin(), me.pg.wal.end(), b) == me.pg.wal.end()) {
        v_.push_back(fmt::format("I2: n{} promoted without acknowledged write {}", i_ + 1, b));
      }
    }
    for (int j = 0; j < w_.n; ++j) {
      if (j != i_ && can_acknowledge(w_, j)) {
        v_.push_back(fmt::format("I3: n{} promoted while n{} can still acknowledge writes", i_ + 1, j + 1));
      }
    }
    if (me.rec.priority == 0) v_.push_back(fmt::format("I4: n{} with candidate priority 0 promoted", i_ + 1));
    for (int j = 0; j < w_.n; ++j) {
      const auto& o = w_.nodes[j];
      bool reporter = j != i_ && o.rec.present && o.rec.has_report && is_election_state(o.rec.reported) &&
                      is_election_state(o.current) && o.rec.report_age < 2;
      // "More WAL" is a newer timeline, or a longer one on the same timeline; an
      // older diverged branch is not ahead (it is rewound when it follows).
      auto tl = [](const Pg& p) { return timeline_of(p.wal); };
      bool ahead = tl(o.pg) > tl(me.pg) || (tl(o.pg) == tl(me.pg) && o.pg.wal.size() > me.pg.wal.size());
      if (reporter && ahead) {
        v_.push_back(fmt::format("I4: n{} promoted but n{}, which reported, has more WAL", i_ + 1, j + 1));
      }
    }
  }

  World& w_;
  int i_;
  Violations& v_;
};

GoalMemo goal_from_record(const World& w, int i) {
  const auto& r = w.nodes[i].rec;
  return GoalMemo{r.goal, r.goal_version, r.assigned_sync, r.assigned_upstream, r.target_lsn};
}

}  // namespace

bool keeper_turn(World& w, int i, const DecisionSettings& s, Violations& v, std::optional<int> crash_after,
                 Coverage* cov) {
  auto& x = w.nodes[i];
  if (x.gone || !x.host_up || !x.keeper_alive) return false;
  auto& pg = x.pg;

  // Report the facts and read the goal back, when the monitor is reachable.
  std::optional<NodeState> fresh;
  if (w.monitor_up && x.link_monitor && x.rec.present) {
    auto& r = x.rec;
    r.has_report = true;
    r.reported = x.current;
    r.reported_goal_version = x.current_version;
    r.report_age = 0;
    if (!pg.running && (r.pg_running || r.pg_down_age == kNever)) r.pg_down_age = 0;
    if (pg.running) r.pg_down_age = kNever;
    r.pg_running = pg.running;
    r.lsn = static_cast<std::uint8_t>(pg.wal.size());
    r.timeline = timeline_of(pg.wal);
    r.reported_upstream = pg.standby ? pg.upstream : -1;
    r.streaming = streams_from(w, i, pg.upstream);
    if (r.streaming) r.streaming_age = 0;
    r.reported_sync = pg.sync;
    r.peers_ready = 0;
    if (pg.running && !pg.standby && pg.access_ready) {
      for (int j = 0; j < w.n; ++j) {
        if (j != i) r.peers_ready |= static_cast<std::uint8_t>(1u << j);
      }
    }
    x.last_goal = goal_from_record(w, i);
    fresh = r.goal;
    x.alone_age = 0;
  }
  for (int m = 0; m < w.n; ++m) {
    if (pg.running && !pg.standby && streams_from(w, m, i)) x.alone_age = 0;
  }

  KeeperTurnFacts facts;
  facts.fresh_goal = fresh;
  facts.now_ms = kNow;
  facts.last_monitor_contact_ms = at_age(x.alone_age);
  facts.last_standby_seen_ms = at_age(x.alone_age);
  facts.network_partition_timeout_ms = s.network_partition_timeout;
  TurnPlan plan;
  try {
    plan = plan_turn(x.current, facts);
  } catch (const std::exception& e) {
    v.push_back(fmt::format("keeper n{}: {}", i + 1, e.what()));
    return true;
  }
  if (!plan.transition) return true;
  if (cov) cov->transitions.insert({plan.transition->from, plan.transition->to});
  if (crash_after && (plan.kind != TurnPlan::Kind::Transition ||
                      *crash_after >= static_cast<int>(plan.transition->actions.size()))) {
    return false;  // nothing to interrupt
  }

  Goal goal;
  if (x.last_goal) {
    goal = x.last_goal->goal();
  } else {
    goal.known = false;
    goal.state = x.current;
  }
  ModelActions actions(w, i, v);
  int done = 0;
  bool finished = true;
  try {
    for (Action a : plan.transition->actions) {
      if (crash_after && done == *crash_after) {
        x.keeper_alive = false;
        x.last_goal.reset();
        return true;
      }
      if (actions.run(a, goal) == Progress::Waiting) {
        finished = false;
        break;
      }
      ++done;
    }
  } catch (const Error&) {
    finished = false;  // retried on a later turn
  }
  replicate(w);
  if (finished) {
    x.current = plan.next_state;
    // Reaching (or holding) the goal just received records its version; a fence
    // is the keeper's own doing and keeps the version it had.
    if (fresh && *fresh == plan.next_state && plan.kind != TurnPlan::Kind::Fence) x.current_version = x.rec.goal_version;
  }
  return true;
}

void tick(World& w) {
  w.monitor_age = bump(w.monitor_age);
  for (int i = 0; i < w.n; ++i) {
    auto& x = w.nodes[i];
    x.alone_age = static_cast<std::uint8_t>(std::min<int>(x.alone_age + 1, kAloneCap));
    auto& r = x.rec;
    r.report_age = bump(r.report_age);
    r.pg_down_age = bump(r.pg_down_age);
    r.streaming_age = bump(r.streaming_age);
    r.health_age = bump(r.health_age);
  }
}

// Only equality between versions matters: shift each node's versions so the
// smallest is 0, keeping the state space finite.
void rebase_versions(World& w) {
  for (int i = 0; i < w.n; ++i) {
    auto& x = w.nodes[i];
    int low = std::min<int>({x.rec.goal_version, x.rec.reported_goal_version, x.current_version,
                             x.last_goal ? x.last_goal->version : 255});
    if (low == 0) continue;
    x.rec.goal_version -= low;
    x.rec.reported_goal_version -= low;
    x.current_version -= low;
    if (x.last_goal) x.last_goal->version -= low;
  }
}

const char* system_step(World& w, const DecisionSettings& s, Violations& v, Coverage* cov) {
  static const char* const keeper_turns[] = {"keeper n1 turn", "keeper n2 turn", "keeper n3 turn"};
  static const char* const keeper_idle[] = {"(keeper n1 not running)", "(keeper n2 not running)", "(keeper n3 not running)"};
  const char* what;
  if (w.phase == 0) {
    monitor_turn(w, s, v, cov);
    what = w.monitor_up ? "monitor decides" : "(monitor down)";
  } else if (w.phase <= w.n) {
    int i = w.phase - 1;
    what = keeper_turn(w, i, s, v, {}, cov) ? keeper_turns[i] : keeper_idle[i];
  } else {
    tick(w);
    what = "1 s passes";
  }
  w.phase = static_cast<std::uint8_t>((w.phase + 1) % (w.n + 2));
  replicate(w);
  rebase_versions(w);
  return what;
}

bool at_rest(const World& w, const DecisionSettings& s) {
  if (w.phase != 0) return false;
  World next = w;
  Violations v;
  for (int i = 0; i < w.n + 2; ++i) system_step(next, s, v);
  return v.empty() && next.hash() == w.hash();
}

// ---- liveness

namespace {
// Stable: one primary, every other node a secondary (or in maintenance), all reached.
bool stable(const World& w, const DecisionSettings& s) {
  int writers = 0, secondaries = 0, others = 0;
  const Record* writer = nullptr;
  for (int i = 0; i < w.n; ++i) {
    const auto& r = w.nodes[i].rec;
    if (!r.present) continue;
    if (!r.has_report || r.reported != r.goal) return false;
    if (accepts_writes(r.goal)) {
      ++writers;
      writer = &r;
    } else if (r.goal == NodeState::Secondary) {
      ++secondaries;
    } else if (r.goal != NodeState::Maintenance) {
      ++others;
    }
  }
  if (writers != 1 || others != 0) return false;
  if (secondaries == 0) return writer->goal == NodeState::Single || writer->goal == NodeState::WaitPrimary;
  bool enough = secondaries >= std::max(s.number_sync_standbys, 1);
  return writer->goal == (enough ? NodeState::Primary : NodeState::WaitPrimary);
}
}  // namespace

bool converges(World w, const DecisionSettings& s, Violations& v, std::string* why, WorldHashSet& known_good) {
  for (int i = 0; i < w.n; ++i) {
    auto& x = w.nodes[i];
    if (x.gone) continue;
    x.host_up = true;
    x.link_monitor = true;
    if (!x.keeper_alive) {
      x.keeper_alive = true;
      x.last_goal.reset();
    }
    for (int j = 0; j < w.n; ++j) w.link[i][j] = i != j;
  }
  if (!w.monitor_up) {
    w.monitor_up = true;
    w.monitor_age = 0;
  }
  std::vector<World::Hash> path;
  const int max_steps = 40 * (w.n + 2);
  for (int step = 0; step < max_steps; ++step) {
    World::Hash k = w.hash();
    if (known_good.count(k) || (w.phase == 0 && stable(w, s))) {
      known_good.insert(path.begin(), path.end());
      return true;
    }
    path.push_back(k);
    system_step(w, s, v);
    if (!v.empty()) return false;
  }
  if (why) *why = "the group does not return to one primary plus secondaries within 40 s once everything is healed:\n" + describe(w);
  return false;
}

std::string describe(const World& w) {
  std::string out;
  for (int i = 0; i < w.n; ++i) {
    const auto& x = w.nodes[i];
    if (x.gone) {
      out += fmt::format("  n{}: gone\n", i + 1);
      continue;
    }
    std::string wal;
    for (auto e : x.pg.wal) wal += e >= kMarkerBase ? fmt::format("|t{}", e - kMarkerBase + 1) : fmt::format(" {}", e);
    out += fmt::format(
        "  n{}: host {} keeper {} state {} | pg {}{} up n{} sync {} wal [{} ] | goal {} reported {} may_write {} "
        "report_age {} health {} maint {}\n",
        i + 1, x.host_up ? "up" : "DOWN", x.keeper_alive ? "alive" : "DEAD", name(x.current),
        x.pg.running ? "running" : "stopped", x.pg.standby ? " standby" : " primary", x.pg.upstream + 1,
        x.pg.sync.config().describe(), wal, name(x.rec.goal), x.rec.has_report ? name(x.rec.reported) : "-",
        x.rec.may_write, x.rec.report_age, name(x.rec.health), x.rec.maintenance_requested);
  }
  out += fmt::format("  monitor {} | last primary n{} | acked writes mask {:#x} | switchover {}\n",
                     w.monitor_up ? "up" : "DOWN", w.last_primary + 1, w.acked, w.switchover ? "pending" : "none");
  return out;
}

}  // namespace pgf::model
