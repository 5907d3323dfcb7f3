#include "common/names.h"

#include <cctype>

namespace pgf {

bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  auto ok_first = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == ':'; };
  if (!ok_first(host.front())) return false;
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-')) return false;
  }
  return true;
}

bool valid_object_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace pgf
