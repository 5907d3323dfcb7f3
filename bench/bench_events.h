// The monitor's events (show events --json) with their times as wall-clock
// milliseconds, to break a failover down into detection and promotion.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "tests/scenarios/scenario.h"

namespace pgf::bench {

struct MonitorEvent {
  std::int64_t at_ms = 0;  // wall clock
  std::string node, from, to, rule;
};

// "2026-11-21T22:40:01.123456+00:00" -> ms since the epoch.
inline std::int64_t parse_iso_ms(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi;
  double sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = 0;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000 + static_cast<std::int64_t>(sec * 1000);
  auto tz = s.find_first_of("+-Z", 19);
  if (tz != std::string::npos && s[tz] != 'Z') {
    int oh = 0, om = 0;
    std::sscanf(s.c_str() + tz + 1, "%d:%d", &oh, &om);
    std::int64_t off = (oh * 60 + om) * 60000LL;
    ms += s[tz] == '+' ? -off : off;
  }
  return ms;
}

inline std::vector<MonitorEvent> monitor_events(scenario::Cluster& c, int count = 200) {
  std::vector<MonitorEvent> out;
  auto j = nlohmann::json::parse(c.cli_ok({"show", "events", "--count", std::to_string(count), "--json"}).out);
  auto str = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
  for (const auto& e : j.at("events")) {
    out.push_back({parse_iso_ms(str(e.at("at"))), str(e.at("node_name")), str(e.at("from_state")),
                   str(e.at("to_state")), str(e.at("rule"))});
  }
  return out;
}

// The first event at or after `since_ms` matching rule (and node, if given); -1 if none.
inline double event_after(const std::vector<MonitorEvent>& ev, std::int64_t since_ms, const std::string& rule,
                          const std::string& node = "") {
  for (const auto& e : ev) {
    if (e.at_ms >= since_ms && e.rule == rule && (node.empty() || e.node == node)) return (e.at_ms - since_ms) / 1000.0;
  }
  return -1;
}

}  // namespace pgf::bench
