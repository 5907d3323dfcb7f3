// What operator commands print: aligned text tables for people, JSON for
// scripts. Pure functions of the API's rows, so the formats are testable
// without a monitor and every command prints the same thing the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "cli/monitor_access.h"

namespace pgf {

// A text table: a header row, a dashed rule, then the rows; columns padded to
// their widest cell, numeric columns aligned right.
class TextTable {
 public:
  enum class Align { Left, Right };
  struct Column {
    std::string header;
    Align align = Align::Left;
  };
  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void add_row(std::vector<std::string> cells);
  std::string render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "1.5 MB", "0 B"; "-" when unknown.
std::string format_bytes(const std::optional<std::int64_t>& bytes);
// "0.012 s"; "-" when unknown.
std::string format_seconds(const std::optional<double>& seconds);
// "2:0/3000148"; "-" when unknown.
std::string format_position(const NodeStatus& n);

// show state
std::string render_state_table(const std::vector<NodeStatus>& nodes);
nlohmann::json state_json(const std::string& formation, const std::vector<NodeStatus>& nodes);

// show events, and the event lines printed while a command waits
std::string render_events_table(const std::vector<Event>& events);
nlohmann::json event_json(const Event& e);
nlohmann::json events_json(const std::string& formation, const std::vector<Event>& events);
// "node b: secondary -> report_lsn (rule): reason"
std::string describe_event(const Event& e);

// show settings
std::string render_settings(const FormationSettings& formation, const std::vector<NodeStatus>& nodes,
                            const std::vector<MonitorSetting>& monitor);
nlohmann::json settings_json(const FormationSettings& formation, const std::vector<NodeStatus>& nodes,
                             const std::vector<MonitorSetting>& monitor);

// show standby-names: per group, the primary's synchronous_standby_names and
// the node names behind its pgfailover_node_<id> entries.
struct StandbyNames {
  int group = 0;
  std::string primary;
  std::string standby_names;
  std::vector<std::string> standbys;  // node names, in the order of standby_names
};
std::vector<StandbyNames> standby_names_of(const std::vector<NodeStatus>& nodes);
std::string render_standby_names(const std::vector<StandbyNames>& groups);
nlohmann::json standby_names_json(const std::string& formation, const std::vector<StandbyNames>& groups);

// show uri
struct FormationUris {
  std::string formation;
  std::string monitor;  // no password, ever
  std::string libpq;
  std::string jdbc;
};
std::string render_uris(const FormationUris& uris);
nlohmann::json uris_json(const FormationUris& uris);

// The JSON text commands print: indented, one trailing newline.
std::string json_text(const nlohmann::json& j);

}  // namespace pgf
