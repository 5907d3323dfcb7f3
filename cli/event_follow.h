// Following what the monitor does after an operator request: LISTEN on
// pgfailover_events, print each new event as it is written, and check the
// group's state on every notification (and every half second, in case a
// notification is lost with a reconnecting monitor) until it is where the
// operator wanted it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cli/monitor_access.h"

namespace pgf {

class EventFollower {
 public:
  // Starts listening and remembers the newest event, so only later ones are printed.
  EventFollower(MonitorApi& api, std::string formation);

  // Events written since the last call (or since construction), oldest first.
  std::vector<Event> take_new_events();

  using Goal = std::function<bool(const std::vector<NodeStatus>&)>;
  // Prints each new event as "  HH:MM:SS.mmm node b: ..." to `out` until
  // `reached(current_state)` holds; false when `timeout` passed first.
  bool follow_until(const Goal& reached, std::chrono::milliseconds timeout, std::ostream& out);

 private:
  MonitorApi& api_;
  std::string formation_;
  std::int64_t last_seen_id_ = 0;
};

// Goals for the commands that wait.
// A node other than `old_primary` is primary and another node of the group is secondary.
EventFollower::Goal new_primary_with_secondary(int group, std::optional<std::int64_t> old_primary);
// `node` is primary (reported and assigned) and another node of its group is secondary.
EventFollower::Goal node_is_primary_with_secondary(const std::string& node);
// `node` has reported the state it is assigned, and that state is one of `states`.
EventFollower::Goal node_reached(const std::string& node, std::vector<std::string> states);
// `node` is no longer registered.
EventFollower::Goal node_gone(const std::string& node);

// The node of `group` whose assigned state accepts writes (the primary), if any.
std::optional<NodeStatus> writable_node(const std::vector<NodeStatus>& nodes, int group);

}  // namespace pgf
