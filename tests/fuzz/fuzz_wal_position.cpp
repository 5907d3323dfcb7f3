// libFuzzer target: the LSN and timeline-history parsers of keeper/wal_position
// (what Postgres and a peer's history file say) and the divergence check on
// what they return. An accepted LSN must format and parse back to itself.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "keeper/wal_position.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto lsn = pgf::parse_lsn(text)) {
    if (pgf::parse_lsn(pgf::format_lsn(*lsn)) != lsn) __builtin_trap();
  }
  try {
    auto history = pgf::parse_timeline_history(text);
    pgf::TimelineId last = history.empty() ? 1 : history.back().parent + 1;
    for (const auto& s : history) (void)pgf::check_divergence(s.parent, s.switchpoint + 1, last, history);
  } catch (const pgf::Error&) {
  }
  return 0;
}
