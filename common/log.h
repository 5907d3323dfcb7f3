// Logging: one line per message, "time LEVEL component: message".
// A LogSink is created once by main() and passed down; components keep a Logger
// naming themselves. Nothing logs a secret: conninfo strings go through
// redact_secrets() before they are formatted.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace pgf {

enum class LogLevel { Debug, Info, Warning, Error };
LogLevel parse_log_level(std::string_view text);  // throws pgf::Error

class LogSink {
 public:
  explicit LogSink(std::FILE* out = stderr, LogLevel min_level = LogLevel::Info)
      : out_(out), min_level_(min_level) {}
  virtual ~LogSink() = default;
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  bool enabled(LogLevel level) const { return level >= min_level_; }
  void set_min_level(LogLevel level) { min_level_ = level; }
  virtual void write(LogLevel level, std::string_view component, std::string_view message);

 private:
  std::FILE* out_;
  LogLevel min_level_;
  std::mutex mutex_;
};

class Logger {
 public:
  Logger(LogSink& sink, std::string component) : sink_(&sink), component_(std::move(component)) {}
  Logger child(std::string_view sub) const { return Logger(*sink_, component_ + "/" + std::string(sub)); }

  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::Debug, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::Info, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::Warning, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const {
    log(LogLevel::Error, f, std::forward<Args>(args)...);
  }
  LogSink& sink() const { return *sink_; }

 private:
  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (!sink_->enabled(level)) return;
    sink_->write(level, component_, fmt::format(f, std::forward<Args>(args)...));
  }
  LogSink* sink_;
  std::string component_;
};

// Removes passwords from conninfo strings and URIs: "password=xyz" and
// "user:xyz@" become "password=***" and "user:***@". Applied to every log line.
std::string redact_secrets(std::string_view text);

}  // namespace pgf
