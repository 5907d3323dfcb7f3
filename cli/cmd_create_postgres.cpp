#include <CLI/CLI.hpp>

#include "cli/cli.h"

namespace pgf {

void add_create_postgres_command(CLI::App& create, CliEnv&) {
  create.add_subcommand("postgres", "Create or adopt a data node (not built yet)");
}

}  // namespace pgf
