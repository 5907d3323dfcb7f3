// Connection strings: libpq URIs ("postgresql://...") and key=value conninfo,
// validated with libpq's own parser so we accept exactly what libpq accepts.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace pgf {

class ConnInfo {
 public:
  // Throws pgf::Error("malformed <what>: <libpq's reason>") on bad input.
  static ConnInfo parse(std::string_view text, std::string_view what = "connection string");

  std::string get(const std::string& key, const std::string& fallback = "") const;
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  void set(const std::string& key, const std::string& value) { values_[key] = value; }
  void erase(const std::string& key) { values_.erase(key); }
  const std::map<std::string, std::string>& values() const { return values_; }

  // key='value' form, quoted for libpq.
  std::string to_conninfo() const;
  // "host:port/dbname" style description without user or secrets, for messages.
  std::string describe() const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace pgf
