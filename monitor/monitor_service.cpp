#include "monitor/monitor_service.h"

#include "common/error.h"

namespace pgf {

int run_monitor(const InstancePaths&, const ConfigFile&, LogSink&, SignalWatch&) {
  throw Error("the monitor service is not built yet");
}

}  // namespace pgf
