#include "common/log.h"

#include <cstring>
#include <ctime>
#include <cctype>

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

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '.' || c == '-';
}

// password=value, password = 'quoted value' (sslpassword too): the value becomes ***.
std::string redact_password_settings(std::string_view s) {
  static constexpr std::string_view kWord = "password";
  std::string out;
  size_t copied = 0, i = 0;
  while (i + kWord.size() <= s.size()) {
    bool match = true;
    for (size_t k = 0; k < kWord.size() && match; ++k) {
      match = std::tolower(static_cast<unsigned char>(s[i + k])) == kWord[k];
    }
    if (!match) {
      ++i;
      continue;
    }
    size_t j = i + kWord.size();
    while (j < s.size() && is_space(s[j])) ++j;
    if (j >= s.size() || s[j] != '=') {
      i += kWord.size();
      continue;
    }
    ++j;
    while (j < s.size() && is_space(s[j])) ++j;
    size_t value_start = j;
    if (j < s.size() && s[j] == '\'') {
      ++j;
      while (j < s.size() && s[j] != '\'') j += (s[j] == '\\' && j + 1 < s.size()) ? 2 : 1;
      if (j < s.size()) ++j;  // the closing quote
    } else {
      while (j < s.size() && !is_space(s[j]) && s[j] != '&') ++j;
    }
    if (j == value_start) {  // nothing to hide
      i = j;
      continue;
    }
    out.append(s.substr(copied, value_start - copied));
    out += "***";
    copied = i = j;
  }
  out.append(s.substr(copied));
  return out;
}

// scheme://user:secret@host: the secret becomes ***.
std::string redact_uri_passwords(std::string_view s) {
  std::string out;
  size_t copied = 0;
  size_t pos = 0;
  while ((pos = s.find("://", pos)) != std::string_view::npos) {
    size_t scheme = pos;
    while (scheme > 0 && is_scheme_char(s[scheme - 1])) --scheme;
    // A scheme starts with a letter; skip leading digits and signs that cannot.
    while (scheme < pos && !std::isalpha(static_cast<unsigned char>(s[scheme]))) ++scheme;
    size_t user_end = pos + 3;
    while (user_end < s.size() && !is_space(s[user_end]) && s[user_end] != ':' && s[user_end] != '/' &&
           s[user_end] != '@') {
      ++user_end;
    }
    pos += 3;
    if (scheme == pos - 3 || user_end >= s.size() || s[user_end] != ':') continue;
    size_t secret_end = user_end + 1;
    while (secret_end < s.size() && !is_space(s[secret_end]) && s[secret_end] != '@' && s[secret_end] != '/') {
      ++secret_end;
    }
    if (secret_end >= s.size() || s[secret_end] != '@') continue;
    out.append(s.substr(copied, user_end + 1 - copied));
    out += "***";
    copied = secret_end;
    pos = secret_end;
  }
  out.append(s.substr(copied));
  return out;
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  // Hand-written scanners, linear in the length, not std::regex: libstdc++'s
  // regex recurses per character, and a log line with a 100 kB quoted value
  // overflowed the stack and crashed the process that logged it.
  return redact_uri_passwords(redact_password_settings(text));
}

}  // namespace pgf
