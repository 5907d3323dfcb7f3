// main() of the integration and scenario test binaries. Postgres refuses to run
// as root and pgfailover refuses to start it as root, so when CI runs us as
// root, integration tests drop to the postgres user before anything starts.
// Scenario tests keep root: they create network namespaces.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char* argv[]) {
#ifndef PGFAILOVER_TESTS_KEEP_ROOT
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (!pw || setgid(pw->pw_gid) != 0 || initgroups("postgres", pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
      std::fprintf(stderr, "integration tests: cannot switch from root to the postgres user\n");
      return 2;
    }
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", "postgres", 1);
  }
#endif
  return Catch::Session().run(argc, argv);
}
