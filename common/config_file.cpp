#include "common/config_file.h"

#include <cctype>
#include <charconv>

#include "common/error.h"
#include "common/fs.h"

namespace pgf {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

void check_key(std::string_view key) {
  auto dot = key.find('.');
  if (dot == std::string_view::npos || !valid_name(key.substr(0, dot)) || !valid_name(key.substr(dot + 1))) {
    throw Error("invalid configuration key \"{}\": expected section.name", key);
  }
}
}  // namespace

ConfigFile ConfigFile::parse(std::string_view text, std::string_view origin) {
  ConfigFile cfg;
  cfg.origin_ = std::string(origin);
  std::string section;
  int lineno = 0;
  while (!text.empty()) {
    ++lineno;
    auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.find('\0') != std::string_view::npos) throw Error("{}:{}: NUL byte in configuration", origin, lineno);
    if (line.front() == '[') {
      if (line.back() != ']') throw Error("{}:{}: section header without ']'", origin, lineno);
      auto name = trim(line.substr(1, line.size() - 2));
      if (!valid_name(name)) throw Error("{}:{}: invalid section name \"{}\"", origin, lineno, name);
      section = std::string(name);
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos) throw Error("{}:{}: expected key = value, got \"{}\"", origin, lineno, line);
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (section.empty()) throw Error("{}:{}: \"{}\" is outside any [section]", origin, lineno, key);
    if (!valid_name(key)) throw Error("{}:{}: invalid key \"{}\"", origin, lineno, key);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    cfg.values_[section + "." + std::string(key)] = std::string(value);
  }
  return cfg;
}

ConfigFile ConfigFile::load(const std::string& path) { return parse(read_file(path), path); }

std::string ConfigFile::to_string() const {
  std::string out;
  std::string current;
  for (const auto& [key, value] : values_) {
    auto dot = key.find('.');
    std::string section = key.substr(0, dot);
    if (section != current) {
      if (!out.empty()) out += "\n";
      out += "[" + section + "]\n";
      current = section;
    }
    // parse() trims blanks and takes one pair of surrounding double quotes
    // off: such values are written quoted, so what is saved reads back the same.
    bool quote = !value.empty() && (value.front() == ' ' || value.front() == '\t' || value.front() == '\r' ||
                                    value.back() == ' ' || value.back() == '\t' || value.back() == '\r' ||
                                    (value.size() >= 2 && value.front() == '"' && value.back() == '"'));
    out += key.substr(dot + 1) + " = " + (quote ? "\"" + value + "\"" : value) + "\n";
  }
  return out;
}

void ConfigFile::save(const std::string& path, unsigned mode) const { write_file_atomic(path, to_string(), mode); }

std::optional<std::string> ConfigFile::get(std::string_view key) const {
  auto it = values_.find(std::string(key));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string ConfigFile::get_or(std::string_view key, std::string_view fallback) const {
  auto v = get(key);
  return v ? *v : std::string(fallback);
}

std::string ConfigFile::require(std::string_view key) const {
  auto v = get(key);
  if (!v || v->empty()) throw Error("{}: missing setting {}", origin_, key);
  return *v;
}

int ConfigFile::get_int(std::string_view key, int fallback) const {
  auto v = get(key);
  if (!v || v->empty()) return fallback;
  int out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size()) throw Error("{}: {} = \"{}\" is not an integer", origin_, key, *v);
  return out;
}

bool ConfigFile::get_bool(std::string_view key, bool fallback) const {
  auto v = get(key);
  if (!v || v->empty()) return fallback;
  if (*v == "true" || *v == "on" || *v == "yes" || *v == "1") return true;
  if (*v == "false" || *v == "off" || *v == "no" || *v == "0") return false;
  throw Error("{}: {} = \"{}\" is not a boolean (true/false)", origin_, key, *v);
}

void ConfigFile::set(std::string_view key, std::string_view value) {
  check_key(key);
  if (value.find('\n') != std::string_view::npos || value.find('\0') != std::string_view::npos) {
    throw Error("configuration value for {} must be a single line", key);
  }
  values_[std::string(key)] = std::string(value);
}

bool ConfigFile::erase(std::string_view key) { return values_.erase(std::string(key)) > 0; }

std::vector<std::string> ConfigFile::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_) out.push_back(k);
  return out;
}

}  // namespace pgf
