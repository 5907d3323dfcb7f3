// Names that come from outside (command line, configuration files, the
// keeper's state, the monitor's answers) and end up in pg_hba.conf,
// connection strings, file names and SQL: what we accept, in one place.
#pragma once

#include <string_view>

namespace pgf {

// Host names and addresses as the monitor accepts them (register_node):
// letters, digits, '.', '_', ':', '-', starting with a letter, digit or ':'
// (IPv6), at most 253 characters.
bool valid_host_name(std::string_view host);
// Node, formation and database names: letters, digits, '_', '-', 1..63 characters.
bool valid_object_name(std::string_view name);

}  // namespace pgf
