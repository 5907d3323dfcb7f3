#include "common/log.h"

#include <cstring>
#include <ctime>
#include <regex>

#include "common/clock.h"
#include "common/error.h"

namespace pgf {

std::string errno_text(int err) { return std::strerror(err); }

LogLevel parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warning" || text == "warn") return LogLevel::Warning;
  if (text == "error") return LogLevel::Error;
  throw Error("unknown log level \"{}\": use debug, info, warning or error", text);
}

namespace {
std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO ";
    case LogLevel::Warning: return "WARN ";
    case LogLevel::Error: return "ERROR";
  }
  return "?";
}
}  // namespace

void LogSink::write(LogLevel level, std::string_view component, std::string_view message) {
  std::int64_t ms = wall_ms();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  std::string line = fmt::format("{}.{:03d} {} {}: {}\n", when, static_cast<int>(ms % 1000), level_name(level),
                                 component, redact_secrets(message));
  std::lock_guard lock(mutex_);
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

std::string redact_secrets(std::string_view text) {
  // password=value, password = 'quoted value', sslpassword=..., and user:secret@ in URIs.
  static const std::regex kv(R"(((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+))", std::regex::icase);
  static const std::regex uri(R"(([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@)", std::regex::icase);
  std::string s(text);
  if (s.find("assword") == std::string::npos && s.find('@') == std::string::npos) return s;
  s = std::regex_replace(s, kv, "$1***");
  s = std::regex_replace(s, uri, "$1:***@");
  return s;
}

}  // namespace pgf
