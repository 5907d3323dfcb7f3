#include "cli/fsm_dot.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "keeper/transition_table.h"
#include "monitor/group_state_machine.h"

namespace pgf {

namespace {

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string node_lines(std::string_view prefix, const std::set<NodeState>& used) {
  std::string out;
  for (const auto& i : kNodeStates) {
    if (!used.count(i.state)) continue;
    bool writable = accepts_writes(i.state);
    out += fmt::format("    {}{} [label=\"{}\", tooltip=\"{}\"{}];\n", prefix, i.name, i.name, escape(i.meaning),
                       writable ? ", style=filled, fillcolor=\"#ffd9b3\"" : "");
  }
  return out;
}

std::string group_body(std::string_view prefix) {
  std::set<NodeState> used;
  // One edge per (from, to), labelled with every rule that makes it.
  std::map<std::pair<NodeState, NodeState>, std::vector<std::string_view>> edges;
  for (const auto& r : group_rules()) {
    r.from.for_each([&](NodeState f) {
      edges[{f, r.to}].push_back(r.name);
      used.insert(f);
      used.insert(r.to);
    });
  }
  std::string out = node_lines(prefix, used);
  for (const auto& [ft, rules] : edges) {
    out += fmt::format("    {}{} -> {}{} [label=\"{}\"];\n", prefix, name(ft.first), prefix, name(ft.second),
                       escape(fmt::format("{}", fmt::join(rules, "\\n"))));
  }
  return out;
}

std::string keeper_body(std::string_view prefix) {
  std::set<NodeState> used;
  std::string edges;
  for (const auto& t : transitions()) {
    used.insert(t.from);
    used.insert(t.to);
    std::vector<std::string_view> actions;
    for (Action a : t.actions) actions.push_back(name(a));
    std::string label = actions.empty() ? std::string(t.name) : fmt::format("{}: {}", t.name, fmt::join(actions, ", "));
    edges += fmt::format("    {}{} -> {}{} [label=\"{}\"{}];\n", prefix, name(t.from), prefix, name(t.to),
                         escape(label), t.from == t.to ? ", style=dashed" : "");
  }
  return node_lines(prefix, used) + edges;
}

constexpr const char* kGraphAttrs =
    "  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
    "  edge [fontname=\"Helvetica\", fontsize=9];\n";

}  // namespace

std::string group_state_machine_dot() {
  return fmt::format("digraph group_state_machine {{\n{}{}}}\n", kGraphAttrs, group_body(""));
}

std::string keeper_transition_table_dot() {
  return fmt::format("digraph keeper_transition_table {{\n{}{}}}\n", kGraphAttrs, keeper_body(""));
}

std::string state_machines_dot() {
  return fmt::format(
      "digraph pgfailover {{\n{}"
      "  subgraph cluster_group {{\n    label=\"group state machine (monitor): rules\";\n{}  }}\n"
      "  subgraph cluster_keeper {{\n    label=\"keeper transition table: (current, goal) -> actions\";\n{}  }}\n"
      "}}\n",
      kGraphAttrs, group_body("g_"), keeper_body("k_"));
}

}  // namespace pgf
