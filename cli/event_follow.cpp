#include "cli/event_follow.h"

#include <algorithm>
#include <ostream>

#include "cli/output.h"
#include "common/clock.h"
#include "common/node_state.h"

namespace pgf {

namespace {

bool settled(const NodeStatus& n, std::string_view state) {
  return n.assigned_state == state && n.reported_state && *n.reported_state == state;
}

// The time of day of an event ("2024-05-01 12:00:00.123" -> "12:00:00.123").
std::string time_of_day(const std::string& display) {
  auto space = display.find(' ');
  return space == std::string::npos ? display : display.substr(space + 1);
}

}  // namespace

EventFollower::EventFollower(MonitorApi& api, std::string formation) : api_(api), formation_(std::move(formation)) {
  api_.listen_events();
  auto newest = api_.last_events(formation_, 1);
  if (!newest.empty()) last_seen_id_ = newest.back().id;
}

std::vector<Event> EventFollower::take_new_events() {
  // A burst bigger than this between two looks is not shown in full; the
  // table of `show events` has them all.
  constexpr int kWindow = 200;
  auto events = api_.last_events(formation_, kWindow);
  std::vector<Event> fresh;
  for (auto& e : events) {
    if (e.id > last_seen_id_) fresh.push_back(std::move(e));
  }
  if (!fresh.empty()) last_seen_id_ = fresh.back().id;
  return fresh;
}

bool EventFollower::follow_until(const Goal& reached, std::chrono::milliseconds timeout, std::ostream& out) {
  auto deadline = steady_ms() + timeout.count();
  while (true) {
    for (const auto& e : take_new_events()) out << "  " << time_of_day(e.at_display) << "  " << describe_event(e) << "\n";
    out.flush();
    if (reached(api_.current_state(formation_))) return true;
    auto left = deadline - steady_ms();
    if (left <= 0) return false;
    api_.wait_for_events(std::chrono::milliseconds(std::min<std::int64_t>(left, 500)));
  }
}

std::optional<NodeStatus> writable_node(const std::vector<NodeStatus>& nodes, int group) {
  for (const auto& n : nodes) {
    auto s = parse_node_state(n.assigned_state);
    if (n.group == group && s && accepts_writes(*s)) return n;
  }
  return std::nullopt;
}

EventFollower::Goal new_primary_with_secondary(int group, std::optional<std::int64_t> old_primary) {
  return [group, old_primary](const std::vector<NodeStatus>& nodes) {
    const NodeStatus* primary = nullptr;
    for (const auto& n : nodes) {
      if (n.group == group && settled(n, "primary") && (!old_primary || n.id != *old_primary)) primary = &n;
    }
    if (!primary) return false;
    return std::any_of(nodes.begin(), nodes.end(), [&](const NodeStatus& n) {
      return n.group == group && n.id != primary->id && settled(n, "secondary");
    });
  };
}

EventFollower::Goal node_is_primary_with_secondary(const std::string& node) {
  return [node](const std::vector<NodeStatus>& nodes) {
    auto target = std::find_if(nodes.begin(), nodes.end(), [&](const NodeStatus& n) { return n.name == node; });
    if (target == nodes.end() || !settled(*target, "primary")) return false;
    return std::any_of(nodes.begin(), nodes.end(), [&](const NodeStatus& n) {
      return n.group == target->group && n.id != target->id && settled(n, "secondary");
    });
  };
}

EventFollower::Goal node_reached(const std::string& node, std::vector<std::string> states) {
  return [node, states = std::move(states)](const std::vector<NodeStatus>& nodes) {
    for (const auto& n : nodes) {
      if (n.name != node) continue;
      return std::any_of(states.begin(), states.end(), [&](const std::string& s) { return settled(n, s); });
    }
    return false;
  };
}

EventFollower::Goal node_gone(const std::string& node) {
  return [node](const std::vector<NodeStatus>& nodes) {
    return std::none_of(nodes.begin(), nodes.end(), [&](const NodeStatus& n) { return n.name == node; });
  };
}

}  // namespace pgf
