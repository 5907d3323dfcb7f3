// The keeper's side of the monitor's SQL API (docs/monitor-api.md):
// register_node, node_active, and LISTEN pgfailover_node_<id> so a new goal
// wakes the keeper at once. One connection, opened lazily and reopened after a
// failure; every error names the monitor's host:port and never a password.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/pg_connection.h"
#include "keeper/transition_table.h"
#include "keeper/wal_position.h"

namespace pgf {

struct NodeRegistration {
  std::string formation = "default";
  std::optional<std::string> name;
  std::string host;
  int port = 5432;
  std::optional<std::int64_t> system_identifier;
  int candidate_priority = 50;
  bool replication_quorum = true;
  int group_id = 0;
};

struct RegisteredNode {
  NodeId id = 0;
  std::string name;
  int group_id = 0;
  NodeState goal = NodeState::Init;
};

// What the keeper reports on every turn (node_active's arguments).
struct NodeReport {
  NodeState state = NodeState::Init;
  std::uint64_t reached_goal_version = 0;  // the monitor's version of the goal `state` was reached for
  bool pg_running = false;
  std::optional<TimelineId> timeline;
  std::optional<Lsn> lsn;
  std::optional<NodeId> upstream;
  bool streaming = false;
  SyncConfig sync;
  std::vector<NodeId> peers_ready;
  std::string replication_json = "[]";
  std::optional<std::int64_t> system_identifier;
};

// What node_active returns: the goal, and the settings a keeper runs with.
struct Assignment {
  Goal goal;
  std::string dbname;
  std::int64_t network_partition_timeout_ms = 10000;
  std::int64_t keeper_poll_ms = 1000;
};

class MonitorClient {
 public:
  // Validates the URI (libpq's parser); throws "malformed monitor URI ...".
  MonitorClient(std::string uri, Logger log);

  RegisteredNode register_node(const NodeRegistration& r);
  // One round trip. Also makes sure the connection LISTENs on the node's channel.
  Assignment node_active(NodeId id, const NodeReport& report);

  // The connection's socket for poll(), or -1 when not connected.
  int socket() const { return conn_.is_open() ? conn_.socket() : -1; }
  // Waits up to `timeout` for a notification on the node's channel; true if one
  // came. Never throws: a lost connection is closed and reopened on the next call.
  bool wait_for_goal_change(std::chrono::milliseconds timeout);
  // Notifications already received, without waiting.
  bool take_goal_change();

  // "host:port" of the monitor, for messages.
  const std::string& endpoint() const { return endpoint_; }
  void disconnect() { conn_.close(); }

 private:
  PgConnection& connection();
  [[noreturn]] void rethrow_unreachable(const std::exception& e);
  std::string conninfo_;
  std::string endpoint_;
  Logger log_;
  PgConnection conn_;
  std::optional<NodeId> listening_;
};

// Parses node_active's `settings` and `peers` jsonb (exposed for unit tests).
std::vector<Peer> parse_peers_json(const std::string& json);
void apply_settings_json(const std::string& json, Assignment& a);

}  // namespace pgf
