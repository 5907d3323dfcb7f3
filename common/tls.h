// TLS for every connection pgfailover makes or accepts: keepers to the
// monitor, the monitor's health checks, replication (walreceiver,
// pg_basebackup, pg_rewind), the CLI, and the URIs handed to applications.
// `create monitor` and `create postgres` demand one explicit choice, as
// pg_autoctl does: a self-signed certificate (clients use sslmode=require),
// certificates signed by the operator's CA (sslmode=verify-full), or none.
// The choice is kept in the [ssl] section of pgfailover.conf, so `run` and
// every later command apply it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/fs.h"

namespace pgf {

class ConfigFile;
class ConnInfo;

enum class TlsMode { Off, SelfSigned, VerifyFull };
std::string_view name(TlsMode m);  // "off", "self-signed", "verify-full"
std::optional<TlsMode> parse_tls_mode(std::string_view text);

struct TlsSettings {
  TlsMode mode = TlsMode::Off;
  fs::path cert_file;  // this server's certificate (PEM)
  fs::path key_file;   // its private key (PEM, never readable by others)
  fs::path ca_file;    // verify-full: the CA every peer's certificate is checked against

  bool enabled() const { return mode != TlsMode::Off; }
  // The sslmode our clients ask for: "require", "verify-full", or "" (off:
  // libpq's default) .
  std::string client_sslmode() const;
  // Adds sslmode (and sslrootcert for verify-full) to a connection that does
  // not name them. Throws when it asks for less than this choice (disable,
  // allow or prefer while TLS is on; anything but verify-full when the choice
  // is verify-full): "<what> asks for sslmode=prefer ...".
  void apply_to(ConnInfo& ci, std::string_view what) const;
  // Postgres settings: ssl = on and the files; empty when off (the
  // operator's own ssl settings, if any, stay as they are).
  std::map<std::string, std::string> server_settings() const;
  // pg_hba.conf connection type for the lines we write: hostssl or host.
  std::string_view hba_type() const { return enabled() ? "hostssl" : "host"; }

  // The [ssl] section; a missing section is Off (configurations from before
  // TLS). Throws naming the file and key on a bad value.
  static TlsSettings from(const ConfigFile& file);
  void save_to(ConfigFile& file) const;
  // The files exist, are readable, and the key is private as Postgres wants it.
  void check_files() const;
};

// What the command line said; exactly one choice must be made.
struct TlsOptions {
  bool self_signed = false;
  bool no_ssl = false;
  std::string ca_file;
  std::string server_cert;
  std::string server_key;
};

// Turns the options into settings: one line naming the options when none,
// several, or an incomplete set was given; for --ssl-self-signed the
// certificate files are <state_dir>/server.crt and server.key (made by
// make_self_signed_certificate); given files are checked (readable, the key
// private, the key matching the certificate, the certificate signed by the CA).
// `serves_tls` false: a server whose TLS is set up by someone else (create
// monitor --monitor-db): only how clients connect is recorded.
TlsSettings tls_from_options(const TlsOptions& o, const fs::path& state_dir, bool serves_tls = true);

// Makes a self-signed certificate for `common_name` (a host name or an IP
// address, also put in subjectAltName) with the openssl tool, both files
// mode 0600. Files that exist already are kept (create run again).
void make_self_signed_certificate(const TlsSettings& tls, const std::string& common_name);

// The error without a choice, and the help text of both create commands.
inline constexpr const char* kTlsOptionsHelp =
    "an explicit TLS choice is required: --ssl-self-signed, --ssl-ca-file F --server-cert F --server-key F "
    "(verify-full), or --no-ssl";

}  // namespace pgf
