// Shared by the command files: each adds its command group to the root app.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace pgf {

class LogSink;

struct CliEnv {
  LogSink& log;
  int exit_code = 0;  // commands set a non-zero code for "ran, but the answer is no"
};

void add_do_commands(CLI::App& app, CliEnv& env);

}  // namespace pgf
