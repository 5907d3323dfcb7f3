#include "common/instance_paths.h"

#include <cstdlib>

#include "common/error.h"

namespace pgf {

InstancePaths InstancePaths::for_pgdata(const fs::path& pgdata, const std::optional<fs::path>& state_dir) {
  InstancePaths p;
  std::error_code ec;
  p.pgdata = fs::weakly_canonical(fs::absolute(pgdata), ec);
  if (ec || p.pgdata.empty()) p.pgdata = fs::absolute(pgdata);
  if (p.pgdata.filename().empty()) p.pgdata = p.pgdata.parent_path();  // trailing slash
  if (state_dir) {
    p.state_dir = fs::absolute(*state_dir);
  } else {
    p.state_dir = p.pgdata;
    p.state_dir += ".pgfailover";
  }
  return p;
}

fs::path resolve_pgdata(const std::string& option_value) {
  if (!option_value.empty()) return option_value;
  if (const char* env = std::getenv("PGDATA"); env && *env) return env;
  throw Error("no data directory: give --pgdata DIR or set PGDATA");
}

}  // namespace pgf
