// Exhaustive, bounded exploration of a group: every interleaving of the
// monitor's and keepers' turns and of environment events (crashes, returns,
// partitions, keeper restarts, client writes, operator actions) up to a number
// of environment events, checking on every step:
//   I1  at most one node assigned a writable state, and at most one node able
//       to acknowledge a write (a real split brain, not just an assignment);
//   I2  a promoted node holds every acknowledged write;
//   I3  when a node is promoted, no other node can acknowledge writes;
//   I4  never a priority-0 node; the promoted node holds the WAL of every
//       standby that reported;
//   the keeper's table has an entry for every (state, goal) a keeper meets;
//   and, from every state, healing everything brings the group back to one
//   primary plus secondaries (no dead ends).
//
// System steps are free and environment events cost one (0-1 BFS), so each
// state is first reached with the fewest environment events.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fmt/format.h>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tests/model/world.h"

using namespace pgf;
using namespace pgf::model;

namespace {

struct Visit {
  std::uint32_t parent;
  std::uint16_t event;  // index into the table of event texts
  std::uint8_t cost;
};

struct Successor {
  World world;
  std::string event;
  bool environment;
};

std::string node_name(int i) { return fmt::format("n{}", i + 1); }

// Whether an environment event may strike in this state.
bool events_possible(const World& w, const Limits& limits, const DecisionSettings& s, bool* rest) {
  *rest = w.phase == 0 && (w.known_at_rest || at_rest(w, s));
  if (w.env_events >= limits.depth) return false;
  bool may_interrupt = w.interruptions < limits.interruptions;
  if (w.phase >= 1 && w.phase <= w.n) return may_interrupt;  // a keeper killed mid-transition
  return w.phase == 0 && (*rest || may_interrupt);
}

std::vector<Successor> successors(const World& w, const Limits& limits, const DecisionSettings& s,
                                  std::vector<std::pair<std::string, Violations>>& violations, Coverage& cov) {
  std::vector<Successor> out;
  auto add = [&](World next, std::string event, bool env, Violations v) {
    replicate(next);
    check_state(next, v);
    if (!v.empty()) violations.emplace_back(event, v);
    if (env) next.env_events++;
    out.push_back({std::move(next), std::move(event), env});
  };

  // ---- the system: follow the schedule until an event could strike. The steps
  // in between are deterministic, so they are checked but not stored.
  {
    World n = w;
    n.known_at_rest = false;
    Violations v;
    const char* what = "";
    std::optional<World::Hash> last_round;  // the state at the previous round boundary
    for (int steps = 0; steps < 400; ++steps) {
      what = system_step(n, s, v, &cov);
      check_state(n, v);
      if (!v.empty()) break;
      bool may_interrupt = n.interruptions < limits.interruptions && n.env_events < limits.depth;
      if (n.phase >= 1 && n.phase <= n.n && may_interrupt) break;
      if (n.phase != 0) continue;
      World::Hash h = n.hash();
      if (last_round && *last_round == h) {
        n.known_at_rest = true;  // a whole round changed nothing
        break;
      }
      last_round = h;
      if (may_interrupt) break;
    }
    if (!v.empty()) violations.emplace_back(what, v);
    out.push_back({std::move(n), what, false});
  }

  bool rest = false;
  if (!events_possible(w, limits, s, &rest)) return out;
  bool may_interrupt = w.interruptions < limits.interruptions;
  // A keeper dies in the middle of its own transition, at its own turn.
  if (w.phase >= 1 && w.phase <= w.n) {
    int i = w.phase - 1;
    for (int after = 1; after <= 4; ++after) {
      World m = w;
      Violations v;
      if (w.faults < limits.faults && keeper_turn(m, i, s, v, after, &cov)) {
        m.phase = static_cast<std::uint8_t>((m.phase + 1) % (m.n + 2));
        m.interruptions++;
        m.faults++;
        add(std::move(m), fmt::format("keeper {} killed after {} action(s) of its transition", node_name(i), after),
            true, v);
      }
    }
    return out;
  }
  (void)may_interrupt;
  // Other events strike between rounds: at rest any may; while a transition is
  // under way, only `interruptions` of them per trace.
  auto env_add = [&](World next, std::string event, bool env, Violations v) {
    if (!rest) {
      next.interruptions++;
      event += " (mid-transition)";
    }
    add(std::move(next), std::move(event), env, std::move(v));
  };
  bool may_fault = w.faults < limits.faults;
  auto fault = [&](World next, std::string event) {
    if (!may_fault) return;
    next.faults++;
    env_add(std::move(next), std::move(event), true, {});
  };

  // ---- the environment
  for (int i = 0; i < w.n; ++i) {
    const auto& x = w.nodes[i];
    if (x.gone) continue;
    if (x.host_up && x.pg.running) {
      World n = w;
      n.nodes[i].pg.running = false;
      fault(std::move(n), "Postgres on " + node_name(i) + " crashes");
    }
    if (x.host_up) {
      World n = w;
      auto& y = n.nodes[i];
      y.host_up = false;
      y.keeper_alive = false;
      y.last_goal.reset();
      y.pg.running = false;
      fault(std::move(n), "host " + node_name(i) + " lost");
    } else {
      World n = w;
      auto& y = n.nodes[i];
      y.host_up = true;
      y.keeper_alive = true;
      env_add(std::move(n), "host " + node_name(i) + " back", true, {});
    }
    if (x.host_up && x.keeper_alive) {
      World n = w;
      n.nodes[i].keeper_alive = false;
      n.nodes[i].last_goal.reset();
      fault(std::move(n), "keeper " + node_name(i) + " killed");
    }
    if (x.host_up && !x.keeper_alive) {
      World n = w;
      n.nodes[i].keeper_alive = true;
      env_add(std::move(n), "keeper " + node_name(i) + " restarts", true, {});
    }
    {
      World n = w;
      n.nodes[i].link_monitor = !x.link_monitor;
      std::string event = "link monitor-" + node_name(i) + (x.link_monitor ? " cut" : " healed");
      if (x.link_monitor) {
        fault(std::move(n), event);
      } else {
        env_add(std::move(n), event, true, {});
      }
    }
    for (int j = i + 1; j < w.n; ++j) {
      if (w.nodes[j].gone) continue;
      World n = w;
      n.link[i][j] = n.link[j][i] = !w.link[i][j];
      std::string event = fmt::format("link {}-{} {}", node_name(i), node_name(j), w.link[i][j] ? "cut" : "healed");
      if (w.link[i][j]) {
        fault(std::move(n), event);
      } else {
        env_add(std::move(n), event, true, {});
      }
    }
    if (w.writes < limits.writes && x.host_up && x.pg.running && !x.pg.standby) {
      World n = w;
      auto& y = n.nodes[i];
      std::uint8_t id = n.next_write++;
      y.pg.wal.push_back(id);
      replicate(n);
      bool ack = can_acknowledge(n, i);
      // I2 is a promise about writes acknowledged with synchronous replication on.
      bool sync = y.pg.sync.k > 0;
      if (ack && sync) n.acked |= static_cast<std::uint8_t>(1u << id);
      n.writes++;
      env_add(std::move(n),
              fmt::format("client writes {} on {} ({})", id, node_name(i),
                          !ack ? "not acknowledged" : sync ? "acknowledged" : "acknowledged asynchronously"),
              true, {});
    }
  }
  {
    World n = w;
    n.monitor_up = !w.monitor_up;
    if (n.monitor_up) n.monitor_age = 0;
    if (w.monitor_up) {
      fault(std::move(n), "monitor lost");
    } else {
      env_add(std::move(n), "monitor back", true, {});
    }
  }

  // ---- the operator, through what the monitor's API accepts
  if (w.operator_actions < limits.operator_actions && w.monitor_up) {
    int writable = -1;
    for (int i = 0; i < w.n; ++i) {
      if (w.nodes[i].rec.present && w.nodes[i].rec.goal == NodeState::Primary) writable = i;
    }
    auto secondary = [&](int i) {
      const auto& r = w.nodes[i].rec;
      return r.present && r.goal == NodeState::Secondary && r.priority > 0;
    };
    if (writable >= 0 && !w.switchover) {
      for (int i = 0; i < w.n; ++i) {
        if (!secondary(i)) continue;
        World n = w;
        n.switchover = SwitchoverRequest{};
        n.operator_actions++;
        env_add(std::move(n), "operator: perform switchover", true, {});
        break;
      }
      for (int i = 0; i < w.n; ++i) {
        if (!secondary(i)) continue;
        World n = w;
        n.switchover = SwitchoverRequest{i + 1, 0};
        n.operator_actions++;
        env_add(std::move(n), "operator: perform promotion of " + node_name(i), true, {});
      }
    }
    for (int i = 0; i < w.n; ++i) {
      const auto& r = w.nodes[i].rec;
      if (!r.present) continue;
      bool primary = accepts_writes(r.goal);
      bool candidate_elsewhere = false;
      for (int j = 0; j < w.n; ++j) candidate_elsewhere = candidate_elsewhere || (j != i && secondary(j));
      if (!r.maintenance_requested && (r.goal == NodeState::Secondary || r.goal == NodeState::CatchingUp ||
                                       (primary && candidate_elsewhere))) {
        World n = w;
        n.nodes[i].rec.maintenance_requested = true;
        n.operator_actions++;
        env_add(std::move(n), "operator: enable maintenance on " + node_name(i), true, {});
      }
      if (r.maintenance_requested) {
        World n = w;
        n.nodes[i].rec.maintenance_requested = false;
        n.operator_actions++;
        env_add(std::move(n), "operator: disable maintenance on " + node_name(i), true, {});
      }
      int staying = 0;  // the operator keeps at least one node: an empty group is not a failure
      for (int j = 0; j < w.n; ++j) staying += j != i && w.nodes[j].rec.present && !w.nodes[j].rec.drop_requested;
      if (!r.drop_requested && staying > 0 && (!primary || candidate_elsewhere)) {
        World n = w;
        n.nodes[i].rec.drop_requested = true;
        n.operator_actions++;
        env_add(std::move(n), "operator: drop node " + node_name(i), true, {});
      }
    }
  }
  return out;
}

std::string trace(const std::vector<Visit>& visits, const std::vector<std::string>& texts, std::uint32_t at) {
  std::vector<std::string> steps;
  while (at != 0) {
    steps.push_back(texts[visits[at].event]);
    at = visits[at].parent;
  }
  std::string out;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) out += "    " + *it + "\n";
  return out;
}

struct Result {
  size_t states = 0;
  bool ok = true;
  Coverage coverage;
};

Result explore(const Limits& limits, bool quiet) {
  DecisionSettings settings = model_settings(limits.number_sync_standbys);
  std::unordered_map<World::Hash, std::uint32_t, WorldHashHasher> seen;  // state -> index in visits
  std::vector<Visit> visits;
  std::vector<std::string> texts{"start"};
  std::unordered_map<std::string, std::uint16_t> text_ids{{"start", 0}};
  std::deque<std::pair<std::uint32_t, World>> queue;
  WorldHashSet converging;

  World start = initial_world(limits);
  seen.emplace(start.hash(), 0);
  visits.push_back({0, 0, 0});
  queue.emplace_back(0, start);

  auto started = std::chrono::steady_clock::now();
  Result result;
  size_t next_report = 200000;
  while (!queue.empty()) {
    auto [at, w] = std::move(queue.front());
    queue.pop_front();

    // Liveness: from here, with every failure healed, the group recovers.
    {
      Violations v;
      std::string why;
      if (!converges(w, settings, v, &why, converging)) {
        std::fprintf(stderr, "VIOLATION after:\n%s  %s\n%s", trace(visits, texts, at).c_str(),
                     v.empty() ? why.c_str() : ("during recovery: " + v.front()).c_str(), describe(w).c_str());
        result.ok = false;
        result.states = seen.size();
        return result;
      }
      if (converging.size() > 8'000'000) converging.clear();  // a memo, not a record: bound its memory
    }

    std::vector<std::pair<std::string, Violations>> violations;
    auto next = successors(w, limits, settings, violations, result.coverage);
    if (!violations.empty()) {
      const auto& [event, v] = violations.front();
      std::fprintf(stderr, "VIOLATION after:\n%s    %s\n  -> %s\n%s", trace(visits, texts, at).c_str(), event.c_str(),
                   v.front().c_str(), describe(w).c_str());
      result.ok = false;
      result.states = seen.size();
      return result;
    }
    for (auto& s : next) {
      World::Hash h = s.world.hash();
      std::uint8_t cost = s.world.env_events;
      auto it = seen.find(h);
      if (it != seen.end() && visits[it->second].cost <= cost) continue;
      auto [tid, fresh] = text_ids.emplace(s.event, static_cast<std::uint16_t>(texts.size()));
      if (fresh) texts.push_back(s.event);
      auto idx = static_cast<std::uint32_t>(visits.size());
      visits.push_back({at, tid->second, cost});
      seen[h] = idx;
      if (s.environment) {
        queue.emplace_back(idx, std::move(s.world));
      } else {
        queue.emplace_front(idx, std::move(s.world));
      }
    }
    if (!quiet && seen.size() >= next_report) {
      next_report += 200000;
      auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "  ... %zu states, %.0f s\n", seen.size(), secs);
    }
  }
  result.states = seen.size();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  Limits limits;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--nodes") {
      limits.nodes = value();
    } else if (a == "--depth") {
      limits.depth = value();
    } else if (a == "--writes") {
      limits.writes = value();
    } else if (a == "--operator-actions") {
      limits.operator_actions = value();
    } else if (a == "--number-sync-standbys") {
      limits.number_sync_standbys = value();
    } else if (a == "--faults") {
      limits.faults = value();
    } else if (a == "--interruptions") {
      limits.interruptions = value();
    } else if (a == "--priority-zero") {
      limits.priority_zero_node = true;
    } else if (a == "--quiet") {
      quiet = true;
    } else {
      std::fprintf(stderr,
                   "usage: model_check [--nodes 2|3] [--depth N] [--writes N] [--operator-actions N]\n"
                   "                   [--number-sync-standbys N] [--faults N] [--interruptions N] [--priority-zero] [--quiet]\n");
      return 2;
    }
  }
  if (limits.nodes < 1 || limits.nodes > kMaxNodes) {
    std::fprintf(stderr, "--nodes must be 1..%d\n", kMaxNodes);
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  Result r = explore(limits, quiet);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("model check: %d nodes, number_sync_standbys %d%s, depth %d events (at most %d faults, %d writes, %d "
              "operator actions, %d mid-transition): %zu distinct states explored in %.1f s: %s\n",
              limits.nodes, limits.number_sync_standbys, limits.priority_zero_node ? ", last node priority 0" : "",
              limits.depth, limits.faults, limits.writes, limits.operator_actions, limits.interruptions, r.states, secs,
              r.ok ? "no violation" : "VIOLATION (see above)");
  if (r.ok) {
    std::vector<std::string> unused_rules, unused_transitions;
    for (const auto& rule : group_rules()) {
      if (!r.coverage.rules.count(std::string(rule.name))) unused_rules.push_back(std::string(rule.name));
    }
    for (const auto& t : transitions()) {
      if (!r.coverage.transitions.count({t.from, t.to})) {
        unused_transitions.push_back(fmt::format("{}->{}", name(t.from), name(t.to)));
      }
    }
    std::printf("coverage: %zu of %zu rules fired, %zu of %zu keeper transitions ran\n",
                group_rules().size() - unused_rules.size(), group_rules().size(),
                transitions().size() - unused_transitions.size(), transitions().size());
    if (!unused_rules.empty()) std::printf("  rules not reached: %s\n", fmt::format("{}", fmt::join(unused_rules, ", ")).c_str());
    if (!unused_transitions.empty()) {
      std::printf("  transitions not reached: %s\n", fmt::format("{}", fmt::join(unused_transitions, ", ")).c_str());
    }
  }
  return r.ok ? 0 : 1;
}
