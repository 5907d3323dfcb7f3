// INI-style configuration files ("[section]" and "key = value" lines, '#'
// comments), as pg_autoctl and Postgres operators know them. Parsing is strict:
// an unknown shape is an error naming the file and line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgf {

class ConfigFile {
 public:
  // `origin` names the source in errors (a path).
  static ConfigFile parse(std::string_view text, std::string_view origin = "configuration");
  static ConfigFile load(const std::string& path);
  void save(const std::string& path, unsigned mode = 0600) const;
  std::string to_string() const;

  // Keys are "section.name".
  std::optional<std::string> get(std::string_view key) const;
  std::string get_or(std::string_view key, std::string_view fallback) const;
  std::string require(std::string_view key) const;  // throws naming the key and file
  int get_int(std::string_view key, int fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  void set(std::string_view key, std::string_view value);
  bool erase(std::string_view key);
  std::vector<std::string> keys() const;
  const std::string& origin() const { return origin_; }

 private:
  std::map<std::string, std::string> values_;  // "section.name" -> value
  std::string origin_;
};

}  // namespace pgf
