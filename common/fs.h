// Files and directories: atomic writes, temporary directories (RAII), ownership.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace pgf {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p);                 // throws with the path and reason
std::optional<std::string> read_file_if_exists(const fs::path& p);
// Writes to a temporary file in the same directory, fsyncs, renames over `p`:
// readers see the old or the new content, never a mix, even after a crash.
void write_file_atomic(const fs::path& p, std::string_view content, unsigned mode = 0644);
void make_dirs(const fs::path& p, unsigned mode = 0700);
// chown -R to a user (no-op unless running as root).
void chown_tree(const fs::path& p, const std::string& user);
void chown_path(const fs::path& p, const std::string& user);
bool dir_is_empty_or_missing(const fs::path& p);
// Renames `p` to `p.<suffix>.<timestamp>` and returns the new path: data is moved aside, never deleted.
fs::path move_aside(const fs::path& p, std::string_view suffix);

// A directory under $TMPDIR (or /tmp) removed with its content on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "pgfailover", std::optional<std::string> owner = std::nullopt);
  TempDir(TempDir&&) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const fs::path& path() const { return path_; }
  fs::path operator/(std::string_view name) const { return path_ / name; }
  void keep() { keep_ = true; }  // leave it on disk (for post-mortems)

 private:
  fs::path path_;
  bool keep_ = false;
};

}  // namespace pgf
