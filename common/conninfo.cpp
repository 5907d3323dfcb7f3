#include "common/conninfo.h"

#include <libpq-fe.h>

#include "common/error.h"
#include "common/log.h"
#include "common/pg_connection.h"

namespace pgf {

ConnInfo ConnInfo::parse(std::string_view text, std::string_view what) {
  std::string s(text);
  if (s.find_first_not_of(" \t\r\f\v") == std::string::npos) throw Error("malformed {}: it is empty", what);
  if (s.find('\0') != std::string::npos || s.find('\n') != std::string::npos) {
    throw Error("malformed {}: it contains a line break or NUL byte", what);
  }
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(s.c_str(), &err);
  if (!opts) {
    std::string reason = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    throw Error("malformed {} \"{}\": {}", what, redact_secrets(s), reason);
  }
  ConnInfo out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val && *o->val) out.values_[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

std::string ConnInfo::get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

std::string ConnInfo::to_conninfo() const {
  std::string out;
  for (const auto& [k, v] : values_) {
    if (!out.empty()) out += ' ';
    out += k + "=" + conninfo_quote(v);
  }
  return out;
}

std::string ConnInfo::describe() const {
  return get("host", "localhost") + ":" + get("port", "5432") + "/" + get("dbname", get("user", "postgres"));
}

}  // namespace pgf
