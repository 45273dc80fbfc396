# tx_module(NAME DIR DEPS...): a static library from every .c file in DIR (one per folder).
# Public headers live beside the sources; include them as "<dir>/<file>.h" from the repo root.
function(tx_module name)
    cmake_parse_arguments(M "" "" "LIBS" ${ARGN})
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
    if(NOT srcs)
        # A folder whose sources have not landed yet: an interface target keeps dependents linking.
        add_library(${name} INTERFACE)
        target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
        target_link_libraries(${name} INTERFACE ${M_LIBS})
        return()
    endif()
    add_library(${name} STATIC ${srcs})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${M_LIBS})
endfunction()

# tx_unit_test(FILE LIBS...): one cmocka executable per tests/unit/test_<module>.c, label "unit".
function(tx_unit_test file)
    cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
    get_filename_component(name ${file} NAME_WE)
    add_executable(${name} ${file})
    target_compile_definitions(${name} PRIVATE TX_UNIT_TEST=1)
    target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS unit
        ENVIRONMENT "TX_SOURCE_DIR=${PROJECT_SOURCE_DIR};TX_SEED_DIR=${PROJECT_SOURCE_DIR}/../shared/seed-data")
endfunction()

# tx_integration_test(FILE LIBS...): same, label "integration"; needs `ci/stack env` exported.
function(tx_integration_test file)
    cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
    get_filename_component(name ${file} NAME_WE)
    add_executable(${name} ${file})
    target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS integration
        ENVIRONMENT "TX_SOURCE_DIR=${PROJECT_SOURCE_DIR};TX_SEED_DIR=${PROJECT_SOURCE_DIR}/../shared/seed-data")
endfunction()
