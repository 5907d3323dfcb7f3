#include "cli/create_options.h"

#include <CLI/CLI.hpp>

namespace pgf {

void add_security_options(CLI::App* cmd, SecurityOptions& o, const std::string& auth_help,
                          const std::string& secrets_help) {
  cmd->add_flag("--ssl-self-signed", o.tls.self_signed,
                "TLS with a self-signed certificate made here with openssl; clients use sslmode=require");
  cmd->add_option("--ssl-ca-file", o.tls.ca_file, "TLS verified by clients (verify-full): the CA certificate (PEM)");
  cmd->add_option("--server-cert", o.tls.server_cert, "With --ssl-ca-file: this server's certificate (PEM)");
  cmd->add_option("--server-key", o.tls.server_key, "With --ssl-ca-file: this server's private key (PEM, mode 0600)");
  cmd->add_flag("--no-ssl", o.tls.no_ssl, "No TLS: every connection travels in clear text");
  cmd->add_option("--auth", o.auth, auth_help)->check(CLI::IsMember({"trust", "scram-sha-256"}));
  cmd->add_option("--secrets-file", o.secrets_file, secrets_help);
}

RolePasswords given_passwords(const SecurityOptions& o) {
  // The environment is read (and cleared) in any case, so a variable that is
  // not needed here still reaches no child process.
  auto from_env = RolePasswords::take_from_environment();
  RolePasswords out;
  if (!o.secrets_file.empty()) out = RolePasswords::load(o.secrets_file);
  out.fill_missing_from(from_env);
  return out;
}

}  // namespace pgf
