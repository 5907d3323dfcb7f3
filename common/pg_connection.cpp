#include "common/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <fmt/format.h>

#include "common/log.h"

namespace pgf {

namespace {

std::string trimmed_message(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  // libpq joins multi-host attempts with newlines; keep them on one line.
  for (auto& c : s) {
    if (c == '\n') c = ';';
  }
  return redact_secrets(s);
}

std::string describe_target(pg_conn* c) {
  const char* h = PQhost(c);
  const char* p = PQport(c);
  return fmt::format("{}:{}", h && *h ? h : "localhost", p && *p ? p : "5432");
}

}  // namespace

// ---- PgResult

PgResult::PgResult(pg_result* r) : res_(r, PQclear) {}
int PgResult::rows() const { return res_ ? PQntuples(res_.get()) : 0; }
int PgResult::columns() const { return res_ ? PQnfields(res_.get()) : 0; }

int PgResult::column(std::string_view name) const {
  std::string n(name);
  int c = res_ ? PQfnumber(res_.get(), n.c_str()) : -1;
  if (c < 0) throw Error("query result has no column \"{}\"", name);
  return c;
}

bool PgResult::is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }

std::string_view PgResult::text(int row, int col) const {
  if (row < 0 || row >= rows()) throw Error("query result has no row {}", row);
  return std::string_view(PQgetvalue(res_.get(), row, col),
                          static_cast<size_t>(PQgetlength(res_.get(), row, col)));
}

std::optional<std::string> PgResult::opt_str(int row, std::string_view col) const {
  int c = column(col);
  if (is_null(row, c)) return std::nullopt;
  return std::string(text(row, c));
}

std::int64_t PgResult::int64(int row, std::string_view col) const {
  auto v = opt_int64(row, col);
  if (!v) throw Error("column \"{}\" is null", col);
  return *v;
}

std::optional<std::int64_t> PgResult::opt_int64(int row, std::string_view col) const {
  int c = column(col);
  if (is_null(row, c)) return std::nullopt;
  auto t = text(row, c);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) throw Error("column \"{}\" is not an integer: {}", col, t);
  return v;
}

bool PgResult::boolean(int row, std::string_view col) const {
  int c = column(col);
  if (is_null(row, c)) throw Error("column \"{}\" is null", col);
  return text(row, c) == "t";
}

double PgResult::float64(int row, std::string_view col) const {
  int c = column(col);
  if (is_null(row, c)) throw Error("column \"{}\" is null", col);
  return std::stod(std::string(text(row, c)));
}

std::vector<std::int64_t> PgResult::int64_array(int row, std::string_view col) const {
  int c = column(col);
  std::vector<std::int64_t> out;
  if (is_null(row, c)) return out;
  auto t = text(row, c);
  if (t.size() < 2 || t.front() != '{' || t.back() != '}') throw Error("column \"{}\" is not an array: {}", col, t);
  t = t.substr(1, t.size() - 2);
  while (!t.empty()) {
    auto comma = t.find(',');
    auto item = t.substr(0, comma);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc()) throw Error("column \"{}\" has a non-integer element: {}", col, item);
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    t.remove_prefix(comma + 1);
  }
  return out;
}

// ---- parameters

SqlParam param(std::string_view v) { return std::string(v); }
SqlParam param(const char* v) { return std::string(v); }
SqlParam param(const std::string& v) { return v; }
SqlParam param(std::int64_t v) { return std::to_string(v); }
SqlParam param(int v) { return std::to_string(v); }
SqlParam param(bool v) { return std::string(v ? "true" : "false"); }
SqlParam param(double v) { return fmt::format("{}", v); }
SqlParam param(const std::vector<std::int64_t>& ids) { return fmt::format("{{{}}}", fmt::join(ids, ",")); }

// ---- PgConnection

PgConnection PgConnection::connect(const std::string& conninfo, std::string_view what) {
  pg_conn* c = PQconnectdb(conninfo.c_str());
  if (c == nullptr) throw PgConnectError("cannot connect to {}: out of memory", what);
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = fmt::format("cannot connect to {} at {}: {}", what, describe_target(c),
                                  trimmed_message(PQerrorMessage(c)));
    PQfinish(c);
    throw PgConnectError(msg);
  }
  return PgConnection(c, std::string(what));
}

PgConnection::PgConnection(PgConnection&& o) noexcept : conn_(o.conn_), what_(std::move(o.what_)) { o.conn_ = nullptr; }

PgConnection& PgConnection::operator=(PgConnection&& o) noexcept {
  if (this != &o) {
    close();
    conn_ = o.conn_;
    what_ = std::move(o.what_);
    o.conn_ = nullptr;
  }
  return *this;
}

PgConnection::~PgConnection() { close(); }

void PgConnection::close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

bool PgConnection::is_healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

PgResult PgConnection::exec(std::string_view sql, const SqlParams& params) {
  if (!conn_) throw Error("not connected to {}", what_);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string query(sql);
  pg_result* r = PQexecParams(conn_, query.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                              nullptr, nullptr, 0);
  PgResult result(r);
  auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  if (PQstatus(conn_) != CONNECTION_OK) {
    throw PgConnectError("lost connection to {} at {}: {}", what_, endpoint(), trimmed_message(PQerrorMessage(conn_)));
  }
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  const char* hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : nullptr;
  std::string msg = primary ? trimmed_message(primary) : trimmed_message(PQerrorMessage(conn_));
  if (detail) msg += fmt::format(" ({})", trimmed_message(detail));
  if (hint) msg += fmt::format("; hint: {}", trimmed_message(hint));
  throw PgError(state ? state : "XX000", msg);
}

std::optional<std::string> PgConnection::query_value(std::string_view sql, const SqlParams& params) {
  auto r = exec(sql, params);
  if (r.rows() < 1 || r.columns() < 1) throw Error("query returned no row: {}", sql.substr(0, 60));
  if (r.is_null(0, 0)) return std::nullopt;
  return std::string(r.text(0, 0));
}

void PgConnection::listen(std::string_view channel) { exec(fmt::format("LISTEN {}", sql_identifier(channel))); }

std::vector<Notification> PgConnection::take_notifications() {
  std::vector<Notification> out;
  if (!conn_) return out;
  if (PQconsumeInput(conn_) == 0) {
    throw PgConnectError("lost connection to {} at {}: {}", what_, endpoint(), trimmed_message(PQerrorMessage(conn_)));
  }
  while (PGnotify* n = PQnotifies(conn_)) {
    out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
    PQfreemem(n);
  }
  return out;
}

std::vector<Notification> PgConnection::wait_for_notifications(std::chrono::milliseconds timeout) {
  auto pending = take_notifications();
  if (!pending.empty()) return pending;
  pollfd pfd{socket(), POLLIN, 0};
  int rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (rc < 0 && errno != EINTR) throw Error("poll on connection to {}: {}", what_, errno_text(errno));
  return take_notifications();
}

bool PgConnection::ssl_in_use() const { return conn_ && PQsslInUse(conn_) == 1; }

void PgConnection::set_role_password(std::string_view role, std::string_view password) {
  if (!conn_) throw Error("not connected to {}", what_);
  std::string r(role), pw(password);
  // The verifier is computed here: the password never reaches the server,
  // whose log would show the statement on an error.
  char* verifier = PQencryptPasswordConn(conn_, pw.c_str(), r.c_str(), "scram-sha-256");
  if (!verifier) {
    throw Error("cannot compute the SCRAM verifier for role {}: {}", role, trimmed_message(PQerrorMessage(conn_)));
  }
  std::string literal = sql_literal(verifier);
  PQfreemem(verifier);
  // ALTER ROLE takes no parameters; the role is ours and quoted, the verifier
  // is base64 and '$' only.
  exec("ALTER ROLE " + sql_identifier(role) + " PASSWORD " + literal);
}

int PgConnection::socket() const { return conn_ ? PQsocket(conn_) : -1; }
int PgConnection::backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }
std::string PgConnection::host() const { return conn_ && PQhost(conn_) ? PQhost(conn_) : ""; }
std::string PgConnection::port() const { return conn_ && PQport(conn_) ? PQport(conn_) : ""; }
std::string PgConnection::endpoint() const { return conn_ ? describe_target(conn_) : "(closed)"; }

// ---- PgTransaction

PgTransaction::PgTransaction(PgConnection& c, std::string_view begin) : conn_(c) { conn_.exec(begin); }

PgTransaction::~PgTransaction() {
  if (done_) return;
  try {
    if (conn_.is_healthy()) conn_.exec("ROLLBACK");
  } catch (...) {
    // The connection is gone; the server rolls back on its own.
  }
}

void PgTransaction::commit() {
  conn_.exec("COMMIT");
  done_ = true;
}

// ---- messages

std::string monitor_connect_reason(std::string_view msg) {
  struct Known {
    std::string_view needle;
    std::string_view reason;
  };
  static constexpr Known known[] = {
      {"Connection refused", "connection refused"},
      {"timeout expired", "connection timed out"},
      {"No route to host", "no route to host"},
      {"Network is unreachable", "network unreachable"},
      {"could not translate host name", "unknown host name"},
      {"Name or service not known", "unknown host name"},
      {"password authentication failed", "password authentication failed"},
      {"no password supplied", "a password is required (put it in ~/.pgpass)"},
      {"no pg_hba.conf entry", "no pg_hba.conf entry for this host on the monitor"},
      {"does not exist", "no pgfailover monitor there (role or database missing)"},
      {"the database system is starting up", "the monitor's Postgres is starting up"},
      {"the database system is shutting down", "the monitor's Postgres is shutting down"},
  };
  for (const auto& k : known) {
    if (msg.find(k.needle) != std::string_view::npos) return std::string(k.reason);
  }
  auto failed = msg.rfind("failed: ");
  if (failed != std::string_view::npos) msg.remove_prefix(failed + 8);
  return std::string(msg);
}

// ---- quoting

std::string conninfo_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string sql_literal(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string sql_identifier(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace pgf
