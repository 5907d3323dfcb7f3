#include "cli/output.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace pgf {

using nlohmann::json;

namespace {

template <typename T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string or_dash(const std::optional<std::string>& v) { return v && !v->empty() ? *v : "-"; }

// Display width: count UTF-8 code points, not bytes ("→" is one column).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

// ---- TextTable

void TextTable::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::string TextTable::render() const {
  std::vector<size_t> widths;
  for (const auto& c : columns_) widths.push_back(display_width(c.header));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      size_t pad = widths[i] - display_width(cells[i]);
      bool last = i + 1 == cells.size();
      if (columns_[i].align == Align::Right) {
        out += std::string(pad, ' ') + cells[i];
      } else {
        out += cells[i];
        if (!last) out += std::string(pad, ' ');
      }
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string> headers;
  std::vector<std::string> rules;
  for (size_t i = 0; i < columns_.size(); ++i) {
    headers.push_back(columns_[i].header);
    rules.push_back(std::string(widths[i], '-'));
  }
  std::string out = line(headers) + line(rules);
  for (const auto& row : rows_) out += line(row);
  return out;
}

// ---- values

std::string format_bytes(const std::optional<std::int64_t>& bytes) {
  if (!bytes) return "-";
  static constexpr const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(*bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", *bytes) : fmt::format("{:.1f} {}", v, units[unit]);
}

std::string format_seconds(const std::optional<double>& seconds) {
  if (!seconds) return "-";
  return fmt::format("{:.3f} s", *seconds);
}

std::string format_position(const NodeStatus& n) {
  if (!n.lsn && !n.timeline) return "-";
  return fmt::format("{}:{}", n.timeline ? std::to_string(*n.timeline) : "?", n.lsn.value_or("?"));
}

// ---- show state

std::string render_state_table(const std::vector<NodeStatus>& nodes) {
  using A = TextTable::Align;
  TextTable t({{"Name"},
               {"Id", A::Right},
               {"Host:Port"},
               {"Group", A::Right},
               {"TLI:LSN"},
               {"Reported"},
               {"Assigned"},
               {"Health"},
               {"Lag", A::Right},
               {"Lag (s)", A::Right},
               {"Priority", A::Right},
               {"Quorum"}});
  for (const auto& n : nodes) {
    std::string health = n.health;
    if (n.pg_running && !*n.pg_running) health += ", postgres down";
    std::string assigned = n.assigned_state;
    if (n.maintenance_requested && assigned != "maintenance") assigned += " (maintenance requested)";
    t.add_row({n.name, std::to_string(n.id), fmt::format("{}:{}", n.host, n.port), std::to_string(n.group),
               format_position(n), or_dash(n.reported_state), assigned, health, format_bytes(n.lag_bytes),
               format_seconds(n.lag_seconds), std::to_string(n.candidate_priority),
               n.replication_quorum ? "yes" : "no"});
  }
  return t.render();
}

json state_json(const std::string& formation, const std::vector<NodeStatus>& nodes) {
  json list = json::array();
  for (const auto& n : nodes) {
    list.push_back({{"name", n.name},
                    {"id", n.id},
                    {"host", n.host},
                    {"port", n.port},
                    {"group", n.group},
                    {"timeline", or_null(n.timeline)},
                    {"lsn", or_null(n.lsn)},
                    {"reported_state", or_null(n.reported_state)},
                    {"assigned_state", n.assigned_state},
                    {"health", n.health},
                    {"lag_bytes", or_null(n.lag_bytes)},
                    {"lag_seconds", or_null(n.lag_seconds)},
                    {"candidate_priority", n.candidate_priority},
                    {"replication_quorum", n.replication_quorum},
                    // Beyond the documented keys:
                    {"pg_running", or_null(n.pg_running)},
                    {"last_report_at", or_null(n.last_report_at)},
                    {"maintenance_requested", n.maintenance_requested},
                    {"sync_standby_names", or_null(n.sync_standby_names)}});
  }
  return {{"formation", formation}, {"nodes", list}};
}

// ---- events

std::string describe_event(const Event& e) {
  std::string out;
  if (e.node_name) out += "node " + *e.node_name + ": ";
  if (e.from_state || e.to_state) {
    out += e.from_state.value_or("none") + " -> " + e.to_state.value_or("none") + " ";
  }
  out += "(" + e.rule + "): " + e.reason;
  return out;
}

std::string render_events_table(const std::vector<Event>& events) {
  using A = TextTable::Align;
  TextTable t({{"Time"}, {"Id", A::Right}, {"Node"}, {"Group", A::Right}, {"Change"}, {"Rule"}, {"Reason"}});
  for (const auto& e : events) {
    std::string change;
    if (e.from_state || e.to_state) change = e.from_state.value_or("none") + " -> " + e.to_state.value_or("none");
    t.add_row({e.at_display, std::to_string(e.id), e.node_name.value_or("-"),
               e.group ? std::to_string(*e.group) : "-", change.empty() ? "-" : change, e.rule, e.reason});
  }
  return t.render();
}

json event_json(const Event& e) {
  return {{"id", e.id},
          {"at", e.at},
          {"group", or_null(e.group)},
          {"node_id", or_null(e.node_id)},
          {"node_name", or_null(e.node_name)},
          {"from_state", or_null(e.from_state)},
          {"to_state", or_null(e.to_state)},
          {"rule", e.rule},
          {"reason", e.reason}};
}

json events_json(const std::string& formation, const std::vector<Event>& events) {
  json list = json::array();
  for (const auto& e : events) list.push_back(event_json(e));
  return {{"formation", formation}, {"events", list}};
}

// ---- settings

std::string render_settings(const FormationSettings& formation, const std::vector<NodeStatus>& nodes,
                            const std::vector<MonitorSetting>& monitor) {
  using A = TextTable::Align;
  std::string out = fmt::format("Formation {}: dbname {}, number_sync_standbys {}\n\n", formation.formation,
                                formation.dbname, formation.number_sync_standbys);
  TextTable n({{"Node"}, {"Group", A::Right}, {"Candidate priority", A::Right}, {"Replication quorum"}});
  for (const auto& s : nodes) {
    n.add_row({s.name, std::to_string(s.group), std::to_string(s.candidate_priority),
               s.replication_quorum ? "true" : "false"});
  }
  out += n.render() + "\n";
  TextTable m({{"Monitor setting"}, {"Value", A::Right}, {"Range"}, {"Description"}});
  for (const auto& s : monitor) {
    m.add_row({s.name, s.value, fmt::format("{}..{}", s.min_value, s.max_value), s.description});
  }
  return out + m.render();
}

json settings_json(const FormationSettings& formation, const std::vector<NodeStatus>& nodes,
                   const std::vector<MonitorSetting>& monitor) {
  json node_list = json::array();
  for (const auto& s : nodes) {
    node_list.push_back({{"name", s.name},
                         {"group", s.group},
                         {"candidate_priority", s.candidate_priority},
                         {"replication_quorum", s.replication_quorum}});
  }
  json monitor_list = json::array();
  for (const auto& s : monitor) {
    monitor_list.push_back({{"name", s.name},
                            {"value", s.value},
                            {"min_value", s.min_value},
                            {"max_value", s.max_value},
                            {"description", s.description}});
  }
  return {{"formation", formation.formation},
          {"dbname", formation.dbname},
          {"number_sync_standbys", formation.number_sync_standbys},
          {"nodes", node_list},
          {"monitor", monitor_list}};
}

// ---- standby names

std::vector<StandbyNames> standby_names_of(const std::vector<NodeStatus>& nodes) {
  std::map<std::int64_t, std::string> names;
  for (const auto& n : nodes) names[n.id] = n.name;
  std::vector<StandbyNames> out;
  for (const auto& n : nodes) {
    if (!n.sync_standby_names) continue;  // only primary-role nodes carry one
    StandbyNames s{n.group, n.name, *n.sync_standby_names, {}};
    static constexpr std::string_view prefix = "pgfailover_node_";
    for (size_t pos = s.standby_names.find(prefix); pos != std::string::npos;
         pos = s.standby_names.find(prefix, pos + 1)) {
      size_t begin = pos + prefix.size();
      size_t end = begin;
      while (end < s.standby_names.size() && std::isdigit(static_cast<unsigned char>(s.standby_names[end]))) ++end;
      auto id = std::stoll(s.standby_names.substr(begin, end - begin));
      auto it = names.find(id);
      s.standbys.push_back(it != names.end() ? it->second : "node " + std::to_string(id) + " (dropped)");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string render_standby_names(const std::vector<StandbyNames>& groups) {
  using A = TextTable::Align;
  TextTable t({{"Group", A::Right}, {"Primary"}, {"synchronous_standby_names"}, {"Standby nodes"}});
  for (const auto& g : groups) {
    std::string standbys;
    for (const auto& s : g.standbys) standbys += (standbys.empty() ? "" : ", ") + s;
    t.add_row({std::to_string(g.group), g.primary, g.standby_names.empty() ? "'' (asynchronous)" : g.standby_names,
               standbys.empty() ? "-" : standbys});
  }
  return t.render();
}

json standby_names_json(const std::string& formation, const std::vector<StandbyNames>& groups) {
  json list = json::array();
  for (const auto& g : groups) {
    list.push_back(
        {{"group", g.group}, {"primary", g.primary}, {"standby_names", g.standby_names}, {"standbys", g.standbys}});
  }
  return {{"formation", formation}, {"groups", list}};
}

// ---- uris

std::string render_uris(const FormationUris& uris) {
  TextTable t({{"Type"}, {"Name"}, {"Connection string"}});
  t.add_row({"monitor", "monitor", uris.monitor});
  t.add_row({"formation (libpq)", uris.formation, uris.libpq});
  t.add_row({"formation (jdbc)", uris.formation, uris.jdbc});
  return t.render();
}

json uris_json(const FormationUris& uris) {
  return {{"formation", uris.formation}, {"monitor", uris.monitor}, {"libpq", uris.libpq}, {"jdbc", uris.jdbc}};
}

std::string json_text(const json& j) { return j.dump(2) + "\n"; }

}  // namespace pgf
