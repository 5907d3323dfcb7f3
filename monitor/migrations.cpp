#include "monitor/migrations.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "common/pg_connection.h"

namespace pgf {

namespace {

// Any constant works as long as nothing else uses it on the monitor database;
// "pgfm" in ASCII.
constexpr std::int64_t kMigrationLockKey = 0x7067666d;

// PgConnection::exec uses the extended protocol, which takes one statement; a
// migration file holds many, so it goes through the simple query protocol.
void exec_script(PgConnection& db, const std::string& sql, const Migration& m) {
  PGresult* r = PQexec(db.raw(), sql.c_str());
  PgResult keep(r);  // frees it
  auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) return;
  if (PQstatus(db.raw()) != CONNECTION_OK) {
    throw PgConnectError("lost connection to the monitor database at {} while applying {}", db.endpoint(), m.name);
  }
  auto field = [&](int code) -> std::string {
    const char* v = r ? PQresultErrorField(r, code) : nullptr;
    return v ? v : "";
  };
  std::string msg = field(PG_DIAG_MESSAGE_PRIMARY);
  if (msg.empty()) msg = PQerrorMessage(db.raw());
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string where = field(PG_DIAG_STATEMENT_POSITION);
  if (!where.empty()) {
    // The server counts characters from 1; say which line of the file that is.
    auto pos = static_cast<size_t>(std::max(1, std::atoi(where.c_str())));
    auto line = 1 + std::count(sql.begin(), sql.begin() + static_cast<long>(std::min(pos, sql.size())), '\n');
    where = fmt::format(" at line {}", line);
  } else if (std::string ctx = field(PG_DIAG_CONTEXT); !ctx.empty()) {
    where = " (" + ctx.substr(0, ctx.find('\n')) + ")";
  }
  std::string state = field(PG_DIAG_SQLSTATE);
  throw PgError(state.empty() ? "XX000" : state,
                fmt::format("migration {} failed{}: {}", m.path.string(), where, msg));
}

}  // namespace

fs::path locate_sql_dir() {
  if (const char* env = std::getenv("PGFAILOVER_SQL_DIR"); env && *env) {
    if (!fs::is_directory(env)) throw Error("PGFAILOVER_SQL_DIR={} is not a directory", env);
    return env;
  }
  std::error_code ec;
  if (fs::is_directory(PGFAILOVER_INSTALL_SQL_DIR, ec)) return PGFAILOVER_INSTALL_SQL_DIR;
  if (fs::is_directory(PGFAILOVER_SOURCE_SQL_DIR, ec)) return PGFAILOVER_SOURCE_SQL_DIR;
  throw Error("cannot find the monitor's SQL migrations: neither {} nor {} exists; set PGFAILOVER_SQL_DIR",
              PGFAILOVER_INSTALL_SQL_DIR, PGFAILOVER_SOURCE_SQL_DIR);
}

std::vector<Migration> list_migrations(const fs::path& dir) {
  static const std::regex good(R"(([0-9]{3})_[A-Za-z0-9_]+\.sql)");
  static const std::regex looks_like(R"([0-9]+_.*\.sql)");
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error("cannot list SQL migrations in {}: {}", dir.string(), ec.message());
  std::map<int, Migration> by_version;
  for (const auto& entry : it) {
    if (!entry.is_regular_file()) continue;
    std::string file = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(file, m, good)) {
      if (std::regex_match(file, looks_like)) {
        throw Error("{}: migration files are named NNN_name.sql (three digits, letters, digits, _)",
                    entry.path().string());
      }
      continue;
    }
    int version = std::stoi(m[1].str());
    if (auto [pos, fresh] = by_version.emplace(version, Migration{version, file, entry.path()}); !fresh) {
      throw Error("two SQL migrations with version {} in {}: {} and {}", version, dir.string(), pos->second.name, file);
    }
  }
  std::vector<Migration> out;
  for (auto& [v, m] : by_version) out.push_back(std::move(m));
  return out;
}

int apply_migrations(PgConnection& db, const fs::path& dir, const Logger& log) {
  auto migrations = list_migrations(dir);
  if (migrations.empty()) throw Error("no SQL migrations (NNN_name.sql) in {}", dir.string());

  // The record table must exist before we can ask what was applied; 001
  // creates it too, for a database set up by hand.
  {
    PgTransaction tx(db);
    tx.exec("SET LOCAL client_min_messages = warning");
    tx.exec("SELECT pg_advisory_xact_lock($1)", {param(kMigrationLockKey)});
    tx.exec("CREATE SCHEMA IF NOT EXISTS pgfailover");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS pgfailover.schema_migration ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    tx.commit();
  }

  std::set<int> known;
  for (const auto& m : migrations) known.insert(m.version);
  auto recorded = db.exec("SELECT version, name FROM pgfailover.schema_migration ORDER BY version");
  for (int i = 0; i < recorded.rows(); ++i) {
    auto v = static_cast<int>(recorded.int64(i, "version"));
    if (!known.count(v)) {
      log.warn("the monitor database has migration {} ({}) that {} does not have: it was set up by a newer pgfailover",
               v, recorded.str(i, "name"), dir.string());
    }
  }

  int applied = 0;
  for (const auto& m : migrations) {
    std::string sql = read_file(m.path);
    PgTransaction tx(db);
    tx.exec("SET LOCAL client_min_messages = warning");
    // Serialises concurrent starters: the loser sees the winner's record.
    tx.exec("SELECT pg_advisory_xact_lock($1)", {param(kMigrationLockKey)});
    auto done = tx.exec("SELECT 1 FROM pgfailover.schema_migration WHERE version = $1", {param(m.version)});
    if (done.rows() > 0) continue;
    exec_script(db, sql, m);
    tx.exec("INSERT INTO pgfailover.schema_migration (version, name) VALUES ($1, $2)",
            {param(m.version), param(m.name)});
    tx.commit();
    log.info("applied migration {}", m.name);
    ++applied;
  }
  return applied;
}

}  // namespace pgf
