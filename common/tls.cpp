#include "common/tls.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config_file.h"
#include "common/conninfo.h"
#include "common/error.h"
#include "common/names.h"
#include "common/process.h"

namespace pgf {

namespace {

constexpr const char* kModeKey = "ssl.mode";
constexpr const char* kCertKey = "ssl.cert_file";
constexpr const char* kKeyKey = "ssl.key_file";
constexpr const char* kCaKey = "ssl.ca_file";

bool is_ip_address(const std::string& host) {
  in6_addr buf{};
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 || inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

// Postgres's own rule for ssl_key_file (be-secure-common.c): owned by the
// server's user and 0600 or less, or owned by root and 0640 or less. Checked
// here so create says it in one line instead of a server that will not start.
void check_private_key_mode(const fs::path& key, std::string_view option) {
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) throw Error("{} {}: {}", option, key.string(), errno_text(errno));
  bool root_owned = st.st_uid == 0;
  if (!root_owned && st.st_uid != ::geteuid()) {
    throw Error("{} {} belongs to another user: Postgres reads a private key owned by the user it runs as, or by root",
                option, key.string());
  }
  mode_t too_open = root_owned ? (S_IWGRP | S_IXGRP | S_IRWXO) : (S_IRWXG | S_IRWXO);
  if ((st.st_mode & too_open) != 0) {
    throw Error("{} {} is readable or writable by others (mode {:o}): the private key must be mode 0600{}", option,
                key.string(), st.st_mode & 0777, root_owned ? " (or 0640 when owned by root)" : "");
  }
}

void check_readable_file(const std::string& path, std::string_view option) {
  if (path.empty()) throw Error("{} needs a file name", option);
  if (path.find('\n') != std::string::npos || path.find('\'') != std::string::npos) {
    throw Error("{} \"{}\": file names with quotes or line breaks are not accepted", option, path);
  }
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("{} {}: no such file", option, path);
  if (::access(path.c_str(), R_OK) != 0) throw Error("{} {}: {}", option, path, errno_text(errno));
}

// The last line openssl printed, for one-line errors.
std::string openssl_reason(const CommandResult& r) {
  std::string text = r.err.empty() ? r.out : r.err;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

CommandResult openssl(const std::vector<std::string>& args, const std::string& what) {
  ProcessSpec spec;
  spec.argv = {"openssl"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  CommandResult r;
  try {
    r = run_command(spec, std::chrono::seconds(60));
  } catch (const Error& e) {
    throw Error("{}: cannot run openssl ({}); install the openssl package", what, e.what());
  }
  if (!r.status.ok()) throw Error("{}: {}", what, openssl_reason(r));
  return r;
}

// The public key of a certificate and of a private key, as PEM: equal when
// the two belong together.
void check_key_matches_certificate(const fs::path& cert, const fs::path& key) {
  auto from_cert = openssl({"x509", "-noout", "-pubkey", "-in", cert.string()},
                           "--server-cert " + cert.string() + " is not a PEM certificate");
  // stdin is /dev/null: a key protected by a passphrase fails here instead of prompting.
  auto from_key = openssl({"pkey", "-pubout", "-in", key.string(), "-passin", "pass:"},
                          "--server-key " + key.string() +
                              " is not a readable PEM private key (keys with a passphrase are not supported)");
  if (from_cert.out != from_key.out) {
    throw Error("--server-key {} does not belong to --server-cert {}", key.string(), cert.string());
  }
}

}  // namespace

std::string_view name(TlsMode m) {
  switch (m) {
    case TlsMode::Off: return "off";
    case TlsMode::SelfSigned: return "self-signed";
    case TlsMode::VerifyFull: return "verify-full";
  }
  return "off";
}

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  for (auto m : {TlsMode::Off, TlsMode::SelfSigned, TlsMode::VerifyFull}) {
    if (name(m) == text) return m;
  }
  return std::nullopt;
}

std::string TlsSettings::client_sslmode() const {
  switch (mode) {
    case TlsMode::Off: return "";
    case TlsMode::SelfSigned: return "require";
    case TlsMode::VerifyFull: return "verify-full";
  }
  return "";
}

void TlsSettings::apply_to(ConnInfo& ci, std::string_view what) const {
  if (!enabled()) return;
  if (ci.has("sslmode")) {
    auto given = ci.get("sslmode");
    bool weaker = given == "disable" || given == "allow" || given == "prefer" ||
                  (mode == TlsMode::VerifyFull && given != "verify-full");
    if (weaker) {
      throw Error("{} asks for sslmode={}, but TLS is on ({}): use sslmode={} or leave sslmode out", what, given,
                  name(mode), client_sslmode());
    }
  } else {
    ci.set("sslmode", client_sslmode());
  }
  if (mode == TlsMode::VerifyFull && !ci.has("sslrootcert")) ci.set("sslrootcert", ca_file.string());
}

std::map<std::string, std::string> TlsSettings::server_settings() const {
  if (!enabled()) return {};
  std::map<std::string, std::string> s{
      {"ssl", "on"},
      {"ssl_cert_file", cert_file.string()},
      {"ssl_key_file", key_file.string()},
      {"ssl_min_protocol_version", "TLSv1.2"},
  };
  if (mode == TlsMode::VerifyFull) s["ssl_ca_file"] = ca_file.string();
  return s;
}

TlsSettings TlsSettings::from(const ConfigFile& f) {
  TlsSettings t;
  auto mode_text = f.get_or(kModeKey, "off");
  auto mode = parse_tls_mode(mode_text);
  if (!mode) {
    throw Error("{}: {} = \"{}\" is not a TLS mode (off, self-signed or verify-full)", f.origin(), kModeKey, mode_text);
  }
  t.mode = *mode;
  if (!t.enabled()) return t;
  // A server's own files; a monitor installed into someone else's Postgres has none.
  t.cert_file = f.get_or(kCertKey, "");
  t.key_file = f.get_or(kKeyKey, "");
  if (t.cert_file.empty() != t.key_file.empty()) {
    throw Error("{}: {} and {} go together", f.origin(), kCertKey, kKeyKey);
  }
  if (t.mode == TlsMode::VerifyFull) t.ca_file = f.require(kCaKey);
  for (const auto* p : {&t.cert_file, &t.key_file, &t.ca_file}) {
    if (!p->empty() && !p->is_absolute()) {
      throw Error("{}: the TLS file {} must be an absolute path", f.origin(), p->string());
    }
    if (p->string().find('\'') != std::string::npos) {
      throw Error("{}: the TLS file name {} contains a quote", f.origin(), p->string());
    }
  }
  return t;
}

void TlsSettings::save_to(ConfigFile& f) const {
  f.set(kModeKey, name(mode));
  f.erase(kCertKey);
  f.erase(kKeyKey);
  f.erase(kCaKey);
  if (!enabled()) return;
  if (!cert_file.empty()) f.set(kCertKey, cert_file.string());
  if (!key_file.empty()) f.set(kKeyKey, key_file.string());
  if (mode == TlsMode::VerifyFull) f.set(kCaKey, ca_file.string());
}

void TlsSettings::check_files() const {
  if (!enabled()) return;
  if (cert_file.empty() || key_file.empty()) throw Error("TLS is on but no certificate and key are configured");
  check_readable_file(cert_file.string(), "TLS certificate");
  check_readable_file(key_file.string(), "TLS private key");
  check_private_key_mode(key_file, "TLS private key");
  if (mode == TlsMode::VerifyFull) check_readable_file(ca_file.string(), "TLS CA file");
}

TlsSettings tls_from_options(const TlsOptions& o, const fs::path& state_dir, bool serves_tls) {
  bool ca_given = !o.ca_file.empty() || !o.server_cert.empty() || !o.server_key.empty();
  int choices = int(o.self_signed) + int(o.no_ssl) + int(ca_given);
  if (choices == 0) throw Error("{}", kTlsOptionsHelp);
  if (choices > 1) {
    throw Error("--ssl-self-signed, --no-ssl and --ssl-ca-file/--server-cert/--server-key exclude each other: give one");
  }
  TlsSettings t;
  if (o.no_ssl) return t;
  if (o.self_signed) {
    t.mode = TlsMode::SelfSigned;
    if (!serves_tls) return t;
    t.cert_file = fs::absolute(state_dir / "server.crt");
    t.key_file = fs::absolute(state_dir / "server.key");
    return t;
  }
  t.mode = TlsMode::VerifyFull;
  if (!serves_tls) {
    if (o.ca_file.empty() || !o.server_cert.empty() || !o.server_key.empty()) {
      throw Error("this server's TLS is not ours to set up: give only --ssl-ca-file, the CA its certificate is "
                  "checked against");
    }
    check_readable_file(o.ca_file, "--ssl-ca-file");
    t.ca_file = fs::absolute(o.ca_file);
    return t;
  }
  if (o.ca_file.empty() || o.server_cert.empty() || o.server_key.empty()) {
    throw Error("verify-full TLS needs all three of --ssl-ca-file, --server-cert and --server-key");
  }
  check_readable_file(o.ca_file, "--ssl-ca-file");
  check_readable_file(o.server_cert, "--server-cert");
  check_readable_file(o.server_key, "--server-key");
  t.ca_file = fs::absolute(o.ca_file);
  t.cert_file = fs::absolute(o.server_cert);
  t.key_file = fs::absolute(o.server_key);
  check_private_key_mode(t.key_file, "--server-key");
  check_key_matches_certificate(t.cert_file, t.key_file);
  openssl({"verify", "-CAfile", t.ca_file.string(), t.cert_file.string()},
          "--server-cert " + t.cert_file.string() + " is not signed by --ssl-ca-file " + t.ca_file.string());
  return t;
}

void make_self_signed_certificate(const TlsSettings& tls, const std::string& common_name) {
  if (tls.mode != TlsMode::SelfSigned) return;
  std::error_code ec;
  if (fs::exists(tls.cert_file, ec) && fs::exists(tls.key_file, ec)) return;
  if (!valid_host_name(common_name) || common_name.size() > 64) {
    throw Error("cannot make a certificate for \"{}\": not a host name or address of at most 64 characters",
                common_name);
  }
  // Written under temporary names in the state directory (mode 0700, so
  // nobody else can read the key even for a moment) and renamed into place:
  // an interrupted create leaves no half certificate behind.
  fs::path cert_tmp = tls.cert_file;
  cert_tmp += ".new";
  fs::path key_tmp = tls.key_file;
  key_tmp += ".new";
  std::string san = (is_ip_address(common_name) ? "IP:" : "DNS:") + common_name;
  openssl({"req", "-x509", "-new", "-nodes", "-days", "3650", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-subj", "/CN=" + common_name, "-addext", "subjectAltName=" + san,
           "-keyout", key_tmp.string(), "-out", cert_tmp.string()},
          "cannot make a self-signed certificate in " + tls.cert_file.parent_path().string());
  for (const auto& p : {cert_tmp, key_tmp}) fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  fs::rename(key_tmp, tls.key_file);
  fs::rename(cert_tmp, tls.cert_file);
}

}  // namespace pgf
