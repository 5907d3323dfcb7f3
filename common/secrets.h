// The passwords of pgfailover's roles, for --auth scram-sha-256. They are
// born in `create monitor` (generated, or given through a file or environment
// variables, never on the command line), kept only in files of mode 0600 (the
// state directory's `secrets`, and a .pgpass-style `pgpass` for libpq tools),
// handed to libpq in memory or through a passfile, and never logged, printed
// or put on a command line that ps shows. Roles get the SCRAM verifier
// computed on our side (PQencryptPasswordConn), so the password itself never
// travels to a server either, not even into its statement log.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"

namespace pgf {

// How pgfailover's roles authenticate in the pg_hba.conf lines we write.
enum class AuthMethod { Trust, ScramSha256 };
std::string_view name(AuthMethod a);
AuthMethod parse_auth_method(std::string_view text);  // throws naming the accepted values

// Environment variables a password may come from (read once, then removed
// from the environment so no child process inherits them).
inline constexpr const char* kSecretsFileEnv = "PGFAILOVER_SECRETS_FILE";
inline constexpr const char* kKeeperPasswordEnv = "PGFAILOVER_KEEPER_PASSWORD";
inline constexpr const char* kHealthCheckPasswordEnv = "PGFAILOVER_HEALTH_CHECK_PASSWORD";
inline constexpr const char* kReplicationPasswordEnv = "PGFAILOVER_REPLICATION_PASSWORD";

struct RolePasswords {
  std::optional<std::string> keeper;        // pgfailover_node: keepers and the CLI on the monitor
  std::optional<std::string> health_check;  // pgfailover_monitor: the monitor's health checks on the nodes
  std::optional<std::string> replication;   // pgfailover_replicator: streaming, pg_basebackup, pg_rewind

  // A secrets file: INI, section [monitor], keys <role>_password.
  // Throws one line: missing, readable by every user, malformed, or a
  // password that is empty, too short or has characters we do not accept.
  static RolePasswords load(const fs::path& file);
  static std::optional<RolePasswords> load_if_readable(const fs::path& file);
  // PGFAILOVER_*_PASSWORD, and PGFAILOVER_SECRETS_FILE; unsets them all.
  static RolePasswords take_from_environment();
  void save(const fs::path& file) const;  // mode 0600, atomically

  // Fills what is missing here from `other`.
  void fill_missing_from(const RolePasswords& other);
  void generate_missing();
  bool complete() const { return keeper && health_check && replication; }
  bool empty() const { return !keeper && !health_check && !replication; }
  // Every password held (for tests that make sure none leaks).
  std::vector<std::string> all() const;
};

// 32 random letters and digits from /dev/urandom (about 190 bits).
std::string generate_password();
// Throws naming `role` when a password cannot be used (see load()).
void check_password(std::string_view password, std::string_view role);
// One .pgpass line granting `password` to `role` on every host, port and
// database (':' and '\' escaped as libpq wants).
std::string pgpass_line(std::string_view role, std::string_view password);

}  // namespace pgf
