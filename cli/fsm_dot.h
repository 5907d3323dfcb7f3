// Graphviz of both state machines, generated from the tables in code.
#pragma once

#include <string>

namespace pgf {

std::string group_state_machine_dot();
std::string keeper_transition_table_dot();
// Both, as two clusters of one graph.
std::string state_machines_dot();

}  // namespace pgf
