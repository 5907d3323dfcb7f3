// pgf_scenario_client: the client host of the fault-injection scenarios and
// benchmarks. Runs until SIGTERM/SIGINT, appending one line per event to --out
// (one write(2) per line on an O_APPEND file, so a reader sees whole lines).
// Times are CLOCK_MONOTONIC microseconds, comparable with the test process's
// steady clock.
//
//   pgf_scenario_client writer --uri URI --out FILE [--interval-ms 10] [--timeout-ms 3000]
//     Inserts 1, 2, 3... into pgf_writes(seq) through the multi-host URI
//     (target_session_attrs=read-write), one autocommit INSERT at a time, and
//     reconnects on any failure. Lines:
//       A <seq> <sent_us> <acked_us> <host:port> <timeline>   acknowledged commit
//       E <seq> <sent_us> <failed_us> <message>                error (outcome unknown)
//       U <seq> <sent_us> <returned_us> <host:port> <notice>   returned, but Postgres warned that the
//                                                              synchronous wait was cancelled: NOT acknowledged
//       T <seq> <sent_us> <given_up_us>                        no answer within --timeout-ms: abandoned
//       C <us> <host:port>                                     connected
//       X <us> <message>                                       could not connect
//     A seq is never reused, so a row whose commit was not acknowledged cannot
//     be confused with an acknowledged one.
//
//   pgf_scenario_client sampler --out FILE --node NAME=CONNINFO... [--period-ms 100] [--ack-timeout-ms 500]
//     Every period, for each node at once (a thread each, one connection each),
//     inserts a probe row and waits --ack-timeout-ms for the acknowledgement.
//     A node blocked on synchronous replication does not acknowledge: its probe
//     stays pending (no new probe is sent) until it returns. Lines:
//       A <node> <sent_us> <acked_us> <timeline>     acknowledged within the timeout
//       L <node> <sent_us> <acked_us> <timeline>     acknowledged later (was blocked)
//       T <node> <sent_us> <now_us>                  not acknowledged within the timeout (still pending)
//       E <node> <sent_us> <failed_us> <message>     refused (read-only, down...)
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};
int g_out = -1;

void on_signal(int) { g_stop = true; }

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void emit(const std::string& line) {
  std::string l = line + "\n";
  (void)!write(g_out, l.data(), l.size());
}

std::string one_line(const char* msg) {
  std::string s = msg ? msg : "";
  for (auto& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s.empty() ? "-" : s;
}

void sleep_us(std::int64_t us) {
  while (us > 0 && !g_stop) {
    auto step = std::min<std::int64_t>(us, 20000);
    usleep(static_cast<useconds_t>(step));
    us -= step;
  }
}

// Set by the notice processor when Postgres says a commit returned without
// its synchronous wait ("The transaction has already committed locally, but
// might not have been replicated to the standby").
struct Unsafe {
  bool flag = false;
  std::string text;  // the notice, for the log
};
void notice_processor(void* arg, const char* message) {
  if (std::strstr(message, "might not have been replicated") || std::strstr(message, "canceling wait for synchronous") ||
      std::strstr(message, "canceling the wait for synchronous")) {
    auto* u = static_cast<Unsafe*>(arg);
    u->flag = true;
    u->text += one_line(message) + " ";
  }
}

enum class Wait { Done, TimedOut, Broken };

// Waits until the pending query's result can be read without blocking.
Wait wait_result(PGconn* c, std::int64_t deadline_us) {
  while (true) {
    if (!PQconsumeInput(c)) return Wait::Broken;
    if (!PQisBusy(c)) return Wait::Done;
    auto left = deadline_us - now_us();
    if (left <= 0 || g_stop) return Wait::TimedOut;
    pollfd p{PQsocket(c), POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left / 1000 + 1, 50)));
    if (rc < 0 && errno != EINTR) return Wait::Broken;
  }
}

// The outcome of one statement, gathered as its results arrive. A commit is
// acknowledged only when the server said ReadyForQuery (PQgetResult returned
// NULL on a healthy connection): CommandComplete (and the RETURNING row) come
// before the commit's synchronous wait, so a first PGRES_TUPLES_OK alone
// proves nothing.
struct Outcome {
  bool done = false;  // every result taken, ReadyForQuery seen or the connection gone
  bool ok = true;
  bool any = false;
  std::string value;  // first column of the first row
  std::string error;
};

// Takes the results that arrive before `deadline_us`. Returns TimedOut when the
// statement is still running then (call again later), else Done or Broken.
Wait collect(PGconn* c, Outcome& o, std::int64_t deadline_us) {
  while (true) {
    auto w = wait_result(c, deadline_us);
    if (w == Wait::TimedOut) return w;
    if (w == Wait::Broken) {
      o.ok = false;
      o.done = true;
      if (o.error.empty()) o.error = one_line(PQerrorMessage(c));
      return w;
    }
    PGresult* r = PQgetResult(c);
    if (!r) {
      o.done = true;
      if (PQstatus(c) != CONNECTION_OK || !o.any) {
        o.ok = false;
        if (o.error.empty()) o.error = one_line(PQerrorMessage(c));
      }
      return Wait::Done;
    }
    auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      if (!o.any && st == PGRES_TUPLES_OK && PQntuples(r) > 0) o.value = PQgetvalue(r, 0, 0);
    } else {
      o.ok = false;
      if (o.error.empty()) o.error = one_line(PQresultErrorMessage(r));
    }
    o.any = true;
    PQclear(r);
  }
}

const char* kTimeline = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int";

int run_writer(const std::string& uri, std::int64_t interval_ms, std::int64_t timeout_ms) {
  std::string sql = std::string("INSERT INTO pgf_writes (seq) VALUES ($1::bigint) RETURNING ") + kTimeline;
  std::int64_t seq = 0;
  PGconn* c = nullptr;
  std::string server;
  Unsafe unsafe;
  while (!g_stop) {
    if (!c) {
      c = PQconnectdb(uri.c_str());
      if (PQstatus(c) != CONNECTION_OK) {
        emit("X " + std::to_string(now_us()) + " " + one_line(PQerrorMessage(c)));
        PQfinish(c);
        c = nullptr;
        sleep_us(20000);
        continue;
      }
      PQsetNoticeProcessor(c, notice_processor, &unsafe);
      server = std::string(PQhost(c)) + ":" + PQport(c);
      emit("C " + std::to_string(now_us()) + " " + server);
    }
    ++seq;
    std::string s = std::to_string(seq);
    const char* params[1] = {s.c_str()};
    unsafe = Unsafe{};
    auto sent = now_us();
    bool drop = false;
    if (!PQsendQueryParams(c, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0)) {
      emit("E " + s + " " + std::to_string(sent) + " " + std::to_string(now_us()) + " " + one_line(PQerrorMessage(c)));
      drop = true;
    } else {
      Outcome o;
      auto w = collect(c, o, sent + timeout_ms * 1000);
      auto done = now_us();
      if (w == Wait::TimedOut) {
        emit("T " + s + " " + std::to_string(sent) + " " + std::to_string(done));
        drop = true;  // abandoned; its outcome stays unknown
      } else if (o.ok && !unsafe.flag) {
        emit("A " + s + " " + std::to_string(sent) + " " + std::to_string(done) + " " + server + " " + o.value);
      } else if (unsafe.flag) {
        // Returned (or died) after Postgres gave up the synchronous wait: not acknowledged.
        emit("U " + s + " " + std::to_string(sent) + " " + std::to_string(done) + " " + server + " " + unsafe.text);
        drop = true;
      } else {
        emit("E " + s + " " + std::to_string(sent) + " " + std::to_string(done) + " " + o.error);
        drop = true;  // this server failed us: find the primary again
      }
    }
    if (drop) {
      PQfinish(c);
      c = nullptr;
      continue;
    }
    if (interval_ms > 0) sleep_us(interval_ms * 1000);
  }
  if (c) PQfinish(c);
  return 0;
}

void sample_node(const std::string& name, const std::string& conninfo, std::int64_t period_ms,
                 std::int64_t ack_timeout_ms, std::int64_t start_us) {
  const std::string sql = std::string("INSERT INTO pgf_probe (node) VALUES ($1) RETURNING ") + kTimeline;
  PGconn* c = nullptr;
  Unsafe unsafe;
  bool pending = false;
  Outcome outcome;
  bool reported_timeout = false;
  std::int64_t sent = 0;
  std::int64_t tick = 0;
  auto drop = [&] {
    if (c) PQfinish(c);
    c = nullptr;
    pending = false;
  };
  while (!g_stop) {
    auto next = start_us + (++tick) * period_ms * 1000;
    if (!c) {
      c = PQconnectdb(conninfo.c_str());
      if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = nullptr;
      } else {
        PQsetNoticeProcessor(c, notice_processor, &unsafe);
      }
    }
    if (c && !pending) {
      const char* params[1] = {name.c_str()};
      unsafe = Unsafe{};
      sent = now_us();
      if (PQsendQueryParams(c, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0)) {
        pending = true;
        outcome = Outcome{};
        reported_timeout = false;
      } else {
        emit("E " + name + " " + std::to_string(sent) + " " + std::to_string(now_us()) + " " +
             one_line(PQerrorMessage(c)));
        drop();
      }
    }
    if (c && pending) {
      auto deadline = reported_timeout ? std::max(next, now_us()) : sent + ack_timeout_ms * 1000;
      auto w = collect(c, outcome, deadline);
      auto done = now_us();
      if (w != Wait::TimedOut) {
        pending = false;
        if (outcome.ok && !unsafe.flag) {
          emit(std::string(reported_timeout ? "L " : "A ") + name + " " + std::to_string(sent) + " " +
               std::to_string(done) + " " + outcome.value);
        } else {
          emit("E " + name + " " + std::to_string(sent) + " " + std::to_string(done) + " " +
               (unsafe.flag ? unsafe.text : outcome.error));
          // A refusal (read-only standby) keeps the session: once promoted,
          // the same session accepts writes.
          if (PQstatus(c) != CONNECTION_OK) drop();
        }
      } else if (!reported_timeout && !g_stop) {
        emit("T " + name + " " + std::to_string(sent) + " " + std::to_string(done));
        reported_timeout = true;
      }
      if (pending && done - sent > 60 * 1000000LL) drop();  // give up on it; reconnect
    }
    auto left = next - now_us();
    if (left > 0) sleep_us(left);
  }
  if (c) PQfinish(c);
}

int run_sampler(const std::vector<std::pair<std::string, std::string>>& nodes, std::int64_t period_ms,
                std::int64_t ack_timeout_ms) {
  std::vector<std::thread> threads;
  auto start = now_us();
  for (const auto& [name, conninfo] : nodes) {
    threads.emplace_back(sample_node, name, conninfo, period_ms, ack_timeout_ms, start);
  }
  for (auto& t : threads) t.join();
  return 0;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "pgf_scenario_client: %s\n"
               "usage: pgf_scenario_client writer --uri URI --out FILE [--interval-ms N] [--timeout-ms N]\n"
               "       pgf_scenario_client sampler --out FILE --node NAME=CONNINFO... [--period-ms N] "
               "[--ack-timeout-ms N]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("missing mode");
  std::string mode = argv[1];
  std::string uri, out;
  std::vector<std::pair<std::string, std::string>> nodes;
  std::int64_t interval_ms = 10, timeout_ms = 3000, period_ms = 100, ack_timeout_ms = 500;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--uri") uri = next();
    else if (a == "--out") out = next();
    else if (a == "--interval-ms") interval_ms = std::atoll(next().c_str());
    else if (a == "--timeout-ms") timeout_ms = std::atoll(next().c_str());
    else if (a == "--period-ms") period_ms = std::atoll(next().c_str());
    else if (a == "--ack-timeout-ms") ack_timeout_ms = std::atoll(next().c_str());
    else if (a == "--node") {
      auto v = next();
      auto eq = v.find('=');
      if (eq == std::string::npos) usage("--node wants NAME=CONNINFO");
      nodes.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else usage(("unknown argument " + a).c_str());
  }
  if (out.empty()) usage("missing --out");
  g_out = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (g_out < 0) usage(("cannot open " + out + ": " + std::strerror(errno)).c_str());
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (mode == "writer") {
    if (uri.empty()) usage("writer needs --uri");
    return run_writer(uri, interval_ms, timeout_ms);
  }
  if (mode == "sampler") {
    if (nodes.empty()) usage("sampler needs --node");
    return run_sampler(nodes, period_ms, ack_timeout_ms);
  }
  usage("mode must be writer or sampler");
}
