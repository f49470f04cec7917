# add_subdirectory() for every child folder of the current source dir that has a CMakeLists.txt,
# so that a new component is picked up by adding its folder (no edit of the parent list).
set(RTDW_SKIP_DIRS "" CACHE STRING
    "Folders (relative to the source root, ;-separated) to leave out of the build, for development")

function(rtdw_add_child_dirs)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child IN LISTS children)
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child}
       AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${child})
      if(rel IN_LIST RTDW_SKIP_DIRS)
        message(STATUS "rtdw: skipping ${rel} (RTDW_SKIP_DIRS)")
        continue()
      endif()
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()

# rtdw_test(NAME SOURCES a.cc b.cc LIBS x y [LABELS l] [TIMEOUT s] [PARTS p1 filter1 p2 filter2...])
# A GoogleTest executable registered with CTest as one test (its gtest cases run inside it). With
# PARTS, one CTest test per part instead, NAME_<part>, running the cases its --gtest_filter
# selects, so that `ctest -j` runs the parts of a long executable in parallel (TIMEOUT and LABELS
# apply to each). No case may be left out: let the last part's filter be the negation of the
# others' ("-A.*:B.*").
function(rtdw_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;PARTS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  set(tests ${name})
  if(T_PARTS)
    set(tests "")
    list(LENGTH T_PARTS n)
    math(EXPR odd "${n} % 2")
    if(NOT odd EQUAL 0)
      message(FATAL_ERROR "rtdw_test(${name}): PARTS takes pairs of a part name and a gtest filter")
    endif()
    math(EXPR last "${n} - 2")
    foreach(i RANGE 0 ${last} 2)
      math(EXPR j "${i} + 1")
      list(GET T_PARTS ${i} part)
      list(GET T_PARTS ${j} filter)
      add_test(NAME ${name}_${part} COMMAND ${name} --gtest_filter=${filter}
               WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
      list(APPEND tests ${name}_${part})
    endforeach()
  else()
    add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${tests} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${tests} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
