// `pgfailover run` for a data node: the keeper loop.
#pragma once

namespace pgf {

class ConfigFile;
class LogSink;
class SignalWatch;
struct InstancePaths;

// Returns the process exit code. SIGTERM stops the keeper and leaves Postgres
// running; SIGINT stops both (fast shutdown).
int run_keeper(const InstancePaths& paths, const ConfigFile& config, LogSink& log, SignalWatch& signals);

}  // namespace pgf
