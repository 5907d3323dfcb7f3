#include "keeper/wal_position.h"

#include <charconv>
#include <fmt/format.h>

#include "common/error.h"

namespace pgf {

namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Lsn> parse_lsn(std::string_view text) {
  text = trim(text);
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = parse_hex32(text.substr(0, slash));
  auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return (static_cast<Lsn>(*hi) << 32) | *lo;
}

std::string format_lsn(Lsn lsn) { return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xffffffffu); }

std::vector<TimelineSwitch> parse_timeline_history(std::string_view text) {
  std::vector<TimelineSwitch> out;
  int lineno = 0;
  while (!text.empty()) {
    ++lineno;
    auto nl = text.find('\n');
    auto line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    auto tab = line.find_first_of("\t ");
    if (tab == std::string_view::npos) throw Error("timeline history line {} has no switch point: \"{}\"", lineno, line);
    TimelineId tli = 0;
    auto tli_text = line.substr(0, tab);
    auto [end, ec] = std::from_chars(tli_text.data(), tli_text.data() + tli_text.size(), tli);
    if (ec != std::errc() || end != tli_text.data() + tli_text.size() || tli == 0) {
      throw Error("timeline history line {} does not start with a timeline: \"{}\"", lineno, line);
    }
    auto rest = trim(line.substr(tab));
    auto lsn = parse_lsn(rest.substr(0, rest.find_first_of("\t ")));
    if (!lsn) throw Error("timeline history line {} has no valid switch point: \"{}\"", lineno, line);
    if (!out.empty() && tli <= out.back().parent) {
      throw Error("timeline history line {}: timeline {} after {}", lineno, tli, out.back().parent);
    }
    out.push_back({tli, *lsn});
  }
  return out;
}

Divergence check_divergence(TimelineId local_tli, Lsn local_end, TimelineId upstream_tli,
                            const std::vector<TimelineSwitch>& upstream_history) {
  if (local_tli == upstream_tli) return Divergence::None;
  for (const auto& s : upstream_history) {
    if (s.parent == local_tli) return local_end > s.switchpoint ? Divergence::Diverged : Divergence::None;
  }
  return Divergence::Diverged;
}

}  // namespace pgf
