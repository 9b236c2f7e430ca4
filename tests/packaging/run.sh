#!/bin/sh
# Packaging checks: what the update executor's build relies on to find, link
# and upgrade libmigrate.
#   - ABI hygiene of build/libmigrate.so and libmigrate.a;
#   - a host that uses its own Lua state and cJSON beside libmigrate;
#   - a C++ host, and the header on its own;
#   - `make install DESTDIR=... PREFIX=/usr` consumed from outside the tree
#     through pkg-config only (shared and static), reinstall, uninstall.
# Lua and cJSON are dynamic dependencies even of libmigrate.so: Debian ships
# liblua5.4.a without -fPIC and no libcjson.a at all, so neither can be linked
# into the shared library. The checks below assert exactly that.
#
# Run by `make test` through $(BUILD)/tests/packaging (mk/install.mk), which
# sets the PKG_* variables. Prints one line per check and "N passed, N failed".

# Compiler and linker flag lists ($san, $deps_libs, pkg-config's output) are
# split into words on purpose:
# shellcheck disable=SC2086,SC2046
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PKG_BUILD:?run through make test: mk/install.mk sets PKG_BUILD}
version=${PKG_VERSION:?} major=${PKG_MAJOR:?}
cc=${PKG_CC:-cc} cxx=${PKG_CXX:-g++} make=${PKG_MAKE:-make}
# The hosts are built the way the library was (sanitizers included), so that
# they link against it and so that their runs are checked too.
san=${PKG_SANFLAGS:-}
# Its own make, not a part of the one running `make test`.
unset MAKEFLAGS MFLAGS MAKELEVEL
deps_cflags=$(pkg-config --cflags lua5.4 libcjson yaml-0.1)
deps_libs=$(pkg-config --libs lua5.4 libcjson yaml-0.1)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/migrate-packaging.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
log=$tmp/check.log
passed=0
failed=0

# check NAME FUNCTION: runs FUNCTION under set -e in a subshell; its output is
# shown only when it fails.
check() {
    name=$1
    shift
    # Not inside the if: a condition would switch set -e off in there.
    (set -e; "$@") > "$log" 2>&1
    # shellcheck disable=SC2181
    if [ $? -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        sed 's/^/     /' "$log"
    fi
}

fail() {
    echo "$*"
    return 1
}

# ---- fixtures ---------------------------------------------------------------

# tree DIR: a migrations tree with one migration, v1.0.0/001_mark, that adds
# "migrated": true to ~/config.json through the fs and json modules, and a
# home holding that config.
tree() {
    rm -rf "$1"
    mkdir -p "$1/migrations/v1.0.0" "$1/home"
    cat > "$1/migrations/v1.0.0/001_mark.lua" <<'EOF'
local CONFIG = "~/config.json"

function check()
  return fs.read_json(CONFIG).migrated == true
end

function migrate()
  local config = fs.read_json(CONFIG)
  config.migrated = true
  fs.write_json(CONFIG, config)
  return true
end
EOF
    printf '{"name": "demo"}\n' > "$1/home/config.json"
}

# migrated DIR: the migration's effect is there and recorded.
migrated() {
    grep -q '"migrated": *true' "$1/home/config.json" ||
        fail "config not migrated: $(cat "$1/home/config.json")"
    grep -q 'v1.0.0/001_mark' "$1/home/.teleclaude/migration_state.json" ||
        fail "not recorded in the state file"
}

src=$tmp/src
mkdir -p "$src" "$tmp/bin"

# The consumer: knows libmigrate only through <migrate.h>. Runs the tree's
# migrations up to 1.0.0 and prints "<library version> <id> <outcome>".
cat > "$src/consumer.c" <<'EOF'
#include <migrate.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char header_version[64];
    migrate_options opts;
    migrate_report *report = NULL;
    const migrate_result *m;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: consumer MIGRATIONS HOME\n");
        return 2;
    }
    snprintf(header_version, sizeof header_version, "%d.%d.%d", MIGRATE_VERSION_MAJOR,
             MIGRATE_VERSION_MINOR, MIGRATE_VERSION_PATCH);
    if (strcmp(header_version, migrate_library_version()) != 0) {
        fprintf(stderr, "header %s, library %s\n", header_version, migrate_library_version());
        return 1;
    }
    if (migrate_options_init(&opts, MIGRATE_OPTIONS_VERSION) != MIGRATE_OK) {
        fprintf(stderr, "migrate_options_init refused MIGRATE_OPTIONS_VERSION\n");
        return 1;
    }
    opts.migrations_dir = argv[1];
    opts.home = argv[2];
    rc = migrate_run(NULL, "1.0.0", &opts, &report);
    m = migrate_report_get(report, 0);
    if (rc != MIGRATE_OK || migrate_report_count(report) != 1 || m == NULL) {
        fprintf(stderr, "migrate_run: %s: %s\n", migrate_strerror(rc),
                report != NULL && migrate_report_error(report) ? migrate_report_error(report) : "");
        migrate_report_free(report);
        return 1;
    }
    printf("%s %s %s\n", migrate_library_version(), m->id, migrate_outcome_name(m->outcome));
    migrate_report_free(report);
    return 0;
}
EOF

# A host with a Lua state and cJSON documents of its own, used before,
# during (the state stays open) and after a migration run.
cat > "$src/coexist.c" <<'EOF'
#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <migrate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HOST_DEFINES_MIG
/* The library's internal names are hidden inside libmigrate.so: a host
 * function of the same name must not replace them. */
int mig_state_load(void);
int mig_state_load(void)
{
    fprintf(stderr, "the host's mig_state_load was called by libmigrate\n");
    exit(3);
}
#endif

static int lua_number(lua_State *L, const char *chunk, lua_Integer *out)
{
    int isnum = 0;
    if (luaL_dostring(L, chunk) != LUA_OK) {
        fprintf(stderr, "host Lua: %s\n", lua_tostring(L, -1));
        return 0;
    }
    *out = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    return isnum;
}

static int report_status_ok(const migrate_report *report)
{
    char *text = migrate_report_json(report);
    cJSON *parsed = text != NULL ? cJSON_Parse(text) : NULL;
    cJSON *status = cJSON_GetObjectItemCaseSensitive(parsed, "status");
    int ok = cJSON_IsString(status) && strcmp(status->valuestring, "ok") == 0;
    cJSON_Delete(parsed);
    free(text);
    return ok;
}

int main(int argc, char **argv)
{
    const char *doc_text = "{\"plan\":[1,2,3],\"name\":\"host\"}";
    lua_State *L = luaL_newstate();
    cJSON *doc = cJSON_Parse(doc_text);
    migrate_options opts;
    migrate_report *report = NULL;
    lua_Integer before = 0, after = 0;
    char *printed;
    int rc, ok;

    if (argc != 3 || L == NULL || doc == NULL)
        return 2;
    luaL_openlibs(L);
    if (!lua_number(L, "total = 0 for i = 1, 10 do total = total + i end return total", &before))
        return 1;

    migrate_options_init(&opts, MIGRATE_OPTIONS_VERSION);
    opts.migrations_dir = argv[1];
    opts.home = argv[2];
    rc = migrate_run(NULL, "1.0.0", &opts, &report);

    ok = lua_number(L, "return total * 2", &after);
    printed = cJSON_PrintUnformatted(doc);
    printf("lua %lld %lld, cjson %s, migrate %s %s, report %s, io.write %s\n",
           (long long)before, (long long)after, printed != NULL ? printed : "NULL",
           migrate_strerror(rc),
           migrate_report_get(report, 0) != NULL
               ? migrate_outcome_name(migrate_report_get(report, 0)->outcome)
               : "none",
           report_status_ok(report) ? "ok" : "bad",
           /* the host's Lua keeps the libraries libmigrate's sandbox withholds */
           luaL_dostring(L, "return io.write ~= nil") == LUA_OK && lua_toboolean(L, -1) ? "yes"
                                                                                        : "no");
    ok = ok && rc == MIGRATE_OK && printed != NULL && strcmp(printed, doc_text) == 0;
    cJSON_free(printed);
    cJSON_Delete(doc);
    migrate_report_free(report);
    lua_close(L);
    return ok ? 0 : 1;
}
EOF

# A C++ host: the header's extern "C", its types in C++11 code, a callback
# with C linkage collecting events into a std::vector.
cat > "$src/host.cpp" <<'EOF'
#include <migrate.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {
struct report_deleter {
    void operator()(migrate_report *r) const { migrate_report_free(r); }
};
typedef std::unique_ptr<migrate_report, report_deleter> report_ptr;
}

extern "C" {
static int on_event(const migrate_event *event, void *payload)
{
    std::vector<std::string> *seen = static_cast<std::vector<std::string> *>(payload);
    if (event->kind == MIGRATE_EVENT_DONE)
        seen->push_back(std::string(event->migration->id) + " " +
                        migrate_outcome_name(event->migration->outcome));
    return 0;
}
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    std::vector<std::string> seen;
    migrate_options opts = MIGRATE_OPTIONS_INIT;
    opts.migrations_dir = argv[1];
    opts.home = argv[2];
    opts.on_event = on_event;
    opts.payload = &seen;
    migrate_report *raw = nullptr;
    int rc = migrate_run(nullptr, "1.0.0", &opts, &raw);
    report_ptr report(raw);
    if (rc != MIGRATE_OK) {
        std::fprintf(stderr, "%s: %s\n", migrate_strerror(rc), migrate_report_error(report.get()));
        return 1;
    }
    for (const std::string &line : seen)
        std::printf("%s\n", line.c_str());
    return 0;
}
EOF

# ---- ABI of the build tree ----------------------------------------------------

exported() {
    nm -D --defined-only "$build/libmigrate.so" | awk '{ print $3 }' | sort
}

exports_only_migrate() {
    exported > "$tmp/exported"
    [ -s "$tmp/exported" ] || fail "nothing exported"
    if grep -v '^migrate_' "$tmp/exported"; then fail "^ exported without the migrate_ prefix"; fi
    if grep -E '^(lua|luaL|luaopen)_|^cJSON_' "$tmp/exported"; then fail "^ Lua/cJSON exported"; fi
}
check "libmigrate.so exports only migrate_* (no lua_*, luaL_*, cJSON_*)" exports_only_migrate

exports_match_header() {
    exported > "$tmp/exported"
    grep '^MIGRATE_EXTERN' "$root/include/migrate.h" | grep -o 'migrate_[a-z0-9_]*(' |
        tr -d '(' | sort > "$tmp/declared"
    diff "$tmp/declared" "$tmp/exported" || fail "< declared in migrate.h only, > exported only"
}
check "libmigrate.so exports exactly the functions migrate.h declares" exports_match_header

soname_is_major() {
    readelf -d "$build/libmigrate.so" | grep -F "(SONAME)" > "$tmp/soname"
    cat "$tmp/soname"
    grep -qF "[libmigrate.so.$major]" "$tmp/soname" || fail "SONAME is not libmigrate.so.$major"
    # SPEC §7.1: versioned options and the int callback are the 1.0 break.
    [ "$major" -ge 1 ] || fail "MAJOR is $major: the versioned-options API is libmigrate.so.1"
    grep -q '^#define MIGRATE_OPTIONS_VERSION ' "$root/include/migrate.h" ||
        fail "migrate.h has no MIGRATE_OPTIONS_VERSION"
}
check "SONAME is libmigrate.so.$major (1 or later: versioned options)" soname_is_major

lua_cjson_dynamic() {
    readelf -d "$build/libmigrate.so" | grep -F "(NEEDED)" > "$tmp/needed"
    grep -q '\[liblua5\.4\.so' "$tmp/needed" || fail "liblua5.4.so not NEEDED"
    grep -q '\[libcjson\.so' "$tmp/needed" || fail "libcjson.so not NEEDED"
}
check "Lua and cJSON stay dynamic dependencies of libmigrate.so" lua_cjson_dynamic

archive_namespace() {
    nm -g --defined-only "$build/libmigrate.a" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/globals"
    [ -s "$tmp/globals" ] || fail "no globals in libmigrate.a"
    if grep -Ev '^(migrate|mig)_' "$tmp/globals"; then fail "^ globals outside migrate_/mig_"; fi
}
check "libmigrate.a defines only migrate_* and mig_* globals" archive_namespace

# ---- hosts built against the build tree ----------------------------------------

# The shared library under its SONAME, as the dynamic linker looks for it.
mkdir -p "$tmp/solib"
ln -s "$build/libmigrate.so" "$tmp/solib/libmigrate.so.$major"
ln -s "$build/libmigrate.so" "$tmp/solib/libmigrate.so"

expect_coexist() {
    expected='lua 55 110, cjson {"plan":[1,2,3],"name":"host"}, migrate success applied, report ok, io.write yes'
    out=$("$@" "$tmp/run/migrations" "$tmp/run/home")
    echo "$out"
    [ "$out" = "$expected" ] || fail "expected: $expected"
    migrated "$tmp/run"
}

coexist_shared() {
    tree "$tmp/run"
    $cc $san -I"$root/include" $deps_cflags -o "$tmp/coexist-shared" "$src/coexist.c" \
        -L"$tmp/solib" -lmigrate $deps_libs
    export LD_LIBRARY_PATH="$tmp/solib"
    expect_coexist "$tmp/coexist-shared"
}
check "a host's own lua_State and cJSON work beside libmigrate.so" coexist_shared

coexist_static() {
    tree "$tmp/run"
    $cc $san -I"$root/include" $deps_cflags -o "$tmp/coexist-static" "$src/coexist.c" \
        "$build/libmigrate.a" $deps_libs
    expect_coexist "$tmp/coexist-static"
}
check "a host's own lua_State and cJSON work beside libmigrate.a" coexist_static

host_mig_names() {
    tree "$tmp/run"
    $cc $san -DHOST_DEFINES_MIG -I"$root/include" $deps_cflags -o "$tmp/coexist-mig" \
        "$src/coexist.c" -L"$tmp/solib" -lmigrate $deps_libs
    export LD_LIBRARY_PATH="$tmp/solib"
    expect_coexist "$tmp/coexist-mig"
}
check "a host's own mig_* function does not replace libmigrate.so's internals" host_mig_names

cxx_host() {
    tree "$tmp/run"
    $cxx -std=c++11 -Wall -Wextra -Werror -pedantic $san -I"$root/include" -o "$tmp/host-cxx" \
        "$src/host.cpp" "$build/libmigrate.a" $deps_libs
    out=$("$tmp/host-cxx" "$tmp/run/migrations" "$tmp/run/home")
    echo "$out"
    [ "$out" = "v1.0.0/001_mark applied" ] || fail "expected: v1.0.0/001_mark applied"
    migrated "$tmp/run"
}
check "a C++11 host (-Wall -Wextra -Werror -pedantic) runs a migration" cxx_host

header_alone() {
    # MIGRATE_OPTIONS_INIT must be a valid initializer in C99 and C++98 alike.
    printf '%s\n' '#include <migrate.h>' \
        'int main(void) {' \
        '    migrate_options o = MIGRATE_OPTIONS_INIT;' \
        '    return migrate_library_version() == 0 || o.version != MIGRATE_OPTIONS_VERSION;' \
        '}' > "$src/alone.c"
    $cc -std=c99 -pedantic -Wall -Wextra -Werror -Wstrict-prototypes -I"$root/include" \
        -fsyntax-only "$src/alone.c"
    $cxx -std=c++98 -pedantic -Wall -Wextra -Werror -I"$root/include" -fsyntax-only \
        -x c++ "$src/alone.c"
}
check "migrate.h compiles alone as C99 and C++98 (-pedantic -Werror)" header_alone

# ---- install, consume through pkg-config, reinstall, uninstall ------------------

# The LuaLS meta file is installed when the tree has one; without it, a
# placeholder made here stands in, so the install rule is still exercised.
meta=$root/lua/meta/migrate.lua
if [ ! -f "$meta" ]; then
    meta=$tmp/placeholder-meta.lua
    printf -- '---@meta\n-- placeholder made by tests/packaging/run.sh\n' > "$meta"
fi

# mk TARGET VAR=VALUE...: the project's own make on this build.
mk() {
    $make -s -C "$root" BUILD="$build" SAN="${PKG_SAN:-}" LUA_META="$meta" LDCONFIG=: "$@"
}

# files DIR: every file and symlink under DIR, relative, with a link's target.
files() {
    (cd "$1" && find . \( -type f -o -type l \) | sort | while read -r f; do
        if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f"; fi
    done)
}

dest=$tmp/dest
lib=$dest/usr/lib

install_files() {
    mk install DESTDIR="$dest" PREFIX=/usr
    files "$dest" > "$tmp/installed"
    cat > "$tmp/expected" <<EOF
./usr/include/migrate.h
./usr/lib/libmigrate.a
./usr/lib/libmigrate.so -> libmigrate.so.$major
./usr/lib/libmigrate.so.$major -> libmigrate.so.$version
./usr/lib/libmigrate.so.$version
./usr/lib/pkgconfig/migrate.pc
./usr/share/migrate/meta/migrate.lua
EOF
    diff "$tmp/expected" "$tmp/installed" || fail "< expected only, > installed only"
    cmp "$root/include/migrate.h" "$dest/usr/include/migrate.h"
    cmp "$meta" "$dest/usr/share/migrate/meta/migrate.lua"
    cmp "$build/libmigrate.a" "$lib/libmigrate.a"
    readelf -d "$lib/libmigrate.so.$version" | grep -qF "[libmigrate.so.$major]" ||
        fail "installed library's SONAME is not libmigrate.so.$major"
}
check "make install DESTDIR=... PREFIX=/usr installs the library, links, header, .pc, meta" \
    install_files

pc() {
    PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest pkg-config "$@"
}

pc_file() {
    cat "$lib/pkgconfig/migrate.pc"
    if grep -F "$dest" "$lib/pkgconfig/migrate.pc"; then fail "DESTDIR baked into migrate.pc"; fi
    grep -qx 'prefix=/usr' "$lib/pkgconfig/migrate.pc" || fail "prefix is not /usr"
    grep -qx 'Requires.private: lua5.4 libcjson yaml-0.1' "$lib/pkgconfig/migrate.pc" ||
        fail "Requires.private is not lua5.4 libcjson yaml-0.1"
    [ "$(pc --modversion migrate)" = "$version" ] || fail "pkg-config --modversion is not $version"
    [ "$(pc --variable=libdir migrate)" = "$lib" ] || fail "libdir is not $lib"
}
check "migrate.pc: prefix /usr, no DESTDIR inside, Version $version, Lua and cJSON private" pc_file

version_one() {
    hdr=$(for p in MAJOR MINOR PATCH; do
        sed -n "s/^#define MIGRATE_VERSION_$p \([0-9]*\)\$/\1/p" "$root/include/migrate.h"
    done | paste -sd.)
    echo "header $hdr, make $version"
    [ "$hdr" = "$version" ] || fail "the Makefile's VERSION is not the header's"
    [ -f "$build/libmigrate.so.$hdr" ] || fail "no build/libmigrate.so.$hdr"
    # migrate_library_version() is compared with the header by the consumer
}
check "one version: migrate.h, the Makefile and the file names agree ($version)" version_one

consumer_shared() {
    tree "$tmp/app"
    $cc $san -o "$tmp/bin/consumer" "$src/consumer.c" $(pc --cflags --libs migrate)
    readelf -d "$tmp/bin/consumer" | grep -qF "[libmigrate.so.$major]" ||
        fail "consumer does not need libmigrate.so.$major"
    out=$(LD_LIBRARY_PATH=$lib "$tmp/bin/consumer" "$tmp/app/migrations" "$tmp/app/home")
    echo "$out"
    [ "$out" = "$version v1.0.0/001_mark applied" ] || fail "first run"
    migrated "$tmp/app"
    out=$(LD_LIBRARY_PATH=$lib "$tmp/bin/consumer" "$tmp/app/migrations" "$tmp/app/home")
    echo "$out"
    [ "$out" = "$version v1.0.0/001_mark skipped_state" ] || fail "second run"
}
check "a consumer built with pkg-config --cflags --libs migrate runs a migration (shared)" \
    consumer_shared

# The linker prefers libmigrate.so when both sit in libdir, so a static link
# names the archive; pkg-config --static adds what it needs (Lua, cJSON, -lm).
# The same command as README.md's.
static_libs() {
    pc --static --libs migrate | sed 's/-lmigrate\b/-l:libmigrate.a/'
}

consumer_static() {
    tree "$tmp/app"
    $cc $san -o "$tmp/bin/consumer-static" "$src/consumer.c" $(pc --cflags migrate) $(static_libs)
    if readelf -d "$tmp/bin/consumer-static" | grep -F libmigrate; then fail "^ still needs libmigrate.so"; fi
    out=$("$tmp/bin/consumer-static" "$tmp/app/migrations" "$tmp/app/home")
    echo "$out"
    [ "$out" = "$version v1.0.0/001_mark applied" ] || fail "static run"
    migrated "$tmp/app"
}
check "a consumer linked with pkg-config --static --libs migrate runs a migration (static)" \
    consumer_static

reinstall() {
    ln "$lib/libmigrate.so.$version" "$tmp/mapped.so"
    mk install DESTDIR="$dest" PREFIX=/usr
    files "$dest" > "$tmp/reinstalled"
    diff "$tmp/installed" "$tmp/reinstalled" || fail "reinstall changed the file set"
    [ "$(stat -c %h "$tmp/mapped.so")" = 1 ] ||
        fail "the installed library was rewritten in place, not replaced"
    LD_LIBRARY_PATH=$lib "$tmp/bin/consumer" "$tmp/app/migrations" "$tmp/app/home"
}
check "reinstalling replaces libmigrate.so.$version rather than rewriting a mapped file" reinstall

uninstall_all() {
    mk uninstall DESTDIR="$dest" PREFIX=/usr
    files "$dest" > "$tmp/left"
    [ ! -s "$tmp/left" ] || { cat "$tmp/left"; fail "^ left behind"; }
    [ ! -e "$dest/usr/share/migrate" ] || fail "share/migrate left behind"
    tree "$tmp/app"
    out=$("$tmp/bin/consumer-static" "$tmp/app/migrations" "$tmp/app/home")
    [ "$out" = "$version v1.0.0/001_mark applied" ] || fail "static consumer broke: $out"
}
check "make uninstall leaves no file behind; the static consumer still runs" uninstall_all

default_prefix() {
    mk install DESTDIR="$tmp/dflt"
    files "$tmp/dflt" | grep -v '^\./usr/local/' && fail "^ installed outside /usr/local"
    [ -f "$tmp/dflt/usr/local/lib/libmigrate.so.$version" ] || fail "no /usr/local/lib"
    grep -qx 'prefix=/usr/local' "$tmp/dflt/usr/local/lib/pkgconfig/migrate.pc" ||
        fail "migrate.pc prefix is not /usr/local"
    mk uninstall DESTDIR="$tmp/dflt"
    [ -z "$(files "$tmp/dflt")" ] || fail "uninstall left files"
}
check "PREFIX defaults to /usr/local" default_prefix

dir_overrides() {
    d=$tmp/opt
    mk install DESTDIR="$d" PREFIX=/opt/m LIBDIR=/opt/m/lib64 INCLUDEDIR=/opt/m/include/migrate \
        DATADIR=/opt/m/data
    [ -f "$d/opt/m/lib64/libmigrate.so.$version" ] || fail "LIBDIR not honoured"
    [ -f "$d/opt/m/include/migrate/migrate.h" ] || fail "INCLUDEDIR not honoured"
    [ -f "$d/opt/m/lib64/pkgconfig/migrate.pc" ] || fail "pkgconfig dir does not follow LIBDIR"
    [ -f "$d/opt/m/data/migrate/meta/migrate.lua" ] || fail "DATADIR not honoured"
    # shellcheck disable=SC2016 # the literal ${exec_prefix}
    grep -qx 'libdir=${exec_prefix}/lib64' "$d/opt/m/lib64/pkgconfig/migrate.pc" ||
        fail "libdir not written relative to the prefix"
    flags=$(PKG_CONFIG_PATH=$d/opt/m/lib64/pkgconfig PKG_CONFIG_SYSROOT_DIR=$d \
        pkg-config --cflags --libs migrate)
    echo "$flags"
    case " $flags " in *" -I$d/opt/m/include/migrate "*" -L$d/opt/m/lib64 "*) ;;
    *) fail "pkg-config flags do not follow INCLUDEDIR/LIBDIR" ;;
    esac
    mk uninstall DESTDIR="$d" PREFIX=/opt/m LIBDIR=/opt/m/lib64 INCLUDEDIR=/opt/m/include/migrate \
        DATADIR=/opt/m/data
    [ -z "$(files "$d")" ] || fail "uninstall left files"
}
check "LIBDIR, INCLUDEDIR and DATADIR overrides reach the files and migrate.pc" dir_overrides

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
