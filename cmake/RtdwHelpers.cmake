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

# rtdw_test(NAME SOURCES a.cc b.cc LIBS x y [LABELS l] [TIMEOUT s])
# A GoogleTest executable registered with CTest as one test (its gtest cases run inside it).
function(rtdw_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
