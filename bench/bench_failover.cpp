// bench_failover: the primary host is lost under write load. For each run, the
// time from the loss to the first write acknowledged by the new primary
// through the multi-host URI (target_session_attrs=read-write), broken down by
// the monitor's events; the old primary then rejoins and the next run loses
// the other node. At the end every acknowledged write is looked up on the
// final primary (lost writes) and I1 is checked, as in the scenarios.
// Baseline, measured in the same run: planned failovers (`perform failover`),
// the same promotion and client path without the detection of a loss.
//
//   sudo build/bench/bench_failover --runs 5 [--baseline-runs 3] [--cut-link 0|1] [--json bench_failover.json]
//
// --cut-link 1 also takes the lost host's link down (a powered-off machine:
// connections to it time out instead of being refused).
#include <cstdio>

#include "bench/bench_events.h"
#include "bench/bench_util.h"
#include "common/clock.h"
#include "common/error.h"

using namespace pgf;
using namespace pgf::bench;
using namespace pgf::scenario;

namespace {

double first_ack_after(Cluster& c, std::int64_t t0_us, const std::string& node) {
  for (const auto& a : c.read_client_log().writes) {
    if (a.node == node && a.acked_us > t0_us) return (a.acked_us - t0_us) / 1e6;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv, {{"runs", "5"}, {"baseline-runs", "3"}, {"cut-link", "0"}, {"json", "bench_failover.json"}},
            "usage: bench_failover [--runs N] [--baseline-runs N] [--cut-link 0|1] [--json FILE]\n");
  int runs = static_cast<int>(args.num("runs"));
  int baseline_runs = static_cast<int>(args.num("baseline-runs"));
  bool cut_link = args.num("cut-link") != 0;
  try {
    ClusterOptions o;
    o.nodes = {NodeSpec{"a", {}, {}, {}}, NodeSpec{"b", {}, {}, {}}};
    o.writer_interval_ms = 5;
    Cluster c("bench-failover", o);
    std::printf("hosts: %s\n", c.isolated() ? ("network namespaces, subnet " + c.lab().subnet()).c_str()
                                              : ("127.0.0.1 fallback: " + c.lab().fallback_reason()).c_str());
    if (cut_link && !c.isolated()) throw Error("--cut-link 1 needs network namespaces");
    nlohmann::json results = nlohmann::json::array();
    std::vector<double> times, detect, promote;
    std::string primary = "a", standby = "b";
    std::vector<std::vector<std::string>> table{
        {"run", "kind", "lost node", "detected (s)", "promoted (s)", "first write acknowledged (s)"}};
    auto one = [&](int i, bool planned) {
      c.wait_stable(120s);
      c.wait_writes(100, 30s, primary);
      auto loss_wall = wall_ms();
      auto t0 = now_us();
      if (planned) {
        c.cli_ok({"perform", "failover", "--wait", "0"}, 30s);
      } else {
        if (cut_link) c.cut(primary);
        c.lose_host(primary);
      }
      c.wait_writes(1, 60s, standby);
      double t = first_ack_after(c, t0, standby);
      auto ev = monitor_events(c);
      double d = event_after(ev, loss_wall, planned ? "hand-over" : "primary-failed", primary);
      double p = event_after(ev, loss_wall, "promote", standby);
      table.push_back({std::to_string(i), planned ? "planned" : "host lost", primary, fmt_num(d), fmt_num(p), fmt_num(t)});
      std::printf("%s run %d: %s -> %s, first acknowledged write after %.3f s (detected %.3f s, promoted %.3f s)\n",
                  planned ? "planned" : "loss", i, primary.c_str(), standby.c_str(), t, d, p);
      std::fflush(stdout);
      results.push_back({{"run", i}, {"kind", planned ? "planned" : "host_lost"}, {"lost", primary},
                         {"new_primary", standby}, {"detected_s", d}, {"promoted_s", p}, {"first_ack_s", t}});
      if (!planned) {
        if (cut_link) c.heal(primary);
        c.start_keeper(primary);
        times.push_back(t);
        detect.push_back(d);
        promote.push_back(p);
      }
      std::swap(primary, standby);
    };
    std::vector<double> base;
    for (int i = 1; i <= baseline_runs; ++i) {
      one(i, true);
      base.push_back(results.back()["first_ack_s"].get<double>());
    }
    for (int i = 1; i <= runs; ++i) one(i, false);
    auto check = c.check(120s);
    auto left = c.teardown();
    std::printf("\n");
    print_table(table);
    std::printf("\n");
    std::vector<std::vector<std::string>> summary{{"figure", "min", "median", "max", "target"}};
    summary.push_back({"host lost: first write acknowledged (s)", fmt_num(min_of(times)), fmt_num(median(times)),
                       fmt_num(max_of(times)), "median <= 5"});
    summary.push_back({"  of which detection (s)", fmt_num(min_of(detect)), fmt_num(median(detect)),
                       fmt_num(max_of(detect)), ""});
    summary.push_back({"  promotion decided (s)", fmt_num(min_of(promote)), fmt_num(median(promote)),
                       fmt_num(max_of(promote)), ""});
    summary.push_back({"baseline: planned failover (s)", fmt_num(min_of(base)), fmt_num(median(base)),
                       fmt_num(max_of(base)), ""});
    summary.push_back({"acknowledged writes lost", std::to_string(check.lost), "", "", "0"});
    print_table(summary);
    double ratio = median(base) > 0 ? median(times) / median(base) : 0;
    std::printf("\nhost lost / planned (median): %.2fx; median vs target 5 s: %.2fx\n", ratio, median(times) / 5.0);
    std::printf("checker: %s", check.summary().c_str());
    for (const auto& l : left) std::printf("LEFT BEHIND: %s\n", l.c_str());
    nlohmann::json out{{"benchmark", "failover"},
                       {"machine", machine_info()},
                       {"hosts", c.isolated() ? "network namespaces" : "127.0.0.1"},
                       {"cut_link", cut_link},
                       {"runs", results},
                       {"first_ack_s", {{"min", min_of(times)}, {"median", median(times)}, {"max", max_of(times)}}},
                       {"detected_s", {{"min", min_of(detect)}, {"median", median(detect)}, {"max", max_of(detect)}}},
                       {"promoted_s", {{"min", min_of(promote)}, {"median", median(promote)}, {"max", max_of(promote)}}},
                       {"baseline_planned_failover_s", {{"min", min_of(base)}, {"median", median(base)}, {"max", max_of(base)}}},
                       {"ratio_host_lost_to_planned", ratio},
                       {"acknowledged_writes", check.acked},
                       {"acknowledged_writes_lost", check.lost},
                       {"violations", check.violations},
                       {"target", {{"median_s", 5.0}, {"lost", 0}}},
                       {"met", median(times) <= 5.0 && check.lost == 0 && check.violations.empty()}};
    write_json(args.str("json"), out);
    return check.violations.empty() && left.empty() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_failover: %s\n", e.what());
    return 1;
  }
}
