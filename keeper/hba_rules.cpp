#include "keeper/hba_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <fmt/format.h>

#include "common/error.h"

namespace pgf {

namespace {

constexpr std::string_view kBegin = "# BEGIN pgfailover: managed by the keeper, rewritten on every change";
constexpr std::string_view kEnd = "# END pgfailover";
constexpr std::string_view kNodeTag = "# node ";

}  // namespace

std::string hba_address(std::string_view host) {
  std::string h(host);
  if (h.empty()) throw Error("empty host name in pg_hba entry");
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    if (v4.s_addr == 0) throw Error("refusing pg_hba access for {}: grant per address, never to every host", h);
    return h + "/32";
  }
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    static const in6_addr any = IN6ADDR_ANY_INIT;
    if (std::equal(std::begin(v6.s6_addr), std::end(v6.s6_addr), std::begin(any.s6_addr))) {
      throw Error("refusing pg_hba access for {}: grant per address, never to every host", h);
    }
    return h + "/128";
  }
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) throw Error("host \"{}\" cannot be used in pg_hba.conf: expected a host name or an IP address", h);
  }
  if (h == "all" || h == "samehost" || h == "samenet") {
    throw Error("host \"{}\" is a pg_hba keyword: grant per address, never to every host", h);
  }
  return h;
}

std::string render_hba_block(const HbaAccess& access) {
  std::string out = std::string(kBegin) + "\n";
  if (!access.local_user.empty()) {
    // The keeper connects over the Unix socket as the OS user it runs as.
    out += fmt::format("local all {} peer # keeper\n", access.local_user);
  }
  std::string_view type = access.tls ? "hostssl" : "host";
  auto peers = access.peers;
  // By node id; the addresses of one node keep their order.
  std::stable_sort(peers.begin(), peers.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& p : peers) {
    auto addr = hba_address(p.host);
    // Streaming and base backups; the postgres database for pg_rewind's source
    // connection and the CHECKPOINT a rejoining node asks for.
    out += fmt::format("{} replication {} {} {} {}{}\n", type, kReplicationRole, addr, access.auth_method, kNodeTag,
                       p.id);
    out += fmt::format("{} postgres {} {} {} {}{}\n", type, kReplicationRole, addr, access.auth_method, kNodeTag, p.id);
  }
  for (const auto& m : access.monitor_hosts) {
    // The health check connects to the postgres database and does nothing else.
    out += fmt::format("{} postgres {} {} {} # monitor\n", type, kHealthCheckRole, hba_address(m), access.auth_method);
  }
  // Nothing else for our roles, whatever lines follow (initdb's own "host all
  // all 127.0.0.1/32" would let them into every database, and in clear text
  // when the grants above are hostssl). The only lines with a wildcard: denials.
  out += fmt::format("host all {},{} all reject # nothing else for pgfailover's roles\n", kReplicationRole,
                     kHealthCheckRole);
  out += fmt::format("host replication {} all reject # nothing else for pgfailover's roles\n", kReplicationRole);
  out += std::string(kEnd) + "\n";
  return out;
}

std::string replace_hba_block(std::string_view pg_hba, std::string_view block) {
  auto begin = pg_hba.find(kBegin);
  if (begin != std::string_view::npos) {
    auto end = pg_hba.find(kEnd, begin);
    if (end != std::string_view::npos) {
      auto after = pg_hba.find('\n', end);
      after = after == std::string_view::npos ? pg_hba.size() : after + 1;
      return std::string(pg_hba.substr(0, begin)) + std::string(block) + std::string(pg_hba.substr(after));
    }
    // A begin marker without an end: drop the marker line only, keep the rest.
    auto eol = pg_hba.find('\n', begin);
    std::string rest = std::string(pg_hba.substr(0, begin)) +
                       std::string(eol == std::string_view::npos ? "" : pg_hba.substr(eol + 1));
    return std::string(block) + rest;
  }
  return std::string(block) + std::string(pg_hba);
}

std::vector<std::int64_t> hba_block_peer_ids(std::string_view pg_hba) {
  std::vector<std::int64_t> ids;
  auto begin = pg_hba.find(kBegin);
  if (begin == std::string_view::npos) return ids;
  auto end = pg_hba.find(kEnd, begin);
  auto block = pg_hba.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
  while (!block.empty()) {
    auto nl = block.find('\n');
    auto line = block.substr(0, nl);
    block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
    if (line.rfind("host replication ", 0) != 0 && line.rfind("hostssl replication ", 0) != 0) continue;
    auto tag = line.rfind(kNodeTag);
    if (tag == std::string_view::npos) continue;
    auto num = line.substr(tag + kNodeTag.size());
    std::int64_t id = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), id);
    if (ec == std::errc() && id > 0) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace pgf
