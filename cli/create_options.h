// Options shared by `create monitor` and `create postgres`: TLS (one choice
// required, as pg_autoctl does), --auth, and where given passwords come from
// (a file or the environment, never the command line).
#pragma once

#include <string>

#include "common/secrets.h"
#include "common/tls.h"

namespace CLI {
class App;
}

namespace pgf {

struct SecurityOptions {
  TlsOptions tls;
  std::string auth;          // "" when not given
  std::string secrets_file;  // --secrets-file
};

// --ssl-self-signed, --ssl-ca-file, --server-cert, --server-key, --no-ssl,
// --auth and --secrets-file.
void add_security_options(CLI::App* cmd, SecurityOptions& o, const std::string& auth_help,
                          const std::string& secrets_help);

// The passwords given: --secrets-file, then $PGFAILOVER_SECRETS_FILE and the
// PGFAILOVER_*_PASSWORD variables (which are removed from the environment, so
// no child process inherits them).
RolePasswords given_passwords(const SecurityOptions& o);

}  // namespace pgf
