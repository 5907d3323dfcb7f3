// Synchronous replication as the monitor assigns it and a primary applies it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgf {

using NodeId = std::int64_t;

// The application_name a standby uses, and the name a primary lists it under.
std::string standby_application_name(NodeId id);
std::optional<NodeId> node_id_from_application_name(std::string_view name);

struct SyncConfig {
  int num_sync = 0;               // commits wait for this many of `standbys`; 0: off
  std::vector<NodeId> standbys;   // kept sorted and unique

  static SyncConfig off() { return {}; }
  static SyncConfig any(int num_sync, std::vector<NodeId> standbys);
  bool enabled() const { return num_sync > 0; }
  bool operator==(const SyncConfig&) const = default;

  // The synchronous_standby_names value: "" or ANY k (pgfailover_node_2, ...).
  std::string to_guc() const;
  // Parses what to_guc() produced (and "" / '*'-free ANY lists); nullopt otherwise.
  static std::optional<SyncConfig> from_guc(std::string_view guc);
  // Short form for events and logs: "off" or "ANY 1 of [2,3]".
  std::string describe() const;
};

}  // namespace pgf
