#include <CLI/CLI.hpp>

#include "cli/cli.h"

namespace pgf {

void add_create_monitor_command(CLI::App& create, CliEnv&) {
  create.add_subcommand("monitor", "Create a monitor (not built yet)");
}

}  // namespace pgf
