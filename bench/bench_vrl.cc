// bench_vrl.cc - Google Benchmark glue around shim.h.
//
// Every case times one decision per iteration in wall-clock time (real
// time, so a process blocked on a lock is charged for its wait). The
// figures are reported, never asserted: bench/summary.py compares them with
// the targets of DESIGN.md.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "shim.h"
#include "vrl.h"

namespace {

constexpr uint64_t kNeverDeny = 1000000000;  // 1e9 permits per second, bucket of 1e9
constexpr uint64_t kSecond = 1000000000;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kNewKeys = 1 << 18;       // key table of the first-use case

std::string why(const char *what, int rc) {
  return std::string(what) + ": " + vrl_strerror(rc);
}

// Skips the case with a message when rc is an error; true when it did.
bool failed(benchmark::State &state, const char *what, int rc) {
  if (rc == 0) return false;
  state.SkipWithError(why(what, rc).c_str());
  return true;
}

// A segment with one never-denying limit by token, and "tok" resolved.
vb_seg *resolved_seg(benchmark::State &state, const char *tag) {
  vb_seg *s = nullptr;
  if (failed(state, "create segment", vb_seg_one(tag, kNeverDeny, kSecond, kNeverDeny, 64, &s)))
    return nullptr;
  if (failed(state, "resolve", vb_resolve(s, "tok"))) {
    vb_seg_destroy(s);
    return nullptr;
  }
  return s;
}

// Runs op on every iteration; stops the case on a non-zero result.
template <typename Op>
void loop(benchmark::State &state, Op op) {
  for (auto _ : state) {
    int rc = op();
    if (rc != 0) {
      state.SkipWithError(why("op", rc).c_str());
      break;
    }
  }
}

void add_rival_rate(benchmark::State &state, uint64_t ops) {
  state.counters["rival_ops"] = benchmark::Counter(static_cast<double>(ops),
                                                   benchmark::Counter::kIsRate);
}

// 1. The floor: one clock read + one CAS on a word in MAP_SHARED memory.
void BM_floor(benchmark::State &state) {
  vb_floor *f = nullptr;
  if (failed(state, "floor", vb_floor_create("floor", &f))) return;
  loop(state, [f] { return vb_floor_op(f); });
  vb_floor_destroy(f);
}

// 2. One rate limit, key resolved once.
void BM_vrl_resolved(benchmark::State &state) {
  vb_seg *s = resolved_seg(state, "resolved");
  if (!s) return;
  loop(state, [s] { return vb_acquire_resolved(s); });
  vb_seg_destroy(s);
}

// 2b. The same limit with scope: global: the GCRA and the share word.
void BM_vrl_resolved_global(benchmark::State &state) {
  vb_seg *s = nullptr;
  if (failed(state, "create segment", vb_seg_one_global("global", &s))) return;
  if (failed(state, "resolve", vb_resolve(s, "tok")) ||
      failed(state, "lease", vb_global_lease(s))) {
    vb_seg_destroy(s);
    return;
  }
  loop(state, [s] { return vb_acquire_global(s); });
  vb_seg_destroy(s);
}

// One rate limit by string key (match, hash and look up every call).
void BM_vrl_one_string(benchmark::State &state) {
  vb_seg *s = nullptr;
  if (failed(state, "create segment",
             vb_seg_one("onestr", kNeverDeny, kSecond, kNeverDeny, 64, &s)))
    return;
  loop(state, [s] { return vb_acquire_strings(s, "tok", nullptr, nullptr); });
  vb_seg_destroy(s);
}

// 3. Three stacked limits (token, org, endpoint) by string keys.
void BM_vrl_stacked_strings(benchmark::State &state) {
  vb_seg *s = nullptr;
  if (failed(state, "create segment", vb_seg_stacked("stacked", &s))) return;
  loop(state, [s] {
    return vb_acquire_strings(s, "tok-7f3a9c", "org-42", "GET /fleet/vehicles/stats");
  });
  vb_seg_destroy(s);
}

// 4. The denial path: the bucket (1 per hour, burst 1) is already empty.
void BM_vrl_denied(benchmark::State &state) {
  vb_seg *s = nullptr;
  if (failed(state, "create segment", vb_seg_one("denied", 1, kHour, 1, 64, &s))) return;
  if (!failed(state, "resolve", vb_resolve(s, "tok")) &&
      !failed(state, "first acquire", vb_acquire_resolved(s))) {
    loop(state, [s] {
      int rc = vb_acquire_resolved(s);
      return rc == VRL_EDENIED ? 0 : (rc == 0 ? VRL_EBUSY : rc);
    });
  }
  vb_seg_destroy(s);
}

// 5. First use of a key: a token never seen before on every iteration. The
// table is made afresh (timer paused) when its keys run out.
void BM_vrl_new_key(benchmark::State &state) {
  static std::vector<std::string> names;
  if (names.empty()) {
    names.reserve(kNewKeys);
    for (uint64_t i = 0; i < kNewKeys; i++) names.push_back("vehicle-token-" + std::to_string(i));
  }
  vb_seg *s = nullptr;
  uint64_t used = kNewKeys;
  for (auto _ : state) {
    if (used == kNewKeys) {
      state.PauseTiming();
      vb_seg_destroy(s);
      s = nullptr;
      int rc = vb_seg_one("newkey", kNeverDeny, kSecond, kNeverDeny, kNewKeys, &s);
      if (rc == 0) vb_seg_prefault(s);
      state.ResumeTiming();
      if (failed(state, "create segment", rc)) break;
      used = 0;
    }
    int rc = vb_acquire_strings(s, names[used++].c_str(), nullptr, nullptr);
    if (failed(state, "acquire", rc)) break;
  }
  vb_seg_destroy(s);
}

// 6. Two processes on one hot key: a forked child hammers the same word.
void BM_floor_contended(benchmark::State &state) {
  vb_floor *f = nullptr;
  vb_rival *r = nullptr;
  if (failed(state, "floor", vb_floor_create("floor2", &f))) return;
  if (!failed(state, "fork", vb_rival_start(nullptr, f, nullptr, &r))) {
    loop(state, [f] { return vb_floor_op(f); });
    add_rival_rate(state, vb_rival_stop(r));
  }
  vb_floor_destroy(f);
}

void BM_vrl_resolved_contended(benchmark::State &state) {
  vb_seg *s = resolved_seg(state, "resolved2");
  vb_rival *r = nullptr;
  if (!s) return;
  if (!failed(state, "fork", vb_rival_start(s, nullptr, nullptr, &r))) {
    loop(state, [s] { return vb_acquire_resolved(s); });
    add_rival_rate(state, vb_rival_stop(r));
  }
  vb_seg_destroy(s);
}

// 7. Baseline: token bucket under a robust process-shared mutex.
void BM_mutex(benchmark::State &state) {
  vb_mutex *m = nullptr;
  if (failed(state, "mutex", vb_mutex_create("mutex", &m))) return;
  loop(state, [m] { return vb_mutex_op(m); });
  vb_mutex_destroy(m);
}

void BM_mutex_contended(benchmark::State &state) {
  vb_mutex *m = nullptr;
  vb_rival *r = nullptr;
  if (failed(state, "mutex", vb_mutex_create("mutex2", &m))) return;
  if (!failed(state, "fork", vb_rival_start(nullptr, nullptr, m, &r))) {
    loop(state, [m] { return vb_mutex_op(m); });
    add_rival_rate(state, vb_rival_stop(r));
  }
  vb_mutex_destroy(m);
}

// 8. Baseline: Redis + Lua GCRA, one EVALSHA per decision over a Unix socket.
void BM_redis_gcra(benchmark::State &state) {
  const char *path = std::getenv("VRL_BENCH_REDIS");
  char reason[256] = "";
  vb_redis *r = nullptr;
  if (!vb_redis_available()) {
    state.SkipWithError("Redis baseline skipped: built without hiredis");
    return;
  }
  if (!path || !*path) {
    state.SkipWithError("Redis baseline skipped: VRL_BENCH_REDIS not set (run bench/run.sh)");
    return;
  }
  if (vb_redis_connect(path, &r, reason, sizeof(reason)) != 0) {
    state.SkipWithError(("Redis baseline skipped: " + std::string(reason)).c_str());
    return;
  }
  loop(state, [r] { return vb_redis_op(r); });
  vb_redis_close(r);
}

// Facts that are not timings, carried in the report's context.
void add_context() {
  struct vb_memory mem;
  if (vb_memory_for(1000000, &mem) == 0) {
    benchmark::AddCustomContext("vrl_slot_bytes", std::to_string(mem.slot_bytes));
    benchmark::AddCustomContext("vrl_bytes_per_key", std::to_string(mem.bytes_per_key));
    benchmark::AddCustomContext("vrl_segment_bytes_1M_keys", std::to_string(mem.segment_bytes));
  }
  vb_seg *s = nullptr;
  std::string verdict = "error";
  if (vb_seg_one("denycheck", 1, kHour, 1, 64, &s) == 0 && vb_resolve(s, "tok") == 0 &&
      vb_acquire_resolved(s) == 0) {
    int rc = vb_denial_is_readonly(s);
    verdict = rc == 1 ? "yes" : rc == 0 ? "no" : why("error", rc);
  }
  vb_seg_destroy(s);
  benchmark::AddCustomContext("vrl_denial_writes_nothing", verdict);
}

}  // namespace

BENCHMARK(BM_floor)->UseRealTime();
BENCHMARK(BM_vrl_resolved)->UseRealTime();
BENCHMARK(BM_vrl_resolved_global)->UseRealTime();
BENCHMARK(BM_vrl_one_string)->UseRealTime();
BENCHMARK(BM_vrl_stacked_strings)->UseRealTime();
BENCHMARK(BM_vrl_denied)->UseRealTime();
BENCHMARK(BM_vrl_new_key)->UseRealTime();
BENCHMARK(BM_mutex)->UseRealTime();
BENCHMARK(BM_floor_contended)->UseRealTime();
BENCHMARK(BM_vrl_resolved_contended)->UseRealTime();
BENCHMARK(BM_mutex_contended)->UseRealTime();
BENCHMARK(BM_redis_gcra)->UseRealTime();

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
