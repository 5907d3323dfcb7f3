// The pg_hba.conf lines pgfailover owns: one block at the top of the file
// (pg_hba.conf is first-match, and initdb's defaults would otherwise ask our
// roles for passwords), between marker lines, rewritten as a whole. Lines
// outside the block are the operator's and are never touched. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgf {

inline constexpr std::string_view kReplicationRole = "pgfailover_replicator";
inline constexpr std::string_view kHealthCheckRole = "pgfailover_monitor";

struct HbaPeer {
  std::int64_t id = 0;
  std::string host;  // host name or IP address, as registered with the monitor
};

struct HbaAccess {
  std::vector<HbaPeer> peers;               // may replicate from us (and read WAL for pg_rewind)
  std::vector<std::string> monitor_hosts;   // health checks as pgfailover_monitor
  std::string local_user;                   // OS user of the keeper: `local` peer access to its own Postgres
  std::string auth_method = "trust";        // per address and role: trust or scram-sha-256
  // hostssl lines, and plain TCP refused for our roles (else a plain
  // connection could get in through initdb's own "host all all" lines).
  bool tls = false;
};

// "10.0.0.5" -> "10.0.0.5/32", "::1" -> "::1/128", a host name stays as it is.
// Throws pgf::Error for something that is neither (spaces, quotes, '/', '#'),
// and for 0.0.0.0/0-like wildcards: access is granted per address, never to all.
std::string hba_address(std::string_view host);

// The block for `access`, marker lines included.
std::string render_hba_block(const HbaAccess& access);
// `pg_hba` with its pgfailover block replaced by `block` (or inserted at the top).
std::string replace_hba_block(std::string_view pg_hba, std::string_view block);
// The node ids the block in `pg_hba` grants replication to.
std::vector<std::int64_t> hba_block_peer_ids(std::string_view pg_hba);

}  // namespace pgf
