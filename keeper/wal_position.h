// WAL positions and timeline histories as Postgres prints them, and the one
// question the keeper asks of them: can this node stream from that upstream as
// it is, or did its WAL go past the upstream's timeline fork (pg_rewind needed)?
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgf {

using Lsn = std::uint64_t;
using TimelineId = std::uint32_t;

// "16/B374D848" <-> 0x16B374D848. nullopt for anything else (empty, NULL text).
std::optional<Lsn> parse_lsn(std::string_view text);
std::string format_lsn(Lsn lsn);

// One line of a NNNNNNNN.history file: timeline `parent` ended at `switchpoint`
// (the first byte of WAL that belongs to the next timeline).
struct TimelineSwitch {
  TimelineId parent = 0;
  Lsn switchpoint = 0;
  bool operator==(const TimelineSwitch&) const = default;
};
// Parses the content of a history file ("1\t0/3000158\tno recovery target specified").
// Throws pgf::Error naming the bad line.
std::vector<TimelineSwitch> parse_timeline_history(std::string_view text);

enum class Divergence {
  None,      // the node can stream from the upstream as it is
  Diverged,  // the node has WAL the upstream's history does not contain: rewind
};

// `local_tli`/`local_end`: the timeline and the end of WAL (received or
// replayed, whichever is further) of the node; `upstream_history`: the history
// of the upstream's current timeline `upstream_tli`.
// A node on the upstream's timeline is taken as not diverged (it followed it);
// a node on an ancestor timeline diverged if its WAL goes past the point where
// the upstream left that timeline; any other timeline is foreign: diverged.
Divergence check_divergence(TimelineId local_tli, Lsn local_end, TimelineId upstream_tli,
                            const std::vector<TimelineSwitch>& upstream_history);

}  // namespace pgf
