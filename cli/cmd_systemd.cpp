// `pgfailover show systemd`: the systemd unit that runs `pgfailover run` for a
// data directory. The package's unit files are this command's output too
// (`--template keeper|monitor`, run at build time), so the two cannot differ.
//
// Why the units look the way they do (docs/operations.md, "systemd"):
// - KillSignal=SIGINT: `systemctl stop` asks pgfailover to stop Postgres (fast
//   shutdown) and then exit, as Ctrl-C does.
// - KillMode=process: systemd signals pgfailover alone, never Postgres. Postgres
//   is pgfailover's child in its own process group and outlives a crashed
//   keeper on purpose (docs/keeper.md): a crash, an OOM kill or a SIGKILL of
//   pgfailover leaves a healthy Postgres serving, and the restarted pgfailover
//   adopts it. With the default (control-group) or mixed mode, systemd would
//   stop (or SIGKILL) that healthy Postgres before every restart.
#include <CLI/CLI.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli.h"
#include "common/config_file.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/instance_paths.h"

namespace pgf {

namespace {

constexpr const char* kDefaultBinary = "/usr/bin/pgfailover";
constexpr const char* kDefaultUser = "postgres";
constexpr const char* kDefaultMonitorPgdata = "/var/lib/pgfailover/monitor";
constexpr const char* kMonitorUnit = "pgfailover-monitor.service";

// `systemd-escape --path`: the instance name of pgfailover@.service for a
// data directory ("/var/lib/postgresql/15/main" -> "var-lib-postgresql-15-main").
std::string escape_path(const std::string& path) {
  std::string trimmed;
  for (char c : path) {
    if (c == '/' && (trimmed.empty() || trimmed.back() == '/')) continue;
    trimmed += c;
  }
  while (!trimmed.empty() && trimmed.back() == '/') trimmed.pop_back();
  if (trimmed.empty()) return "-";
  std::string out;
  for (size_t i = 0; i < trimmed.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(trimmed[i]);
    bool plain = std::isalnum(c) || c == ':' || c == '_' || (c == '.' && i > 0);
    if (c == '/') {
      out += '-';
    } else if (plain) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

// A path as one word of a unit file line: '%' doubled (specifiers), quoted
// when it holds spaces, quotes or backslashes.
std::string unit_word(const std::string& s) {
  std::string out;
  bool quote = false;
  for (char c : s) {
    if (c == '\n' || c == '\r') throw Error("path \"{}\" holds a line break: no unit file can name it", s);
    if (c == '%') {
      out += "%%";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
      quote = true;
    } else {
      if (c == ' ' || c == '\t' || c == '\'') quote = true;
      out += c;
    }
  }
  return quote ? "\"" + out + "\"" : out;
}

enum class UnitKind { Keeper, Monitor };

struct UnitSpec {
  UnitKind kind = UnitKind::Keeper;
  std::string pgdata;  // a path, or "%f" in the keeper template
  std::string description_target;  // what Description names
  std::optional<std::string> state_dir;
  std::string user = kDefaultUser;
  std::string group = kDefaultUser;
  std::string binary = kDefaultBinary;
};

std::string unit_text(const UnitSpec& u) {
  bool keeper = u.kind == UnitKind::Keeper;
  std::string exec = unit_word(u.binary) + " run --pgdata " + u.pgdata;
  if (u.state_dir) exec += " --state-dir " + unit_word(*u.state_dir);
  std::string out;
  out += "[Unit]\n";
  out += fmt::format("Description=pgfailover {} of {}\n", keeper ? "keeper" : "monitor", u.description_target);
  out += "Documentation=man:pgfailover(1)\n";
  out += "After=network-online.target\n";
  out += "Wants=network-online.target\n";
  out += "RequiresMountsFor=" + u.pgdata + "\n";
  out += "# Never stop restarting it: the node's availability depends on it.\n";
  out += "StartLimitIntervalSec=0\n";
  out += "\n[Service]\n";
  out += "Type=exec\n";
  out += "User=" + u.user + "\n";
  out += "Group=" + u.group + "\n";
  out += "WorkingDirectory=~\n";
  out += "ExecStart=" + exec + "\n";
  out += "Restart=on-failure\n";
  out += "RestartSec=2s\n";
  out += "# systemctl stop: SIGINT to pgfailover, which stops Postgres (fast shutdown), then exits.\n";
  out += "KillSignal=SIGINT\n";
  out += "# Only pgfailover is signalled, never Postgres: when pgfailover dies, a healthy\n";
  out += "# Postgres keeps serving and the restarted pgfailover adopts it (pgfailover stop\n";
  out += "# does the same on purpose, to restart the service alone).\n";
  out += "KillMode=process\n";
  out += "# Postgres's shutdown checkpoint may take long; as Debian's postgresql@.service.\n";
  out += "TimeoutStopSec=1h\n";
  out += "# Keep the OOM killer off the postmaster; its backends reset their score to 0.\n";
  out += "OOMScoreAdjust=-900\n";
  out += "Environment=PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj PG_OOM_ADJUST_VALUE=0\n";
  out += "NoNewPrivileges=yes\n";
  out += "\n[Install]\n";
  out += "WantedBy=multi-user.target\n";
  return out;
}

std::string template_header(UnitKind kind) {
  if (kind == UnitKind::Keeper) {
    return "# pgfailover@.service: `pgfailover run` for one data directory (a keeper, or a\n"
           "# monitor), as the postgres user. The instance name is the data directory as\n"
           "# systemd-escape --path writes it:\n"
           "#   systemctl enable --now pgfailover@var-lib-postgresql-15-main.service\n"
           "# `pgfailover show systemd --pgdata DIR` prints the name and the unit for DIR.\n"
           "# Generated by `pgfailover show systemd --template keeper`.\n";
  }
  return std::string("# pgfailover-monitor.service: the monitor in ") + kDefaultMonitorPgdata +
         ", as the postgres user.\n"
         "# For another directory, save the output of\n"
         "#   pgfailover show systemd --pgdata DIR\n"
         "# as /etc/systemd/system/pgfailover-monitor.service.\n"
         "# Generated by `pgfailover show systemd --template monitor`.\n";
}

struct Owner {
  std::string user;
  std::string group;
};

Owner owner_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw Error("cannot read {}: {}", p.string(), errno_text(errno));
  Owner o;
  if (auto* pw = ::getpwuid(st.st_uid)) {
    o.user = pw->pw_name;
    if (auto* gr = ::getgrgid(pw->pw_gid)) o.group = gr->gr_name;
  }
  if (o.user.empty()) throw Error("{} belongs to uid {}, which has no user name: give --user", p.string(), st.st_uid);
  if (o.group.empty()) o.group = o.user;
  return o;
}

std::string self_binary() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return kDefaultBinary;
  return p.string();
}

struct SystemdOptions {
  std::string pgdata;
  std::string state_dir;
  std::string user;
  std::string binary;
  std::string template_kind;
};

void show_systemd(const SystemdOptions& o) {
  if (!o.template_kind.empty()) {
    if (!o.pgdata.empty() || !o.state_dir.empty()) throw Error("--template prints the packaged unit: it takes no --pgdata or --state-dir");
    UnitSpec u;
    u.kind = o.template_kind == "monitor" ? UnitKind::Monitor : UnitKind::Keeper;
    if (!o.binary.empty()) u.binary = o.binary;
    if (!o.user.empty()) u.user = u.group = o.user;
    if (u.kind == UnitKind::Keeper) {
      u.pgdata = "%f";
      u.description_target = "%f";
    } else {
      u.pgdata = u.description_target = kDefaultMonitorPgdata;
    }
    std::cout << template_header(u.kind) << unit_text(u);
    return;
  }

  auto paths = InstancePaths::for_pgdata(resolve_pgdata(o.pgdata),
                                         o.state_dir.empty() ? std::nullopt : std::optional<fs::path>(o.state_dir));
  if (!fs::exists(paths.config_file())) {
    throw Error("{} is not managed by pgfailover (no {}): run pgfailover create monitor or create postgres first",
                paths.pgdata.string(), paths.config_file().string());
  }
  auto config = ConfigFile::load(paths.config_file().string());
  std::string role = config.require("pgfailover.role");
  UnitSpec u;
  if (role == "keeper") {
    u.kind = UnitKind::Keeper;
  } else if (role == "monitor") {
    u.kind = UnitKind::Monitor;
  } else {
    throw Error("{}: unknown role \"{}\" (expected monitor or keeper)", paths.config_file().string(), role);
  }
  u.pgdata = u.description_target = unit_word(paths.pgdata.string());
  auto default_state = InstancePaths::for_pgdata(paths.pgdata).state_dir;
  if (paths.state_dir != default_state) u.state_dir = paths.state_dir.string();
  auto owner = owner_of(paths.config_file());
  u.user = owner.user;
  u.group = owner.group;
  if (!o.user.empty()) u.user = u.group = o.user;
  if (u.user == "root") throw Error("{} belongs to root, and pgfailover never runs as root: give --user", paths.config_file().string());
  u.binary = o.binary.empty() ? self_binary() : o.binary;

  std::string name;
  std::string how;
  if (u.kind == UnitKind::Keeper) {
    name = "pgfailover@" + escape_path(paths.pgdata.string()) + ".service";
    bool packaged_equivalent = !u.state_dir && u.binary == kDefaultBinary && u.user == kDefaultUser && u.group == kDefaultUser;
    if (packaged_equivalent) {
      how = "# The package's template pgfailover@.service gives this unit for this instance:\n"
            "#   systemctl enable --now " + name + "\n";
    } else {
      how = "# Save it as /etc/systemd/system/" + name + " (it takes precedence over the\n"
            "# package's template), then:\n"
            "#   systemctl daemon-reload && systemctl enable --now " + name + "\n";
    }
  } else {
    name = kMonitorUnit;
    bool packaged_equivalent = paths.pgdata == kDefaultMonitorPgdata && !u.state_dir && u.binary == kDefaultBinary &&
                               u.user == kDefaultUser && u.group == kDefaultUser;
    if (packaged_equivalent) {
      how = "# The package's pgfailover-monitor.service is this unit:\n"
            "#   systemctl enable --now " + name + "\n";
    } else {
      how = "# Save it as /etc/systemd/system/" + name + " (it takes precedence over the\n"
            "# package's unit), then:\n"
            "#   systemctl daemon-reload && systemctl enable --now " + name + "\n";
    }
  }
  std::cout << "# " << name << ": `pgfailover run` for " << paths.pgdata.string() << " (" << role << ")\n"
            << how << unit_text(u);
}

}  // namespace

void add_systemd_command(CLI::App& app, CliEnv&) {
  auto* show = app.get_subcommand("show");
  auto o = std::make_shared<SystemdOptions>();
  auto* cmd = show->add_subcommand("systemd", "The systemd unit that runs pgfailover for a data directory");
  cmd->add_option("--pgdata", o->pgdata, "Data directory of a monitor or data node (default: $PGDATA)");
  cmd->add_option("--state-dir", o->state_dir, "pgfailover's own files (default: <pgdata>.pgfailover)");
  cmd->add_option("--user", o->user, "Run it as this user (default: the owner of its pgfailover.conf)");
  cmd->add_option("--binary", o->binary, "Path of pgfailover in ExecStart (default: this binary)");
  cmd->add_option("--template", o->template_kind,
                  "Print the packaged unit instead: keeper (pgfailover@.service) or monitor (pgfailover-monitor.service)")
      ->check(CLI::IsMember({"keeper", "monitor"}));
  cmd->footer(
      "systemctl stop sends SIGINT: pgfailover stops Postgres, then exits. KillMode=process: when\n"
      "pgfailover dies, Postgres keeps running and the restarted service adopts it.\n"
      "Example:\n  pgfailover show systemd --pgdata /var/lib/postgresql/15/main\n"
      "  systemctl enable --now \"pgfailover@$(systemd-escape --path /var/lib/postgresql/15/main).service\"");
  cmd->callback([o] { show_systemd(*o); });
}

}  // namespace pgf
