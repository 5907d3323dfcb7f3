// libFuzzer target: ConfigFile::parse and what `run` builds from a keeper's
// configuration (KeeperConfig::from_file, TLS settings). Anything but a
// pgf::Error is a crash; a parsed file must save and parse back the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config_file.h"
#include "common/error.h"
#include "common/tls.h"
#include "keeper/keeper_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  pgf::ConfigFile cfg;
  try {
    cfg = pgf::ConfigFile::parse(text, "fuzzed.conf");
  } catch (const pgf::Error&) {
    return 0;
  }
  auto again = pgf::ConfigFile::parse(cfg.to_string(), "round trip");
  if (again.keys() != cfg.keys()) __builtin_trap();
  for (const auto& k : cfg.keys()) {
    if (again.get(k) != cfg.get(k)) __builtin_trap();
  }
  try {
    (void)pgf::TlsSettings::from(cfg);
  } catch (const pgf::Error&) {
  }
  try {
    auto keeper = pgf::KeeperConfig::from_file(cfg);
    (void)keeper.to_file().to_string();
  } catch (const pgf::Error&) {
  }
  return 0;
}
