#include "common/secrets.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/config_file.h"
#include "common/error.h"

namespace pgf {

namespace {

// Section [monitor]: the file is born in `create monitor` (and the keepers'
// password had this key before the other two existed; tools read it).
constexpr const char* kKeeperKey = "monitor.pgfailover_node_password";
constexpr const char* kHealthCheckKey = "monitor.pgfailover_monitor_password";
constexpr const char* kReplicationKey = "monitor.pgfailover_replicator_password";

struct Slot {
  const char* key;
  const char* role;
  const char* env;
  std::optional<std::string> RolePasswords::*member;
};
constexpr Slot kSlots[] = {
    {kKeeperKey, "pgfailover_node", kKeeperPasswordEnv, &RolePasswords::keeper},
    {kHealthCheckKey, "pgfailover_monitor", kHealthCheckPasswordEnv, &RolePasswords::health_check},
    {kReplicationKey, "pgfailover_replicator", kReplicationPasswordEnv, &RolePasswords::replication},
};

std::string take_env(const char* name) {
  const char* v = std::getenv(name);
  std::string out = v ? v : "";
  ::unsetenv(name);
  return out;
}

}  // namespace

std::string_view name(AuthMethod a) { return a == AuthMethod::Trust ? "trust" : "scram-sha-256"; }

AuthMethod parse_auth_method(std::string_view text) {
  if (text == "trust") return AuthMethod::Trust;
  if (text == "scram-sha-256") return AuthMethod::ScramSha256;
  throw Error("unknown authentication method \"{}\": use trust or scram-sha-256", text);
}

std::string generate_password() {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string out;
  while (out.size() < 32) {
    unsigned char c = 0;
    if (!urandom.read(reinterpret_cast<char*>(&c), 1)) throw Error("cannot read /dev/urandom for a password");
    if (c < 248) out += alphabet[c % alphabet.size()];  // 248 = 4 * 62: no bias
  }
  return out;
}

void check_password(std::string_view password, std::string_view role) {
  // Never quote the password itself in the message.
  if (password.size() < 8) throw Error("the password of {} is shorter than 8 characters", role);
  if (password.size() > 256) throw Error("the password of {} is longer than 256 characters", role);
  for (char c : password) {
    auto u = static_cast<unsigned char>(c);
    // Printable ASCII without blanks and double quotes: survives the secrets
    // file (which trims and unquotes), .pgpass and conninfo quoting unchanged.
    if (u <= 0x20 || u >= 0x7f || c == '"') {
      throw Error("the password of {} contains a blank, a double quote or a non-printable character", role);
    }
  }
}

std::string pgpass_line(std::string_view role, std::string_view password) {
  std::string escaped;
  for (char c : password) {
    if (c == ':' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "*:*:*:" + std::string(role) + ":" + escaped + "\n";
}

RolePasswords RolePasswords::load(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) throw Error("secrets file {}: {}", file.string(), errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw Error("secrets file {} is not a regular file", file.string());
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    throw Error("secrets file {} is readable or writable by every user (mode {:o}): chmod 600 it first",
                file.string(), st.st_mode & 0777);
  }
  ConfigFile f = ConfigFile::load(file.string());
  RolePasswords out;
  for (const auto& key : f.keys()) {
    bool known = false;
    for (const auto& s : kSlots) known = known || key == s.key;
    if (!known) {
      throw Error("secrets file {}: unknown key {} (expected [monitor] with pgfailover_node_password, "
                  "pgfailover_monitor_password, pgfailover_replicator_password)",
                  file.string(), key);
    }
  }
  for (const auto& s : kSlots) {
    auto v = f.get(s.key);
    if (!v) continue;
    try {
      check_password(*v, s.role);
    } catch (const Error& e) {
      throw Error("secrets file {}: {}", file.string(), e.what());
    }
    out.*(s.member) = *v;
  }
  return out;
}

std::optional<RolePasswords> RolePasswords::load_if_readable(const fs::path& file) {
  if (::access(file.c_str(), R_OK) != 0) return std::nullopt;
  return load(file);
}

RolePasswords RolePasswords::take_from_environment() {
  RolePasswords out;
  // All of them out of the environment first, whatever is wrong with one.
  std::string file = take_env(kSecretsFileEnv);
  std::vector<std::string> values;
  for (const auto& s : kSlots) values.push_back(take_env(s.env));
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& s = kSlots[i];
    const auto& v = values[i];
    if (v.empty()) continue;
    try {
      check_password(v, s.role);
    } catch (const Error& e) {
      throw Error("{}: {}", s.env, e.what());
    }
    out.*(s.member) = v;
  }
  if (!file.empty()) out.fill_missing_from(load(file));
  return out;
}

void RolePasswords::save(const fs::path& file) const {
  ConfigFile f;
  for (const auto& s : kSlots) {
    if (const auto& v = this->*(s.member)) f.set(s.key, *v);
  }
  f.save(file.string(), 0600);
}

void RolePasswords::fill_missing_from(const RolePasswords& other) {
  for (const auto& s : kSlots) {
    if (!(this->*(s.member))) this->*(s.member) = other.*(s.member);
  }
}

void RolePasswords::generate_missing() {
  for (const auto& s : kSlots) {
    if (!(this->*(s.member))) this->*(s.member) = generate_password();
  }
}

std::vector<std::string> RolePasswords::all() const {
  std::vector<std::string> out;
  for (const auto& s : kSlots) {
    if (const auto& v = this->*(s.member)) out.push_back(*v);
  }
  return out;
}

}  // namespace pgf
