// Pure parts of the keeper: WAL positions, timeline histories and divergence,
// the managed pg_hba.conf block, the monitor's jsonb, the node configuration.
#include <catch2/catch.hpp>

#include "common/config_file.h"
#include "common/error.h"
#include "keeper/hba_rules.h"
#include "keeper/keeper_config.h"
#include "keeper/monitor_client.h"
#include "keeper/wal_position.h"

using namespace pgf;

TEST_CASE("keeper: LSNs parse and print as Postgres writes them", "[keeper][wal]") {
  REQUIRE(parse_lsn("0/3000158") == Lsn{0x3000158});
  REQUIRE(parse_lsn("16/B374D848") == Lsn{0x16B374D848});
  REQUIRE(format_lsn(0x16B374D848) == "16/B374D848");
  REQUIRE(format_lsn(0) == "0/0");
  REQUIRE_FALSE(parse_lsn("").has_value());
  REQUIRE_FALSE(parse_lsn("3000158").has_value());
  REQUIRE_FALSE(parse_lsn("0/xyz").has_value());
  REQUIRE_FALSE(parse_lsn("123456789/0").has_value());
}

TEST_CASE("keeper: timeline histories and divergence", "[keeper][wal]") {
  auto h = parse_timeline_history("1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2000-01-01\n");
  REQUIRE(h == std::vector<TimelineSwitch>{{1, 0x3000158}, {2, 0x5000000}});
  REQUIRE_THROWS_AS(parse_timeline_history("x\t0/1\n"), Error);
  REQUIRE_THROWS_AS(parse_timeline_history("2\t0/1\n1\t0/2\n"), Error);

  // Same timeline: streams as it is.
  REQUIRE(check_divergence(3, 0x9000000, 3, h) == Divergence::None);
  // An ancestor timeline, stopped before the fork: follows.
  REQUIRE(check_divergence(1, 0x3000158, 3, h) == Divergence::None);
  REQUIRE(check_divergence(2, 0x4000000, 3, h) == Divergence::None);
  // Went past the fork: rewind.
  REQUIRE(check_divergence(1, 0x3000159, 3, h) == Divergence::Diverged);
  REQUIRE(check_divergence(2, 0x5000001, 3, h) == Divergence::Diverged);
  // A timeline the upstream never had (a newer one, or a sibling).
  REQUIRE(check_divergence(4, 0x1000000, 3, h) == Divergence::Diverged);
  REQUIRE(check_divergence(2, 0x1000000, 2, {}) == Divergence::None);
  REQUIRE(check_divergence(1, 0x1000000, 2, {}) == Divergence::Diverged);
}

TEST_CASE("keeper: the pg_hba block is ours, at the top, per address", "[keeper][hba]") {
  REQUIRE(hba_address("10.0.0.5") == "10.0.0.5/32");
  REQUIRE(hba_address("::1") == "::1/128");
  REQUIRE(hba_address("idp002.example") == "idp002.example");
  REQUIRE_THROWS_WITH(hba_address("0.0.0.0"), Catch::Contains("never to every host"));
  REQUIRE_THROWS_WITH(hba_address("::"), Catch::Contains("never to every host"));
  REQUIRE_THROWS_AS(hba_address("all"), Error);
  REQUIRE_THROWS_AS(hba_address("10.0.0.0/8"), Error);
  REQUIRE_THROWS_AS(hba_address("a b"), Error);

  HbaAccess a;
  a.peers = {{3, "10.0.0.3"}, {2, "idp002"}};
  a.monitor_hosts = {"10.0.0.9"};
  a.local_user = "postgres";
  auto block = render_hba_block(a);
  REQUIRE_THAT(block, Catch::Contains("local all postgres peer"));
  REQUIRE_THAT(block, Catch::Contains("host replication pgfailover_replicator idp002 trust # node 2"));
  REQUIRE_THAT(block, Catch::Contains("host replication pgfailover_replicator 10.0.0.3/32 trust # node 3"));
  REQUIRE_THAT(block, Catch::Contains("host postgres pgfailover_monitor 10.0.0.9/32 trust # monitor"));
  REQUIRE(block.find("node 2") < block.find("node 3"));

  std::string original = "# operator's\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n";
  auto with = replace_hba_block(original, block);
  REQUIRE(with.rfind(block, 0) == 0);  // first: pg_hba.conf is first-match
  REQUIRE(with.substr(block.size()) == original);
  REQUIRE(hba_block_peer_ids(with) == std::vector<std::int64_t>{2, 3});

  a.peers = {{2, "idp002"}};
  auto smaller = replace_hba_block(with, render_hba_block(a));
  REQUIRE(hba_block_peer_ids(smaller) == std::vector<std::int64_t>{2});
  REQUIRE(smaller.substr(smaller.size() - original.size()) == original);
  REQUIRE(replace_hba_block(smaller, render_hba_block(a)) == smaller);  // idempotent
  REQUIRE(hba_block_peer_ids(original).empty());
}

TEST_CASE("keeper: the monitor's peers and settings jsonb", "[keeper][monitor]") {
  auto peers = parse_peers_json(R"([{"id": 2, "name": "idp002", "host": "10.0.0.2", "port": 5432}])");
  REQUIRE(peers.size() == 1);
  REQUIRE(peers[0] == Peer{2, "idp002", "10.0.0.2", 5432});
  REQUIRE(parse_peers_json("[]").empty());
  REQUIRE_THROWS_AS(parse_peers_json("{}"), Error);
  REQUIRE_THROWS_AS(parse_peers_json(R"([{"id": 2}])"), Error);

  Assignment a;
  apply_settings_json(R"({"network_partition_timeout_ms": 20000, "keeper_poll_ms": "500", "other": "x"})", a);
  REQUIRE(a.network_partition_timeout_ms == 20000);
  REQUIRE(a.keeper_poll_ms == 500);
}

TEST_CASE("keeper: node configuration is validated with one line per mistake", "[keeper][config]") {
  KeeperConfig c;
  c.pgdata = "/var/lib/postgresql/15/main";
  c.port = 5432;
  c.hostname = "idp001";
  c.monitor_uri = "postgresql://pgfailover_node@sec001:5431/pgfailover";
  REQUIRE_NOTHROW(c.validate());
  auto round = KeeperConfig::from_file(ConfigFile::parse(c.to_file().to_string(), "pgfailover.conf"));
  REQUIRE(round.hostname == "idp001");
  REQUIRE(round.monitor_uri == c.monitor_uri);
  REQUIRE(round.replication_quorum);

  auto bad = c;
  bad.port = 70000;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("out of range 1..65535"));
  bad = c;
  bad.hostname = "idp 001";
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("--hostname \"idp 001\" is invalid"));
  bad = c;
  bad.monitor_uri = "postgresql://sec001:5431/pgfailover?no_such_option=1";
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("malformed monitor URI"));
  bad = c;
  bad.candidate_priority = 101;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("candidate priority 101 is out of range 0..100"));
  bad = c;
  bad.name = "no spaces";
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("node name \"no spaces\" is invalid"));
}
