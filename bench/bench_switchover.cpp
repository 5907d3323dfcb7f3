// bench_switchover: planned switchovers under write load. For each run, the
// longest gap between two acknowledged writes (through the multi-host URI)
// from the request until the new primary serves, back and forth between two
// nodes. Baseline, measured in the same run: the longest gap in a window of
// the same length without a switchover.
//
//   sudo build/bench/bench_switchover --runs 5 [--json bench_switchover.json]
#include <cstdio>
#include <thread>

#include "bench/bench_events.h"
#include "bench/bench_util.h"
#include "common/clock.h"
#include "common/error.h"

using namespace pgf;
using namespace pgf::bench;
using namespace pgf::scenario;

namespace {

// Longest gap between consecutive acknowledged writes acknowledged in [from, to].
double longest_gap(const ClientLog& log, std::int64_t from_us, std::int64_t to_us) {
  std::int64_t gap = 0;
  for (size_t i = 1; i < log.writes.size(); ++i) {
    if (log.writes[i].acked_us < from_us || log.writes[i - 1].acked_us > to_us) continue;
    gap = std::max(gap, log.writes[i].acked_us - log.writes[i - 1].acked_us);
  }
  return gap / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv, {{"runs", "5"}, {"json", "bench_switchover.json"}},
            "usage: bench_switchover [--runs N] [--json FILE]\n");
  int runs = static_cast<int>(args.num("runs"));
  try {
    ClusterOptions o;
    o.nodes = {NodeSpec{"a", {}, {}, {}}, NodeSpec{"b", {}, {}, {}}};
    o.writer_interval_ms = 5;
    Cluster c("bench-switchover", o);
    std::printf("hosts: %s\n", c.isolated() ? ("network namespaces, subnet " + c.lab().subnet()).c_str()
                                              : ("127.0.0.1 fallback: " + c.lab().fallback_reason()).c_str());
    std::vector<double> gaps, base, durations;
    nlohmann::json results = nlohmann::json::array();
    std::vector<std::vector<std::string>> table{
        {"run", "from", "to", "longest write gap (s)", "baseline gap (s)", "switchover took (s)"}};
    std::string primary = "a", standby = "b";
    for (int i = 1; i <= runs; ++i) {
      c.wait_stable(120s);
      c.wait_writes(100, 30s, primary);
      auto t0 = now_us();
      c.cli_ok({"perform", "switchover", "--wait", "60"}, 90s);
      c.wait_writes(20, 30s, standby);
      auto t1 = now_us();
      // The same length of time, now, without a switchover.
      std::this_thread::sleep_for(std::chrono::microseconds(t1 - t0));
      auto t2 = now_us();
      auto log = c.read_client_log();
      double g = longest_gap(log, t0, t1), b = longest_gap(log, t1, t2), d = (t1 - t0) / 1e6;
      gaps.push_back(g);
      base.push_back(b);
      durations.push_back(d);
      table.push_back({std::to_string(i), primary, standby, fmt_num(g), fmt_num(b), fmt_num(d)});
      std::printf("run %d: %s -> %s, longest gap %.3f s (baseline %.3f s)\n", i, primary.c_str(), standby.c_str(), g, b);
      std::fflush(stdout);
      results.push_back({{"run", i}, {"from", primary}, {"to", standby}, {"longest_gap_s", g}, {"baseline_gap_s", b},
                         {"duration_s", d}});
      std::swap(primary, standby);
    }
    auto check = c.check(120s);
    auto left = c.teardown();
    std::printf("\n");
    print_table(table);
    std::printf("\n");
    print_table({{"figure", "min", "median", "max", "target"},
                 {"longest write gap (s)", fmt_num(min_of(gaps)), fmt_num(median(gaps)), fmt_num(max_of(gaps)), "<= 1"},
                 {"baseline gap, no switchover (s)", fmt_num(min_of(base)), fmt_num(median(base)), fmt_num(max_of(base)), ""},
                 {"acknowledged writes lost", std::to_string(check.lost), "", "", "0"}});
    double ratio = median(base) > 0 ? median(gaps) / median(base) : 0;
    std::printf("\nswitchover gap / baseline gap (median): %.1fx; worst gap vs target 1 s: %.2fx\n", ratio,
                max_of(gaps) / 1.0);
    std::printf("checker: %s", check.summary().c_str());
    for (const auto& l : left) std::printf("LEFT BEHIND: %s\n", l.c_str());
    write_json(args.str("json"),
               {{"benchmark", "switchover"},
                {"machine", machine_info()},
                {"hosts", c.isolated() ? "network namespaces" : "127.0.0.1"},
                {"runs", results},
                {"longest_gap_s", {{"min", min_of(gaps)}, {"median", median(gaps)}, {"max", max_of(gaps)}}},
                {"baseline_gap_s", {{"min", min_of(base)}, {"median", median(base)}, {"max", max_of(base)}}},
                {"ratio_gap_to_baseline", ratio},
                {"acknowledged_writes_lost", check.lost},
                {"violations", check.violations},
                {"target", {{"longest_gap_s", 1.0}}},
                {"met", max_of(gaps) <= 1.0 && check.lost == 0 && check.violations.empty()}});
    return check.violations.empty() && left.empty() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_switchover: %s\n", e.what());
    return 1;
  }
}
