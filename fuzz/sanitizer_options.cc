// Sanitizer defaults of the libFuzzer binaries (RTDW_FUZZ=ON), so that a run by hand behaves like
// scripts/test --fuzz: any UBSan report is fatal (a crash the fuzzer keeps), except the known
// third-party ones listed in fuzz/ubsan.supp. UBSAN_OPTIONS in the environment still wins.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" RTDW_UBSAN_SUPPRESSIONS;
}
