// libFuzzer target: ConnInfo::parse (libpq's parser behind our checks), the
// log redaction its errors go through, and the TLS settings applied to it.
// Anything but a pgf::Error is a crash; an accepted string must survive
// to_conninfo() and parse again to the same values.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/conninfo.h"
#include "common/error.h"
#include "common/log.h"
#include "common/tls.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)pgf::redact_secrets(text);
  pgf::ConnInfo ci;
  try {
    ci = pgf::ConnInfo::parse(text, "fuzzed URI");
  } catch (const pgf::Error&) {
    return 0;
  }
  (void)ci.describe();
  if (ci.values().empty()) return 0;  // only empty values: nothing to write back
  auto again = pgf::ConnInfo::parse(ci.to_conninfo(), "round trip");
  if (again.values() != ci.values()) __builtin_trap();
  pgf::TlsSettings tls;
  tls.mode = pgf::TlsMode::VerifyFull;
  tls.ca_file = "/etc/pgfailover/ca.crt";
  try {
    tls.apply_to(ci, "fuzzed URI");
  } catch (const pgf::Error&) {
  }
  return 0;
}
