// The monitor's tables as the service sees them: the only code that knows their
// SQL. The decider loads a group snapshot under the group's row lock, writes
// back what decide() returned, and records health checks; all of it through the
// one session that holds the decider lock, so that a decider whose session died
// cannot write anything.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/group_state_machine.h"

namespace pgf {

class PgConnection;

struct GroupKey {
  std::string formation;
  int group = 0;
  auto operator<=>(const GroupKey&) const = default;
};
// "formation/group", the payload of pgfailover_decide.
std::string to_string(const GroupKey& g);
std::optional<GroupKey> parse_group_key(std::string_view payload);

// monitor_setting rows, by name. Values are integers (set_monitor_setting checks).
struct MonitorSettings {
  std::map<std::string, std::int64_t, std::less<>> values;
  std::int64_t get(std::string_view name, std::int64_t fallback) const;
  static MonitorSettings parse(std::string_view name_eq_value_list);  // "a=1,b=2"
};
DecisionSettings decision_settings(const MonitorSettings& s, int number_sync_standbys);

// A group loaded for a decision, with what decide() does not see but the
// writer needs to know whether a row changes.
struct LoadedGroup {
  GroupSnapshot snapshot;
  DecisionSettings settings;
  TimeMs now = 0;                           // the database's clock, read under the lock
};

// A node that finished leaving (goal and report both 'dropped'), deleted.
struct RemovedNode {
  NodeId id = 0;
  std::string name;
  std::string host;
  int port = 0;
};

struct HealthTarget {
  NodeId id = 0;
  std::string name;
  std::string host;
  int port = 0;
};

struct HealthObservation {
  NodeId id = 0;
  bool up = false;
  std::string detail;  // why it counts as down, or how it answered
};

struct HealthChange {
  HealthTarget node;
  Health from = Health::Unknown;
  Health to = Health::Unknown;
  int failures = 0;
};

class GroupStore {
 public:
  explicit GroupStore(PgConnection& db) : db_(db) {}

  // The database's clock, in ms since the epoch: every time in a snapshot comes from it.
  TimeMs clock_ms();
  std::vector<GroupKey> groups();
  MonitorSettings settings();

  // In the caller's transaction: locks the group row (the lock the operator
  // functions take too), deletes the nodes that finished dropping, and loads
  // the rest. nullopt if the group does not exist.
  std::optional<LoadedGroup> lock_and_load(const GroupKey& key, TimeMs monitor_started_at,
                                           std::vector<RemovedNode>& removed);

  // In the same transaction: the changed assignments, one event row per
  // decision event, the group's last primary and switchover request, and the
  // notifications to the keepers concerned and to `show events` watchers.
  // Returns the ids of the nodes whose assignment changed.
  std::vector<NodeId> write(const LoadedGroup& loaded, const Decision& decision,
                            const std::vector<RemovedNode>& removed);

  std::vector<HealthTarget> health_targets();
  // Records the checks (one statement) and returns the nodes whose health
  // changed; for those it also wakes the decider (pgfailover_decide).
  // Health turns bad after `failures_for_bad` failed checks in a row.
  std::vector<HealthChange> record_health(const std::vector<HealthObservation>& checks, int failures_for_bad);

 private:
  PgConnection& db_;
};

}  // namespace pgf
