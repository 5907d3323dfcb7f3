// RAII over libpq: a connection, its results, notifications and transactions.
// libpqxx 6.4 has no non-blocking connect and heavy headers; this thin layer
// gives every role the same error messages ("cannot connect to host:port: ...")
// and keeps libpq out of the headers that include it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

struct pg_conn;
struct pg_result;

namespace pgf {

// A server-side error: SQLSTATE plus the server's message (and detail/hint).
class PgError : public Error {
 public:
  PgError(std::string sqlstate, const std::string& message) : Error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// The connection itself failed (refused, timed out, authentication...).
class PgConnectError : public Error {
 public:
  using Error::Error;
};

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r);
  int rows() const;
  int columns() const;
  int column(std::string_view name) const;  // throws if missing
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  std::string_view text(int row, std::string_view col) const { return text(row, column(col)); }
  bool is_null(int row, std::string_view col) const { return is_null(row, column(col)); }

  std::string str(int row, std::string_view col) const { return std::string(text(row, col)); }
  std::optional<std::string> opt_str(int row, std::string_view col) const;
  std::int64_t int64(int row, std::string_view col) const;
  std::optional<std::int64_t> opt_int64(int row, std::string_view col) const;
  bool boolean(int row, std::string_view col) const;
  double float64(int row, std::string_view col) const;
  // Postgres int8[] / int4[] text form "{1,2,3}".
  std::vector<std::int64_t> int64_array(int row, std::string_view col) const;

 private:
  std::shared_ptr<pg_result> res_;
};

struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

using SqlParam = std::optional<std::string>;  // nullopt is SQL NULL
using SqlParams = std::vector<SqlParam>;

SqlParam param(std::string_view v);
SqlParam param(const char* v);
SqlParam param(const std::string& v);
SqlParam param(std::int64_t v);
SqlParam param(int v);
SqlParam param(bool v);
SqlParam param(double v);
SqlParam param(const std::vector<std::int64_t>& ids);  // as int8[] text
template <typename T>
SqlParam param(const std::optional<T>& v) {
  return v ? param(*v) : SqlParam{};
}

class PgConnection {
 public:
  // Blocking connect; `what` names the peer in errors ("monitor", "node idp001").
  static PgConnection connect(const std::string& conninfo, std::string_view what = "postgres");

  PgConnection() = default;
  PgConnection(PgConnection&&) noexcept;
  PgConnection& operator=(PgConnection&&) noexcept;
  ~PgConnection();

  bool is_open() const { return conn_ != nullptr; }
  bool is_healthy() const;  // open and its status is CONNECTION_OK
  void close();

  PgResult exec(std::string_view sql, const SqlParams& params = {});
  // One value or null; throws if the query returns no row.
  std::optional<std::string> query_value(std::string_view sql, const SqlParams& params = {});

  void listen(std::string_view channel);
  // Waits up to `timeout` for the socket to become readable, then returns the
  // notifications received (possibly none). Throws when the connection is lost.
  std::vector<Notification> wait_for_notifications(std::chrono::milliseconds timeout);
  std::vector<Notification> take_notifications();

  // Sets a role's password as a SCRAM-SHA-256 verifier computed by libpq on
  // this side: the server (and its log) never sees the password.
  void set_role_password(std::string_view role, std::string_view password);
  // The connection is encrypted (TLS).
  bool ssl_in_use() const;

  int socket() const;
  int backend_pid() const;
  std::string host() const;
  std::string port() const;
  // "host:port" for messages; never includes a password.
  std::string endpoint() const;
  pg_conn* raw() { return conn_; }

 private:
  explicit PgConnection(pg_conn* c, std::string what) : conn_(c), what_(std::move(what)) {}
  pg_conn* conn_ = nullptr;
  std::string what_;
};

// BEGIN on construction; ROLLBACK on destruction unless commit() was called.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c, std::string_view begin = "BEGIN");
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  ~PgTransaction();
  PgResult exec(std::string_view sql, const SqlParams& params = {}) { return conn_.exec(sql, params); }
  void commit();

 private:
  PgConnection& conn_;
  bool done_ = false;
};

// libpq's (multi-line, multi-host) reason for failing to reach the monitor,
// shortened to what an operator acts on: "connection refused", "unknown host name".
std::string monitor_connect_reason(std::string_view libpq_message);

// Quotes a value for a libpq key=value conninfo string.
std::string conninfo_quote(std::string_view value);
// Quotes an identifier / literal for SQL built by us (settings files, GUC values).
std::string sql_literal(std::string_view value);
std::string sql_identifier(std::string_view value);

}  // namespace pgf
