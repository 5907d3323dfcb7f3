#pragma once

#include <chrono>
#include <cstdint>

namespace pgf {

// Wall-clock milliseconds since the epoch: comparable with the monitor's timestamps.
inline std::int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Monotonic milliseconds: for timeouts and intervals measured by one process.
inline std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace pgf
