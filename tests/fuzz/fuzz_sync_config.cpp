// libFuzzer target: SyncConfig::from_guc, which reads synchronous_standby_names
// as a running (or stopped) Postgres has it. What it accepts must print back
// to the same configuration.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/sync_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = pgf::SyncConfig::from_guc(text);
  if (!parsed) return 0;
  auto again = pgf::SyncConfig::from_guc(parsed->to_guc());
  if (!again || !(*again == *parsed)) __builtin_trap();
  (void)parsed->describe();
  (void)pgf::node_id_from_application_name(text);
  return 0;
}
