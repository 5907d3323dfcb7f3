#include "keeper/keeper_service.h"

#include "common/error.h"

namespace pgf {

int run_keeper(const InstancePaths&, const ConfigFile&, LogSink&, SignalWatch&) {
  throw Error("the keeper service is not built yet");
}

}  // namespace pgf
