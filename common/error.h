// One exception type for failures an operator can act on: the message is the
// whole story ("cannot reach monitor at host:port: connection refused").
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace pgf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  template <typename... Args>
  explicit Error(fmt::format_string<Args...> f, Args&&... args)
      : std::runtime_error(fmt::format(f, std::forward<Args>(args)...)) {}
};

// errno as words, for messages.
std::string errno_text(int err);

}  // namespace pgf
