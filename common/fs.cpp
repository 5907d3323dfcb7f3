#include "common/fs.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace pgf {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error("cannot read {}: {}", p.string(), errno_text(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> read_file_if_exists(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  return read_file(p);
}

void write_file_atomic(const fs::path& p, std::string_view content, unsigned mode) {
  fs::path tmp = p;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw Error("cannot write {}: {}", p.string(), errno_text(errno));
  ::fchmod(fd, mode);  // umask must not widen or narrow what we asked for
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write {}: {}", p.string(), errno_text(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot write {}: {}", p.string(), errno_text(e));
  }
  if (::rename(tmp.c_str(), p.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot replace {}: {}", p.string(), errno_text(e));
  }
  // Make the rename itself durable.
  int dfd = ::open(p.parent_path().empty() ? "." : p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void make_dirs(const fs::path& p, unsigned mode) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw Error("cannot create directory {}: {}", p.string(), ec.message());
  ::chmod(p.c_str(), mode);
}

namespace {
std::pair<uid_t, gid_t> user_ids(const std::string& user) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    throw Error("unknown user \"{}\"", user);
  }
  return {pw.pw_uid, pw.pw_gid};
}
}  // namespace

void chown_path(const fs::path& p, const std::string& user) {
  if (::geteuid() != 0) return;
  auto [uid, gid] = user_ids(user);
  if (::lchown(p.c_str(), uid, gid) != 0) throw Error("cannot chown {} to {}: {}", p.string(), user, errno_text(errno));
}

void chown_tree(const fs::path& p, const std::string& user) {
  if (::geteuid() != 0) return;
  auto [uid, gid] = user_ids(user);
  if (::lchown(p.c_str(), uid, gid) != 0) throw Error("cannot chown {} to {}: {}", p.string(), user, errno_text(errno));
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ::lchown(it->path().c_str(), uid, gid);
  }
}

bool dir_is_empty_or_missing(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return true;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec);
}

fs::path move_aside(const fs::path& p, std::string_view suffix) {
  fs::path dest = p;
  dest += fmt::format(".{}.{}", suffix, wall_ms() / 1000);
  std::error_code ec;
  fs::rename(p, dest, ec);
  if (ec) throw Error("cannot move {} aside to {}: {}", p.string(), dest.string(), ec.message());
  return dest;
}

TempDir::TempDir(std::string_view prefix, std::optional<std::string> owner) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = fmt::format("{}/{}.XXXXXX", base && *base ? base : "/tmp", prefix);
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw Error("cannot create a temporary directory {}: {}", tmpl, errno_text(errno));
  path_ = buf.data();
  if (owner) chown_path(path_, *owner);
}

TempDir::TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)), keep_(o.keep_) { o.path_.clear(); }

TempDir::~TempDir() {
  if (path_.empty() || keep_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace pgf
