#pragma once

#include <string>

namespace pgf {

// A TCP port on `host` that nobody listens on right now (the kernel picks it).
// Racy by nature: callers retry if the port is taken before they bind it.
int find_free_port(const std::string& host = "127.0.0.1");

// True if something accepts TCP connections on host:port within timeout_ms.
bool tcp_port_open(const std::string& host, int port, int timeout_ms = 200);

// True if every address `host` resolves to is a loopback address (127/8, ::1).
bool is_loopback_host(const std::string& host);

}  // namespace pgf
