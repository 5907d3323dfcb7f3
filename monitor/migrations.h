// The monitor's schema as numbered SQL files (sql/NNN_name.sql), applied in
// order, each in its own transaction and recorded in pgfailover.schema_migration,
// so that applying them again changes nothing. Several monitor processes may
// start at once on one database: each migration is applied under an advisory
// lock, and the record is checked under it.
#pragma once

#include <string>
#include <vector>

#include "common/fs.h"
#include "common/log.h"

namespace pgf {

class PgConnection;

struct Migration {
  int version = 0;   // NNN
  std::string name;  // the file name, as recorded
  fs::path path;
};

// $PGFAILOVER_SQL_DIR, else the installed sql/ folder if it exists, else the
// source tree's (a build that runs from its build directory).
fs::path locate_sql_dir();

// The migration files of `dir`, by version. Throws on a file that looks like a
// migration but is misnamed, or on two files with one version: applying an
// ambiguous set would make databases differ silently.
std::vector<Migration> list_migrations(const fs::path& dir);

// Applies the migrations of `dir` not yet recorded; returns how many it applied.
// On failure, the failing migration is rolled back and the error names its file.
int apply_migrations(PgConnection& db, const fs::path& dir, const Logger& log);

}  // namespace pgf
