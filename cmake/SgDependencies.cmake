# SgDependencies - find what smtpguard links against, by pkg-config, and
# name the Debian package to install when something is missing.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()
find_package(Threads REQUIRED)

# sg_require_pkg(<prefix> <pkg-config module> <Debian package>)
#   Defines the imported target PkgConfig::<prefix> or stops with a message
#   that says which Debian package provides the module.
macro(sg_require_pkg prefix module debpkg)
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
    if(NOT ${prefix}_FOUND)
        message(FATAL_ERROR
            "${module} not found by pkg-config: apt-get install ${debpkg}")
    endif()
    message(STATUS "Found ${module} ${${prefix}_VERSION}")
endmacro()

sg_require_pkg(SQLITE3 sqlite3 libsqlite3-dev)
sg_require_pkg(MILTER milter libmilter-dev)
sg_require_pkg(LDNS ldns libldns-dev)
# zlib: smtpguardctl report reads logrotate's .gz files (and plain ones).
sg_require_pkg(ZLIB zlib zlib1g-dev)

# libspf2 ships no pkg-config file: header and library by path.
find_path(SPF2_INCLUDE_DIR spf2/spf.h)
find_library(SPF2_LIBRARY spf2)
if(NOT SPF2_INCLUDE_DIR OR NOT SPF2_LIBRARY)
    message(FATAL_ERROR "libspf2 not found: apt-get install libspf2-dev")
endif()
add_library(SG::SPF2 UNKNOWN IMPORTED)
set_target_properties(SG::SPF2 PROPERTIES IMPORTED_LOCATION "${SPF2_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SPF2_INCLUDE_DIR}")
message(STATUS "Found libspf2: ${SPF2_LIBRARY}")
if(SG_BUILD_TESTS)
    sg_require_pkg(CHECK check check)
endif()
