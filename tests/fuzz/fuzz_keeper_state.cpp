// libFuzzer target: KeeperState::open on a keeper.db of fuzzed bytes (a
// corrupt, foreign or edited file must be one clear error, never a crash or a
// record the keeper would act on with nonsense in it).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "keeper/keeper_state.h"

namespace {

const std::filesystem::path& work_dir() {
  // One directory per fuzzing process (libFuzzer may run several jobs).
  static const std::filesystem::path dir = [] {
    // tmpfs when there is one: SQLite's fsyncs cost nothing there.
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                           : std::filesystem::temp_directory_path();
    auto d = base / ("pgf-fuzz-state-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto file = work_dir() / "keeper.db";
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix, ec);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    auto state = pgf::KeeperState::open(file);
    // A record that loaded is one the keeper may write back.
    state.save(state.record());
  } catch (const pgf::Error&) {
  }
  return 0;
}
