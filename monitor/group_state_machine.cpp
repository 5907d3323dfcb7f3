#include "monitor/group_state_machine.h"

#include <algorithm>
#include <fmt/format.h>

namespace pgf {

std::string_view name(Health h) {
  switch (h) {
    case Health::Unknown: return "unknown";
    case Health::Good: return "good";
    case Health::Bad: return "bad";
  }
  return "unknown";
}

bool Decision::changed(const GroupSnapshot& before) const {
  if (!events.empty() || switchover_settled || last_primary != before.last_primary) return true;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& a = nodes[i];
    const auto& n = before.nodes[i];
    if (a.goal != n.goal || a.goal_version != n.goal_version || a.sync != n.assigned_sync ||
        a.upstream != n.assigned_upstream || a.may_write != n.may_write) {
      return true;
    }
  }
  return false;
}

bool node_is_lost(const NodeSnapshot& n, const DecisionSettings& s, TimeMs now) {
  bool recent = n.last_report_at && now - *n.last_report_at < s.node_lost_timeout;
  return !recent && n.health != Health::Good;
}

bool node_is_failed(const NodeSnapshot& n, const DecisionSettings& s, TimeMs now) {
  if (node_is_lost(n, s, now)) return true;
  bool recent = n.last_report_at && now - *n.last_report_at < s.node_lost_timeout;
  // Postgres that is down counts against a node only where it should be running:
  // draining, demoted or in maintenance, it is stopped on purpose.
  bool should_run = !(n.reported && keeps_postgres_stopped(*n.reported));
  return recent && should_run && !n.pg_running && n.pg_down_since &&
         now - *n.pg_down_since >= s.postgres_restart_timeout;
}

namespace {

using S = NodeState;

std::string secs(TimeMs ms) { return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0); }

std::string who(const NodeSnapshot& n) { return fmt::format("{} ({}:{})", n.name, n.host, n.port); }

bool contains(const std::vector<NodeId>& ids, NodeId id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

// The election among standbys that stopped following the old primary.
struct Election {
  bool active = false;                       // some node has an election goal
  bool complete = false;                     // everyone active reported, enough to cover acknowledged writes
  const NodeSnapshot* winner = nullptr;      // elected (it stays elected), or chosen now that it is complete
  const NodeSnapshot* most_advanced = nullptr;
  Lsn max_lsn = 0;
  bool hopeless = false;                     // nobody alive can win: the old primary may resume
  std::string waiting_for;                   // why there is no winner yet
  size_t reporters = 0;
  size_t pending = 0;                        // active participants that have not reported yet
};

// Everything decide() derives from a snapshot, computed once per call. Rules
// ask it questions; none of them changes it.
class Group {
 public:
  Group(const GroupSnapshot& g, const DecisionSettings& s, TimeMs now) : snap(g), set(s), now(now) {
    grace_over = now - g.monitor_started_at >= s.startup_grace;
    for (const auto& n : g.nodes) {
      if (accepts_writes(n.goal)) {
        if (writable_ && writable_ != &n) {
          throw std::logic_error(fmt::format("snapshot of group {}/{} has two writable nodes: {} and {}", g.formation,
                                             g.group, who(*writable_), who(n)));
        }
        writable_ = &n;
      }
      if (n.goal == S::Draining) draining_ = &n;
    }
    election_ = compute_election();
  }

  const GroupSnapshot& snap;
  const DecisionSettings& set;
  TimeMs now;
  bool grace_over = false;

  const NodeSnapshot* node(NodeId id) const {
    for (const auto& n : snap.nodes) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }
  std::vector<const NodeSnapshot*> others(const NodeSnapshot& self) const {
    std::vector<const NodeSnapshot*> out;
    for (const auto& n : snap.nodes) {
      if (n.id != self.id && n.goal != S::Dropped) out.push_back(&n);
    }
    return out;
  }

  // ---- facts about one node

  bool reported_recently(const NodeSnapshot& n) const {
    return n.last_report_at && now - *n.last_report_at < set.node_lost_timeout;
  }
  bool failed(const NodeSnapshot& n) const { return grace_over && node_is_failed(n, set, now); }
  // Taking part in an election needs a keeper that reports: Postgres answering
  // health checks is not enough when nobody can act on a goal.
  bool active(const NodeSnapshot& n) const { return reported_recently(n) && !failed(n); }
  std::string failure(const NodeSnapshot& n) const {
    if (node_is_lost(n, set, now)) {
      std::string report = n.last_report_at ? "last report " + secs(now - *n.last_report_at) + " ago" : "never reported";
      std::string health = n.health == Health::Bad && n.health_since
                               ? "health checks failing for " + secs(now - *n.health_since)
                               : "health " + std::string(name(n.health));
      return fmt::format("{} unreachable: {}, {}", who(n), health, report);
    }
    return fmt::format("{} Postgres down for {} and its keeper cannot restart it", who(n),
                       secs(now - n.pg_down_since.value_or(now)));
  }
  bool streaming_from(const NodeSnapshot& n, const NodeSnapshot& upstream, TimeMs within) const {
    return n.reported_upstream == upstream.id && n.last_streaming_at && now - *n.last_streaming_at < within;
  }
  // A secondary that stopped keeping up: the primary must stop waiting for it.
  bool out_of_sync(const NodeSnapshot& n, const NodeSnapshot& p) const {
    return grace_over && (failed(n) || !streaming_from(n, p, set.standby_stream_timeout));
  }
  bool leaving(const NodeSnapshot& n) const { return n.maintenance_requested || n.drop_requested; }
  // The keeper reached the goal currently assigned (not an older one of the same name).
  static bool reached(const NodeSnapshot& n) {
    return n.reported == n.goal && n.reported_goal_version == n.goal_version;
  }
  bool counts_for_quorum(const NodeSnapshot& n, const NodeSnapshot& p) const {
    return n.goal == S::Secondary && reached(n) && n.replication_quorum && !leaving(n) &&
           !out_of_sync(n, p);
  }
  // I4: a node with candidate priority 0 is never promoted.
  static bool may_be_promoted(const NodeSnapshot& n) { return n.candidate_priority > 0; }
  // May be elected if the primary fails: a secondary that is alive. Whether it
  // streams right now does not matter (a dead primary streams to nobody); that
  // it holds the acknowledged writes is what synchronous replication and the
  // election's coverage rule guarantee.
  bool is_candidate(const NodeSnapshot& n) const {
    return n.goal == S::Secondary && reached(n) && n.candidate_priority > 0 && !leaving(n) &&
           reported_recently(n) && !failed(n);
  }
  // May take over in a planned handover: also streaming from the primary now.
  bool is_handover_candidate(const NodeSnapshot& n, const NodeSnapshot& p) const {
    return is_candidate(n) && !out_of_sync(n, p);
  }
  // The node may be accepting writes: it was assigned a writable state and has
  // not yet confirmed a non-writable one (confirmation counts in this very decision).
  bool may_write(const NodeSnapshot& n) const {
    bool confirmed_not_writable = reached(n) && !accepts_writes(n.goal);
    return n.may_write && !confirmed_not_writable;
  }

  // ---- the primary

  // The node assigned a writable state, if any (I1: at most one).
  const NodeSnapshot* writable() const { return writable_; }
  // A writable node that has reached a writable state: standbys can follow it.
  const NodeSnapshot* serving_primary() const {
    return writable_ && writable_->reported && accepts_writes(*writable_->reported) ? writable_ : nullptr;
  }
  const NodeSnapshot* draining() const { return draining_; }
  // A primary that is up and reporting: only then is a standby that does not
  // stream from it to blame (and the primary may stop waiting for it).
  bool serving_and_healthy(const NodeSnapshot& p) const { return reported_recently(p) && p.pg_running && !failed(p); }
  const NodeSnapshot* primary_role() const { return writable_ ? writable_ : draining_; }

  int required_sync() const { return std::max(set.number_sync_standbys, 1); }
  std::vector<NodeId> quorum(const NodeSnapshot& p) const {
    std::vector<NodeId> ids;
    for (const auto* n : others(p)) {
      if (counts_for_quorum(*n, p)) ids.push_back(n->id);
    }
    return ids;
  }
  std::vector<NodeId> in_sync(const NodeSnapshot& p) const {
    std::vector<NodeId> ids;
    for (const auto* n : others(p)) {
      if (n->goal == S::Secondary && reached(*n) && !leaving(*n) && !out_of_sync(*n, p)) {
        ids.push_back(n->id);
      }
    }
    return ids;
  }
  bool enough_in_sync(const NodeSnapshot& p) const {
    if (set.number_sync_standbys == 0) return !in_sync(p).empty();
    return static_cast<int>(quorum(p).size()) >= required_sync();
  }
  std::vector<const NodeSnapshot*> candidates(const NodeSnapshot& p) const {
    std::vector<const NodeSnapshot*> out;
    for (const auto* n : others(p)) {
      if (is_candidate(*n)) out.push_back(n);
    }
    return out;
  }

  // A standby that still streams from the primary proves it is alive: the
  // monitor alone lost sight of it, so there is nothing to fail over.
  const NodeSnapshot* standby_seeing(const NodeSnapshot& p) const {
    for (const auto* n : others(p)) {
      if (reported_recently(*n) && n->streaming && streaming_from(*n, p, set.node_lost_timeout)) return n;
    }
    return nullptr;
  }

  // The synchronous settings a node may be running with: the one it reported
  // and the one assigned since (at most one change is ever in flight).
  std::vector<SyncConfig> possible_sync(const NodeSnapshot& x) const {
    std::vector<SyncConfig> out{x.reported_sync};
    if (x.assigned_sync != x.reported_sync) out.push_back(x.assigned_sync);
    return out;
  }

  // How many of `cfg`'s standbys must be out of reach of a writer so that it
  // cannot gather enough acknowledgements: |L| - k + 1.
  static int blocking_count(const SyncConfig& cfg) {
    return static_cast<int>(cfg.standbys.size()) - cfg.num_sync + 1;
  }

  bool stopped_following(const NodeSnapshot& m, const NodeSnapshot& x) const {
    return m.id != x.id && m.last_report_at && m.reported_upstream != x.id && m.assigned_upstream != x.id;
  }

  // Invariant I3: may `x` still acknowledge a write? Two proofs that it cannot:
  // it confirmed a non-writable state (may_write is clear), or every synchronous
  // setting it may run with needs an acknowledgement from enough standbys that
  // have stopped following it. Self-fencing after network_partition_timeout is
  // not a proof: it needs a live keeper, and a keeper can die while its Postgres
  // runs on. So without synchronous replication, a primary that is unreachable
  // (rather than confirmed down) is never failed over automatically.
  bool cannot_ack(const NodeSnapshot& x, std::string* why) const {
    if (!may_write(x)) return true;
    if (!x.last_report_at) return true;  // goals travel in report replies: it never received one
    for (const auto& cfg : possible_sync(x)) {
      if (!cfg.enabled()) {
        if (why) *why = fmt::format("{} may run without synchronous replication and has not confirmed it stopped", who(x));
        return false;
      }
      int stopped = 0;
      for (NodeId id : cfg.standbys) {
        const auto* m = node(id);
        if (m && stopped_following(*m, x)) ++stopped;
      }
      if (stopped < blocking_count(cfg)) {
        if (why) *why = fmt::format("{} may still gather acknowledgements: only {} of the standbys in {} stopped following it",
                                    who(x), stopped, cfg.describe());
        return false;
      }
    }
    return true;
  }

  bool promotion_safe(const NodeSnapshot& w, std::string* why) const {
    for (const auto* x : others(w)) {
      if (!cannot_ack(*x, why)) return false;
    }
    return true;
  }

  // ---- failover and handover

  // The primary has failed and a failover can complete without losing an
  // acknowledged write.
  bool failover_starts(std::string* why = nullptr) const {
    const auto* p = writable_;
    if (!p || p->goal != S::Primary || !reached(*p) || !failed(*p)) return false;
    if (const auto* s = standby_seeing(*p)) {
      if (why) *why = fmt::format("{} still streams from it", who(*s));
      return false;
    }
    if (set.number_sync_standbys > 0) {
      for (const auto& cfg : possible_sync(*p)) {
        if (!cfg.enabled()) return false;  // it may have acknowledged writes nobody else has
        int alive = 0;
        for (NodeId id : cfg.standbys) {
          const auto* m = node(id);
          if (m && !failed(*m)) ++alive;
        }
        if (alive < blocking_count(cfg)) return false;  // the election could never be complete
      }
    }
    auto c = candidates(*p);
    if (c.empty()) return false;
    if (why) *why = failure(*p);
    return true;
  }

  // Switchover, or maintenance or removal of the primary: hand over to a standby.
  bool handover_starts() const {
    const auto* p = writable_;
    if (!p || p->goal != S::Primary || !reached(*p) || failed(*p)) return false;
    if (!snap.switchover && !leaving(*p)) return false;
    return handover_candidate_exists(*p);
  }
  bool handover_candidate_exists(const NodeSnapshot& p) const {
    auto target = snap.switchover ? snap.switchover->target : std::nullopt;
    for (const auto* n : others(p)) {
      if (is_handover_candidate(*n, p) && (!target || n->id == *target)) return true;
    }
    return false;
  }
  std::string handover_reason(const NodeSnapshot& p) const {
    if (p.drop_requested) return fmt::format("{} is being dropped: handing over to a standby first", who(p));
    if (p.maintenance_requested) return fmt::format("maintenance requested on {}: handing over first", who(p));
    if (snap.switchover && snap.switchover->target) {
      return fmt::format("promotion of {} requested", who(*node(*snap.switchover->target)));
    }
    return "switchover requested";
  }

  // Standbys stop following the primary and report how far they got.
  bool election_opens(std::string* why = nullptr) const {
    if (failover_starts(why)) return true;
    if (draining_ && reached(*draining_) && !writable_) {
      if (why) *why = fmt::format("{} has drained: every standby has its WAL", who(*draining_));
      return true;
    }
    if (election_.active && !writable_) {
      if (why) *why = "an election is in progress";
      return true;
    }
    return false;
  }

  const Election& election() const { return election_; }
  // A standby that could take part in an election: it holds a copy of the data.
  bool has_following_standby() const {
    return std::any_of(snap.nodes.begin(), snap.nodes.end(),
                       [](const auto& n) { return is_following_standby(n.goal) && reached(n); });
  }

 private:
  Election compute_election() const {
    Election e;
    std::vector<const NodeSnapshot*> alive, reporters, pending;
    const NodeSnapshot* sticky = nullptr;
    for (const auto& n : snap.nodes) {
      if (!is_election_state(n.goal)) continue;
      e.active = true;
      if (!active(n)) continue;
      alive.push_back(&n);
      if (n.reported && is_election_state(*n.reported)) {
        reporters.push_back(&n);
      } else {
        pending.push_back(&n);
      }
      if (n.goal == S::FastForward || n.goal == S::PreparePromotion) sticky = &n;
    }
    if (!e.active) return e;
    if (writable_) {
      e.waiting_for = fmt::format("{} was promoted", who(*writable_));
      return e;  // decided: the others follow it
    }
    if (alive.empty()) {
      e.hopeless = true;
      e.waiting_for = "every standby taking part in the election has failed";
      return e;
    }
    auto newer = [](const NodeSnapshot* a, const NodeSnapshot* b) {
      return std::tie(a->timeline, a->lsn) < std::tie(b->timeline, b->lsn);
    };
    for (const auto* r : reporters) {
      if (!e.most_advanced || newer(e.most_advanced, r)) e.most_advanced = r;
    }
    if (e.most_advanced) e.max_lsn = e.most_advanced->lsn;
    e.reporters = reporters.size();
    e.pending = pending.size();
    if (!pending.empty()) {
      std::vector<std::string> names;
      for (const auto* p : pending) names.push_back(p->name);
      e.waiting_for = fmt::format("waiting for {} to report their LSN", fmt::join(names, ", "));
    }
    // Every acknowledged write is on enough of the last primary's synchronous
    // standbys; until that many have reported, the most advanced may be missing.
    bool covered = true;
    if (snap.last_primary) {
      if (const auto* x = node(*snap.last_primary); x && !is_election_state(x->goal)) {
        for (const auto& cfg : possible_sync(*x)) {
          if (!cfg.enabled()) continue;
          int have = 0;
          for (const auto* r : reporters) have += contains(cfg.standbys, r->id) ? 1 : 0;
          if (have < blocking_count(cfg)) {
            covered = false;
            e.waiting_for = fmt::format("{} of the standbys in {} must report: they may hold acknowledged writes",
                                        blocking_count(cfg), cfg.describe());
          }
        }
      }
    }
    e.complete = pending.empty() && covered;
    // Blocked for good, as far as anyone can tell: let the old primary carry on.
    if (pending.empty() && !covered) e.hopeless = true;
    // Once elected, a node stays elected (it may still have to fetch WAL that a
    // late report shows); it makes progress only while the election is complete.
    if (sticky) {
      e.winner = sticky;
      return e;
    }
    if (!e.complete) return e;
    std::optional<NodeId> target;
    if (snap.switchover && snap.switchover->target) {
      bool target_alive = std::any_of(alive.begin(), alive.end(), [&](auto* n) { return n->id == *snap.switchover->target; });
      if (target_alive) target = snap.switchover->target;
    }
    // Most WAL wins, then candidate priority; ties on everything: the lower id
    // (first in order) stays. A node the operator is taking out (maintenance,
    // drop) wins only when nobody else can: the request waits for a hand-over.
    auto choose = [&](bool allow_leaving) {
      for (const auto* r : reporters) {
        if (!may_be_promoted(*r) || (leaving(*r) && !allow_leaving) || (target && r->id != *target)) continue;
        if (!e.winner || std::tie(e.winner->timeline, e.winner->lsn, e.winner->candidate_priority) <
                             std::tie(r->timeline, r->lsn, r->candidate_priority)) {
          e.winner = r;
        }
      }
    };
    choose(false);
    if (!e.winner) choose(true);
    if (!e.winner) {
      e.hopeless = true;
      e.waiting_for = "no standby that reported may be promoted (candidate priority 0)";
    }
    return e;
  }

  const NodeSnapshot* writable_ = nullptr;
  const NodeSnapshot* draining_ = nullptr;
  Election election_;
};

// ---- the rules

using Guard = bool (*)(const Group&, const NodeSnapshot&);
using Reason = std::string (*)(const Group&, const NodeSnapshot&);

struct Rule {
  RuleInfo info;
  Guard applies;
  Reason reason;
};

bool has_other_nodes(const Group& g, const NodeSnapshot& n) { return !g.others(n).empty(); }

bool is_election_winner(const Group& g, const NodeSnapshot& n) {
  return g.election().winner == &n;
}

// For every node, the first rule (top to bottom) whose `from` holds its current
// goal and whose condition is true decides its new goal.
const Rule kRules[] = {
    // ---- leaving the group
    {{"drop-requested", {S::Init, S::WaitStandby, S::CatchingUp, S::Secondary, S::WaitMaintenance, S::Maintenance,
                         S::Demoted},
      S::Dropped, "the operator dropped this node (the last primary only once another node serves)"},
     [](const Group& g, const NodeSnapshot& n) {
       // The last primary's synchronous settings tell the election which standbys
       // hold the acknowledged writes: it stays until a new primary serves.
       bool needed = g.snap.last_primary == n.id && !g.serving_primary();
       return n.drop_requested && !needed;
     },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("{} dropped by the operator", who(n)); }},
    {{"drop-last-node", {S::Single, S::WaitPrimary, S::Primary}, S::Dropped,
      "the operator dropped the only node of the group"},
     [](const Group& g, const NodeSnapshot& n) { return n.drop_requested && !has_other_nodes(g, n); },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("{} dropped by the operator", who(n)); }},

    // ---- bootstrap
    {{"first-node", {S::Init}, S::Single, "no node of the group holds data yet: this one becomes the primary"},
     [](const Group& g, const NodeSnapshot& n) {
       for (const auto* o : g.others(n)) {
         bool holds_data = o->goal != S::Init && o->goal != S::WaitStandby;
         if (holds_data || (o->goal == S::Init && o->id < n.id)) return false;
       }
       return true;
     },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("{} is the first node of the group", who(n)); }},
    {{"join-as-standby", {S::Init}, S::WaitStandby, "the group has a primary"},
     [](const Group& g, const NodeSnapshot&) { return g.writable() != nullptr; },
     [](const Group& g, const NodeSnapshot&) {
       return fmt::format("joining as a standby of {}", who(*g.writable()));
     }},
    {{"standby-joining", {S::Single}, S::WaitPrimary, "another node joined the group"},
     [](const Group& g, const NodeSnapshot& n) {
       return Group::reached(n) && has_other_nodes(g, n) && !n.drop_requested;
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("{} joined the group: allowing replication", g.others(n).front()->name);
     }},
    {{"primary-ready", {S::WaitStandby}, S::CatchingUp,
      "the primary reports a pg_hba entry and a replication slot for this node"},
     [](const Group& g, const NodeSnapshot& n) {
       const auto* p = g.serving_primary();
       return Group::reached(n) && p && (p->reported == S::WaitPrimary || p->reported == S::Primary) &&
              g.reported_recently(*p) && contains(p->peers_ready, n.id);
     },
     [](const Group& g, const NodeSnapshot&) {
       return fmt::format("{} is ready to stream to it: taking a base backup", who(*g.serving_primary()));
     }},

    // ---- failover
    {{"primary-failed", {S::Primary}, S::Demoted,
      "the primary is unreachable or its Postgres is down for good, no standby still streams from it, and a "
      "secondary can be elected without losing acknowledged writes"},
     [](const Group& g, const NodeSnapshot&) { return g.failover_starts(); },
     [](const Group& g, const NodeSnapshot&) {
       std::string why;
       g.failover_starts(&why);
       return "failover: " + why;
     }},
    {{"election-opens", {S::Secondary, S::CatchingUp, S::WaitMaintenance}, S::ReportLsn,
      "the primary failed or drained for a handover, or an election is under way"},
     [](const Group& g, const NodeSnapshot& n) {
       // Only a node that has a copy of the data (it reached a standby state) can take part.
       return Group::reached(n) && g.election_opens();
     },
     [](const Group& g, const NodeSnapshot&) {
       std::string why;
       g.election_opens(&why);
       return "stop following the primary and report the last LSN received: " + why;
     }},
    {{"hand-over", {S::Primary}, S::Draining,
      "a switchover, promotion, or maintenance or drop of the primary was requested and a secondary can take over"},
     [](const Group& g, const NodeSnapshot&) { return g.handover_starts(); },
     [](const Group& g, const NodeSnapshot& n) {
       return g.handover_reason(n) + ": stopping writes so every standby gets all WAL";
     }},

    // ---- election
    {{"elected-behind", {S::ReportLsn, S::PreparePromotion}, S::FastForward,
      "elected (most WAL among candidates, then priority) but another standby that reported has more WAL"},
     [](const Group& g, const NodeSnapshot& n) {
       return is_election_winner(g, n) && g.election().complete && n.lsn < g.election().max_lsn;
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("elected; fetching WAL up to {:X}/{:X} from {} first", g.election().max_lsn >> 32,
                          g.election().max_lsn & 0xffffffff, who(*g.election().most_advanced)) +
              fmt::format(" (has {:X}/{:X})", n.lsn >> 32, n.lsn & 0xffffffff);
     }},
    {{"elected", {S::ReportLsn, S::FastForward}, S::PreparePromotion,
      "elected and holding the most WAL of all standbys that reported"},
     [](const Group& g, const NodeSnapshot& n) {
       return is_election_winner(g, n) && g.election().complete && n.lsn >= g.election().max_lsn &&
              (n.goal != S::FastForward || Group::reached(n));
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("elected among {} standbys that reported, with LSN {:X}/{:X} and candidate priority {}",
                          g.election().reporters, n.lsn >> 32, n.lsn & 0xffffffff, n.candidate_priority);
     }},
    {{"elected-node-failed", {S::FastForward, S::PreparePromotion}, S::ReportLsn,
      "the elected standby failed or stopped reporting before its promotion"},
     [](const Group& g, const NodeSnapshot& n) { return !g.active(n); },
     [](const Group& g, const NodeSnapshot& n) {
       if (g.failed(n)) return "elected node failed: " + g.failure(n);
       return fmt::format("elected node {} stopped reporting {} ago", who(n),
                          n.last_report_at ? secs(g.now - *n.last_report_at) : "long");
     }},
    {{"promote", {S::PreparePromotion}, S::WaitPrimary,
      "ready, and every other node provably cannot acknowledge writes (I3)"},
     [](const Group& g, const NodeSnapshot& n) {
       bool ready = Group::reached(n) && g.active(n) && g.election().complete && n.lsn >= g.election().max_lsn;
       return ready && g.promotion_safe(n, nullptr);
     },
     [](const Group& g, const NodeSnapshot& n) {
       std::string old = g.snap.last_primary && g.node(*g.snap.last_primary)
                             ? " (" + who(*g.node(*g.snap.last_primary)) + " cannot acknowledge writes)"
                             : "";
       return fmt::format("promoting {}{}", who(n), old);
     }},
    {{"follow-new-primary", {S::ReportLsn, S::FastForward, S::PreparePromotion}, S::CatchingUp,
      "a new primary accepts writes"},
     [](const Group& g, const NodeSnapshot&) { return g.serving_primary() != nullptr; },
     [](const Group& g, const NodeSnapshot&) { return fmt::format("following new primary {}", who(*g.serving_primary())); }},

    // ---- the old primary after a failover or handover
    {{"rejoin", {S::Demoted, S::Draining}, S::CatchingUp,
      "it stopped, and another node is the primary: rejoin as a standby (pg_rewind if needed)"},
     [](const Group& g, const NodeSnapshot& n) {
       return g.serving_primary() && Group::reached(n) && g.reported_recently(n) && !g.leaving(n);
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("{} rejoins as a standby of {}", who(n), who(*g.serving_primary()));
     }},
    {{"handed-over-to-maintenance", {S::Demoted, S::Draining}, S::Maintenance,
      "maintenance was requested and another node is the primary"},
     [](const Group& g, const NodeSnapshot& n) {
       return g.serving_primary() && Group::reached(n) && n.maintenance_requested && !n.drop_requested;
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("{} handed over to {}: in maintenance", who(n), who(*g.serving_primary()));
     }},
    {{"handed-over-then-dropped", {S::Draining}, S::Dropped, "drop was requested and another node is the primary"},
     [](const Group& g, const NodeSnapshot& n) {
       return g.serving_primary() && Group::reached(n) && n.drop_requested;
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("{} handed over to {}: dropped", who(n), who(*g.serving_primary()));
     }},
    {{"resume-as-primary", {S::Demoted, S::Draining}, S::WaitPrimary,
      "it was the last primary and no standby can be elected: it carries on, with synchronous replication off"},
     [](const Group& g, const NodeSnapshot& n) {
       bool last = g.snap.last_primary == n.id;
       // Hopeless: an election runs and nobody alive can win it; or none runs and
       // no standby is left that could take part in one.
       bool no_election = g.election().active ? g.election().hopeless : !g.has_following_standby();
       return last && !g.writable() && no_election && Group::reached(n) && g.reported_recently(n) &&
              !g.failed(n) && g.promotion_safe(n, nullptr);
     },
     [](const Group& g, const NodeSnapshot& n) {
       std::string why = g.election().active ? g.election().waiting_for : "no standby can take over";
       return fmt::format("{} resumes as primary: {}", who(n), why);
     }},

    // ---- the primary's synchronous replication
    {{"last-standby-left", {S::WaitPrimary, S::Primary}, S::Single, "no other node is left in the group"},
     [](const Group& g, const NodeSnapshot& n) { return Group::reached(n) && !has_other_nodes(g, n); },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("{} is alone in the group", who(n)); }},
    {{"sync-standbys-ready", {S::WaitPrimary}, S::Primary,
      "number_sync_standbys secondaries are in sync (asynchronous: one secondary)"},
     [](const Group& g, const NodeSnapshot& n) { return Group::reached(n) && g.enough_in_sync(n); },
     [](const Group& g, const NodeSnapshot& n) {
       if (g.set.number_sync_standbys == 0) return std::string("a secondary is in sync (asynchronous replication)");
       return fmt::format("{} of {} required secondaries in sync: synchronous replication on", g.quorum(n).size(),
                          g.required_sync());
     }},
    {{"sync-standby-lost", {S::Primary}, S::WaitPrimary,
      "fewer than number_sync_standbys secondaries are in sync: relax synchronous replication so writes go on"},
     [](const Group& g, const NodeSnapshot& n) {
       return g.grace_over && g.serving_and_healthy(n) && !g.enough_in_sync(n);
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("only {} of {} required secondaries in sync: synchronous replication off until they catch up",
                          g.quorum(n).size(), g.required_sync());
     }},

    // ---- standbys
    {{"maintenance-requested", {S::Secondary, S::CatchingUp}, S::WaitMaintenance,
      "the operator asked for maintenance"},
     [](const Group& g, const NodeSnapshot& n) {
       return n.maintenance_requested && Group::reached(n) && g.serving_primary();
     },
     [](const Group&, const NodeSnapshot& n) {
       return fmt::format("maintenance requested on {}: waiting until the primary stops waiting for it", who(n));
     }},
    {{"standby-failed", {S::Secondary}, S::CatchingUp, "the secondary stopped streaming or failed"},
     [](const Group& g, const NodeSnapshot& n) {
       const auto* p = g.serving_primary();
       return p && g.serving_and_healthy(*p) && g.out_of_sync(n, *p);
     },
     [](const Group& g, const NodeSnapshot& n) {
       if (g.failed(n)) return g.failure(n);
       std::string since = n.last_streaming_at ? "for " + secs(g.now - *n.last_streaming_at) : "at all";
       return fmt::format("{} has not streamed from the primary {}", who(n), since);
     }},
    {{"caught-up", {S::CatchingUp}, S::Secondary, "streaming from the primary and within catchup_lag_bytes of it"},
     [](const Group& g, const NodeSnapshot& n) {
       const auto* p = g.serving_primary();
       if (!p || !Group::reached(n) || !g.reported_recently(n) || !n.streaming || g.leaving(n)) return false;
       if (n.reported_upstream != p->id) return false;
       return p->lsn <= n.lsn || p->lsn - n.lsn <= g.set.catchup_lag_bytes;
     },
     [](const Group& g, const NodeSnapshot& n) {
       const auto* p = g.serving_primary();
       return fmt::format("{} caught up with {} (lag {} bytes)", who(n), who(*p), p->lsn > n.lsn ? p->lsn - n.lsn : 0);
     }},
    {{"maintenance-ready", {S::WaitMaintenance}, S::Maintenance,
      "the primary confirmed it no longer waits for this node"},
     [](const Group& g, const NodeSnapshot& n) {
       const auto* p = g.primary_role();
       if (!n.maintenance_requested || !Group::reached(n)) return false;
       if (!p) return true;
       return !contains(p->reported_sync.standbys, n.id) && !contains(p->assigned_sync.standbys, n.id);
     },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("{} in maintenance", who(n)); }},
    {{"maintenance-cancelled", {S::WaitMaintenance}, S::CatchingUp, "the operator disabled maintenance"},
     [](const Group&, const NodeSnapshot& n) { return !n.maintenance_requested; },
     [](const Group&, const NodeSnapshot& n) { return fmt::format("maintenance of {} cancelled", who(n)); }},
    {{"maintenance-over", {S::Maintenance}, S::CatchingUp, "the operator disabled maintenance and a primary serves"},
     [](const Group& g, const NodeSnapshot& n) {
       return !n.maintenance_requested && g.serving_primary() && g.reported_recently(n);
     },
     [](const Group& g, const NodeSnapshot& n) {
       return fmt::format("maintenance of {} over: rejoining {}", who(n), who(*g.serving_primary()));
     }},
};

// The synchronous replication a node should run with under its new goal. The
// standbys listed are those assigned `secondary` in this very decision, so a
// standby leaves the list in the same step in which it is moved out of sync.
SyncConfig desired_sync(const Group& g, const NodeSnapshot& n, NodeState goal, const std::vector<NodeState>& goals) {
  switch (goal) {
    case S::Primary: {
      if (g.set.number_sync_standbys == 0) return SyncConfig::off();
      std::vector<NodeId> quorum;
      for (size_t i = 0; i < goals.size(); ++i) {
        const auto& m = g.snap.nodes[i];
        if (m.id != n.id && goals[i] == S::Secondary && m.replication_quorum && !g.leaving(m)) quorum.push_back(m.id);
      }
      return SyncConfig::any(g.set.number_sync_standbys, quorum);
    }
    case S::Draining:
    case S::Demoted:
      // Frozen: it says which standbys hold the acknowledged writes (election coverage).
      return n.assigned_sync;
    default:
      return SyncConfig::off();
  }
}

}  // namespace

std::span<const RuleInfo> group_rules() {
  static const std::vector<RuleInfo> infos = [] {
    std::vector<RuleInfo> v;
    for (const auto& r : kRules) v.push_back(r.info);
    return v;
  }();
  return infos;
}

Decision decide(const GroupSnapshot& snap, const DecisionSettings& settings, TimeMs now) {
  Group g(snap, settings, now);
  Decision d;
  d.last_primary = snap.last_primary;

  std::vector<NodeState> goals;
  for (const auto& n : snap.nodes) {
    NodeState goal = n.goal;
    for (const auto& rule : kRules) {
      if (!rule.info.from.contains(n.goal) || !rule.applies(g, n)) continue;
      goal = rule.info.to;
      d.events.push_back({n.id, n.goal, goal, std::string(rule.info.name), rule.reason(g, n)});
      break;
    }
    goals.push_back(goal);
  }

  // I1, as a last line of defence: never hand out a second writable role.
  const NodeSnapshot* new_writer = nullptr;
  for (size_t i = 0; i < goals.size(); ++i) {
    if (!accepts_writes(goals[i])) continue;
    if (new_writer) {
      throw std::logic_error(fmt::format("refusing a decision that makes both {} and {} writable", who(*new_writer),
                                         who(snap.nodes[i])));
    }
    new_writer = &snap.nodes[i];
  }

  const NodeSnapshot* upstream_primary = new_writer ? new_writer : g.draining();
  for (size_t i = 0; i < goals.size(); ++i) {
    const auto& n = snap.nodes[i];
    NodeAssignment a;
    a.id = n.id;
    a.goal = goals[i];
    a.goal_version = a.goal != n.goal ? n.goal_version + 1 : n.goal_version;

    // At most one synchronous-replication change in flight: the keeper may run
    // either what it reported or what was last assigned, never a third thing.
    SyncConfig want = desired_sync(g, n, a.goal, goals);
    bool in_flight = n.reported_sync != n.assigned_sync && is_primary_role(n.goal) && is_primary_role(a.goal);
    a.sync = in_flight ? n.assigned_sync : want;
    if (a.sync != n.assigned_sync) {
      d.events.push_back({n.id, a.goal, a.goal, "sync-settings",
                          fmt::format("synchronous replication on {}: {} -> {}", who(n), n.assigned_sync.describe(),
                                      a.sync.describe())});
    }

    switch (a.goal) {
      case S::WaitStandby:
      case S::CatchingUp:
      case S::Secondary:
      case S::WaitMaintenance:
        if (upstream_primary && upstream_primary->id != n.id) a.upstream = upstream_primary->id;
        break;
      case S::FastForward:
        // Only a complete election sets where to fetch from and how far; the
        // target never shrinks because the node that holds the WAL went away.
        a.upstream = n.assigned_upstream;
        a.target_lsn = n.assigned_target_lsn;
        if (g.election().complete && g.election().most_advanced) {
          a.upstream = g.election().most_advanced->id;
          a.target_lsn = std::max(g.election().max_lsn, n.assigned_target_lsn.value_or(0));
        }
        break;
      default:
        break;
    }

    a.may_write = accepts_writes(a.goal) || g.may_write(n);
    if (accepts_writes(a.goal)) d.last_primary = n.id;
    d.nodes.push_back(std::move(a));
  }

  if (snap.switchover) {
    // Pending until a new primary is promoted (or the old one resumes); void
    // when no handover is under way and none can start.
    auto fired = [&](std::string_view rule) {
      return std::any_of(d.events.begin(), d.events.end(), [&](const auto& e) { return e.rule == rule; });
    };
    const auto* p = g.writable();
    bool under_way = g.draining() || g.election().active || fired("hand-over");
    bool can_start = p && p->goal == S::Primary && g.handover_candidate_exists(*p);
    if (fired("promote") || fired("resume-as-primary")) {
      d.switchover_settled = true;
    } else if (!under_way && !can_start) {
      d.switchover_settled = true;
      NodeId at = p ? p->id : snap.nodes.empty() ? 0 : snap.nodes.front().id;
      NodeState st = p ? p->goal : S::Init;
      d.events.push_back({at, st, st, "switchover-void",
                          "switchover request dropped: no primary in sync with a secondary that may be promoted"});
    }
  }
  return d;
}

}  // namespace pgf
