#include "common/node_state.h"

namespace pgf {

std::optional<NodeState> parse_node_state(std::string_view text) {
  for (const auto& s : kNodeStates) {
    if (s.name == text) return s.state;
  }
  return std::nullopt;
}

static_assert([] {
  for (size_t i = 0; i < kNodeStates.size(); ++i) {
    if (static_cast<size_t>(kNodeStates[i].state) != i) return false;
  }
  return true;
}(), "kNodeStates must list the states in enum order");

}  // namespace pgf
