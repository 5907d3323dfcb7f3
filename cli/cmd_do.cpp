// `pgfailover do ...`: developer and documentation commands.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/fsm_dot.h"
#include "keeper/transition_table.h"
#include "monitor/group_state_machine.h"

namespace pgf {

namespace {

void print_tables() {
  std::cout << "Group state machine rules (first match wins, top to bottom):\n";
  for (const auto& r : group_rules()) {
    std::string from;
    r.from.for_each([&](NodeState s) { from += (from.empty() ? "" : "|") + std::string(name(s)); });
    std::cout << "  " << r.name << ": " << from << " -> " << name(r.to) << "\n      when " << r.when << "\n";
  }
  std::cout << "\nKeeper transition table:\n";
  for (const auto& t : transitions()) {
    std::cout << "  " << name(t.from) << " -> " << name(t.to) << " (" << t.name << "):";
    if (t.actions.empty()) std::cout << " nothing";
    for (Action a : t.actions) std::cout << " " << name(a);
    std::cout << "\n";
  }
}

}  // namespace

void add_do_commands(CLI::App& app, CliEnv&) {
  auto* cmd = app.add_subcommand("do", "Internal and documentation commands");
  cmd->require_subcommand(1);
  auto* fsm = cmd->add_subcommand("fsm", "Show the group state machine and the keeper transition table");
  fsm->footer("Example:\n  pgfailover do fsm --dot | dot -Tsvg > state-machines.svg");
  auto which = std::make_shared<std::string>("both");
  auto dot = std::make_shared<bool>(false);
  fsm->add_flag("--dot", *dot, "Print Graphviz instead of text");
  fsm->add_option("--machine", *which, "group, keeper or both")->check(CLI::IsMember({"group", "keeper", "both"}));
  fsm->callback([which, dot] {
    if (!*dot) {
      print_tables();
    } else if (*which == "group") {
      std::cout << group_state_machine_dot();
    } else if (*which == "keeper") {
      std::cout << keeper_transition_table_dot();
    } else {
      std::cout << state_machines_dot();
    }
  });
}

}  // namespace pgf
