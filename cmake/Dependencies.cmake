# All third-party dependencies, found once, from Debian packages (scripts/setup installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka rdkafka++)
find_package(RocksDB CONFIG REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
find_package(CURL REQUIRED)
find_package(RapidJSON CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# RocksDB: the shared library links far faster than the 33 MB static archive on 2 cores, so tests
# and tools link it; the long-running servers (rtdwd, rtdw-es-lite: rtdw_use_static_rocksdb) link
# the static archive, whose thread-local variables (the perf context RocksDB touches on every read
# and write) are reached directly — in the shared library each access is a __tls_get_addr call,
# 5-8 % of a job thread's CPU (docs/BENCHMARKS.md, "h9-static"). The choice is the linking
# target's property RTDW_STATIC_ROCKSDB, read through the libraries that link RTDW_ROCKSDB.
if(TARGET RocksDB::rocksdb-shared AND TARGET RocksDB::rocksdb)
  set(RTDW_ROCKSDB
      "$<IF:$<BOOL:$<TARGET_PROPERTY:RTDW_STATIC_ROCKSDB>>,RocksDB::rocksdb,RocksDB::rocksdb-shared>")
elseif(TARGET RocksDB::rocksdb-shared)
  set(RTDW_ROCKSDB RocksDB::rocksdb-shared)
else()
  set(RTDW_ROCKSDB RocksDB::rocksdb)
endif()
function(rtdw_use_static_rocksdb target)
  set_target_properties(${target} PROPERTIES RTDW_STATIC_ROCKSDB ON)
endfunction()

# RapidJSON: headers only, in /usr/include. Always parse with full precision.
add_library(rtdw_rapidjson INTERFACE)
target_compile_definitions(rtdw_rapidjson INTERFACE RAPIDJSON_HAS_STDSTRING=1)
# Never RAPIDJSON_SSE2: RapidJSON 1.1.0's SSE2 string scans compare with 0x19 where 0x1F is meant,
# so its Writer leaves U+001A-U+001F raw (not JSON) and its in-place reader accepts them, inside
# 16-byte-aligned blocks only (docs/BENCHMARKS.md, "h6-jsonout"). The jobs' records go through
# rtdw's own scanner and writer (core/json_limits.h, core/json_writer.h) anyway.
if(RapidJSON_INCLUDE_DIRS)
  target_include_directories(rtdw_rapidjson SYSTEM INTERFACE ${RapidJSON_INCLUDE_DIRS})
endif()

# jemalloc (Debian's libjemalloc-dev) as the allocator of the long-running servers, rtdwd and
# rtdw-es-lite: the split jobs free ~50,000 small librdkafka chunks per batch, and glibc's
# malloc_consolidate over them cost up to 14 % of log-split's CPU (docs/BENCHMARKS.md, "Where the
# time goes"). ON by default when the package is there; always OFF under the sanitizers (ASan
# brings its own allocator) and for the fuzz build.
pkg_check_modules(JEMALLOC IMPORTED_TARGET jemalloc)
if(JEMALLOC_FOUND AND NOT RTDW_SANITIZE AND NOT RTDW_FUZZ)
  set(RTDW_JEMALLOC_DEFAULT ON)
else()
  set(RTDW_JEMALLOC_DEFAULT OFF)
endif()
option(RTDW_JEMALLOC "Link jemalloc into rtdwd and rtdw-es-lite" ${RTDW_JEMALLOC_DEFAULT})
if(RTDW_JEMALLOC AND (RTDW_SANITIZE OR RTDW_FUZZ))
  message(STATUS "jemalloc: off (sanitizer build)")
  set(RTDW_JEMALLOC OFF)
elseif(RTDW_JEMALLOC AND NOT JEMALLOC_FOUND)
  message(FATAL_ERROR "RTDW_JEMALLOC=ON but jemalloc was not found (apt-get install libjemalloc-dev)")
endif()
if(RTDW_JEMALLOC)
  message(STATUS "jemalloc: linked into rtdwd and rtdw-es-lite (${JEMALLOC_VERSION})")
  # The binaries are defined further down the tree: link them once every directory is read.
  function(rtdw_link_jemalloc)
    foreach(target rtdwd rtdw-es-lite)
      if(TARGET ${target})
        target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
      endif()
    endforeach()
  endfunction()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL rtdw_link_jemalloc)
else()
  message(STATUS "jemalloc: not used")
endif()
