// `pgfailover run` for a monitor: supervises the monitor's Postgres, applies the
// migrations, health-checks the nodes and, when it holds the decider lock,
// runs the group state machine on every change and timer tick.
#pragma once

namespace pgf {

class ConfigFile;
class LogSink;
class SignalWatch;
struct InstancePaths;

// Returns the process exit code. SIGTERM stops the service and leaves the
// monitor's Postgres running; SIGINT stops both.
int run_monitor(const InstancePaths& paths, const ConfigFile& config, LogSink& log, SignalWatch& signals);

}  // namespace pgf
