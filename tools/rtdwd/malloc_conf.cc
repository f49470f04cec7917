// jemalloc's built-in options for rtdwd (read by jemalloc at start-up when rtdwd is linked with it,
// cmake/Dependencies.cmake; an unused symbol otherwise; MALLOC_CONF in the environment still wins).
//
// dirty_decay_ms:1000 (jemalloc's default is 10 s): pages freed by a batch — librdkafka's
// consumed and produced messages, a batch's JSON buffers — go back to the system after about a
// second instead of ten, so resident memory follows what rtdwd holds rather than what it held
// ten seconds ago. Measured on dau's memory scenario (docs/BENCHMARKS.md, "Memory by default"):
// peak RSS at 1 M mids 282 -> 264 MB (small data set, 32 MB prefetch).
extern "C" {
// NOLINTNEXTLINE: jemalloc looks this symbol up by name.
const char* malloc_conf = "dirty_decay_ms:1000";
}
