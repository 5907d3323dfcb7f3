#include "common/sync_config.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>

namespace pgf {

namespace {
constexpr std::string_view kAppNamePrefix = "pgfailover_node_";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::string standby_application_name(NodeId id) { return fmt::format("{}{}", kAppNamePrefix, id); }

std::optional<NodeId> node_id_from_application_name(std::string_view name) {
  name = trim(name);
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
  if (name.substr(0, kAppNamePrefix.size()) != kAppNamePrefix) return std::nullopt;
  name.remove_prefix(kAppNamePrefix.size());
  NodeId id = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec != std::errc() || end != name.data() + name.size() || id <= 0) return std::nullopt;
  return id;
}

SyncConfig SyncConfig::any(int num_sync, std::vector<NodeId> standbys) {
  std::sort(standbys.begin(), standbys.end());
  standbys.erase(std::unique(standbys.begin(), standbys.end()), standbys.end());
  SyncConfig c;
  c.num_sync = num_sync;
  c.standbys = std::move(standbys);
  if (c.num_sync <= 0 || c.standbys.empty()) return off();
  return c;
}

std::string SyncConfig::to_guc() const {
  if (!enabled()) return "";
  std::string names;
  for (NodeId id : standbys) {
    if (!names.empty()) names += ", ";
    names += standby_application_name(id);
  }
  return fmt::format("ANY {} ({})", num_sync, names);
}

std::optional<SyncConfig> SyncConfig::from_guc(std::string_view guc) {
  guc = trim(guc);
  if (guc.empty()) return off();
  if (guc.substr(0, 4) != "ANY ") return std::nullopt;
  guc.remove_prefix(4);
  guc = trim(guc);
  int k = 0;
  auto [end, ec] = std::from_chars(guc.data(), guc.data() + guc.size(), k);
  if (ec != std::errc() || k <= 0) return std::nullopt;
  guc = trim(guc.substr(static_cast<size_t>(end - guc.data())));
  if (guc.size() < 2 || guc.front() != '(' || guc.back() != ')') return std::nullopt;
  guc = guc.substr(1, guc.size() - 2);
  std::vector<NodeId> ids;
  while (!guc.empty()) {
    auto comma = guc.find(',');
    auto id = node_id_from_application_name(guc.substr(0, comma));
    if (!id) return std::nullopt;
    ids.push_back(*id);
    if (comma == std::string_view::npos) break;
    guc.remove_prefix(comma + 1);
  }
  if (ids.empty()) return std::nullopt;
  return any(k, std::move(ids));
}

std::string SyncConfig::describe() const {
  if (!enabled()) return "off";
  return fmt::format("ANY {} of [{}]", num_sync, fmt::join(standbys, ","));
}

}  // namespace pgf
