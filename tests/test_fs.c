/* test_fs.c - the `fs` module as a migration script sees it: what each
 * function does, and that no path, however spelled, reaches outside the
 * allowed roots, the migration state, or a read-only check(). */
#include "internal.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#define READONLY_REASON "check() must not change anything"

typedef struct fixture {
    char *home;    /* "~" and the only root, unless extra is set */
    char *outside; /* a directory beside home that scripts must not reach */
    char *extra;   /* a second root on another file system, or NULL */
    char *state, *lock;
    const char *roots[3];
    const char *protected_paths[3];
    mig_fsenv env;
    lua_State *L;
} fixture;

/* A json stand-in: the real module is built elsewhere. decode accepts
 * anything that starts with "{"; encode checks it is asked to indent. */
static const char json_stub[] =
    "return {\n"
    "  decode = function(text)\n"
    "    if text:sub(1, 1) ~= '{' then error('unexpected token', 0) end\n"
    "    return {raw = text}\n"
    "  end,\n"
    "  encode = function(value, opts)\n"
    "    assert(opts and opts.indent == 2, 'encode called without indent = 2')\n"
    "    if value.bad then error('cannot encode a function', 0) end\n"
    "    return '{\\n  \"k\": ' .. tostring(value.k) .. '\\n}'\n"
    "  end,\n"
    "}\n";

static char *real_tmpdir(void)
{
    char *dir = tu_tmpdir();
    char *real = realpath(dir, NULL); /* roots are symlink-free */
    assert_non_null(real);
    free(dir);
    return real;
}

static void set_global_string(lua_State *L, const char *name, const char *value)
{
    lua_pushstring(L, value);
    lua_setglobal(L, name);
}

/* Opens fs as the sandbox does: the C table, then lua/fs.lua over it. */
static void open_fs(lua_State *L, mig_fsenv *env)
{
    mig_open_fs(L, env);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "fs");
    const mig_embedded *chunk = mig_embedded_find("lua/fs.lua");
    assert_non_null(chunk);
    assert_int_equal(luaL_loadbuffer(L, chunk->data, chunk->len, "@lua/fs.lua"), LUA_OK);
    lua_insert(L, -2);
    assert_int_equal(luaL_dostring(L, json_stub), LUA_OK);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "json");
    assert_int_equal(lua_pcall(L, 2, 0, 0), LUA_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = real_tmpdir();
    f->outside = real_tmpdir();
    assert_int_equal(chmod(f->home, 0755), 0); /* let uid 65534 in */
    f->state = tu_path(f->home, ".teleclaude/migration_state.json");
    f->lock = tu_path(f->home, ".teleclaude/migration_state.json.lock");
    tu_write(f->home, ".teleclaude/migration_state.json", "{\"applied\": []}");
    tu_write(f->home, ".teleclaude/migration_state.json.lock", "");
    f->roots[0] = f->home;
    f->protected_paths[0] = f->state;
    f->protected_paths[1] = f->lock;
    f->env = (mig_fsenv){f->home, f->roots, f->protected_paths, NULL, NULL, NULL, NULL};
    f->L = luaL_newstate();
    assert_non_null(f->L);
    luaL_openlibs(f->L);
    open_fs(f->L, &f->env);
    set_global_string(f->L, "HOME", f->home);
    set_global_string(f->L, "OUT", f->outside);
    set_global_string(f->L, "STATE", f->state);
    set_global_string(f->L, "LOCK", f->lock);
    set_global_string(f->L, "OUTNAME", strrchr(f->outside, '/') + 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    lua_close(f->L);
    tu_rmtree(f->home);
    tu_rmtree(f->outside);
    if (f->extra != NULL)
        tu_rmtree(f->extra);
    free(f->extra);
    free(f->home);
    free(f->outside);
    free(f->state);
    free(f->lock);
    free(f);
    return 0;
}

/* ---- Running scripts ------------------------------------------------------ */

static char last_error[8192];

/* Runs code as chunk "script.lua"; on error its message is in last_error. */
static int run(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    int rc = luaL_loadbuffer(L, code, strlen(code), "@script.lua");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, 0);
    last_error[0] = '\0';
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        snprintf(last_error, sizeof last_error, "%s", msg != NULL ? msg : "(not a string)");
    }
    lua_settop(L, 0);
    return rc;
}

#define assert_lua_ok(f, code)                                                  \
    do {                                                                        \
        if (run((f)->L, (code)) != LUA_OK)                                      \
            fail_msg("script failed:\n%s\n-> %s", (code), last_error);          \
    } while (0)

#define assert_lua_error(f, code, expected)                                     \
    do {                                                                        \
        if (run((f)->L, (code)) == LUA_OK)                                      \
            fail_msg("script did not fail:\n%s", (code));                       \
        if (strstr(last_error, (expected)) == NULL)                             \
            fail_msg("script:\n%s\n-> %s\nexpected: %s", (code), last_error, (expected)); \
    } while (0)

static mode_t mode_of(const char *dir, const char *rel)
{
    char *path = tu_path(dir, rel);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    free(path);
    return st.st_mode & 07777;
}

static void make_link(const char *target, const char *dir, const char *rel)
{
    char *path = tu_path(dir, rel);
    assert_int_equal(symlink(target, path), 0);
    free(path);
}

static void make_dir(const char *dir, const char *rel)
{
    char *path = tu_path(dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
    free(path);
}

/* ---- Snapshots: "did anything at all change under dir?" -------------------- */

static struct {
    char *buf;
    size_t len, cap;
    size_t root_len;
} snap;

static void snap_append(const char *text, size_t len)
{
    if (snap.len + len + 1 > snap.cap) {
        snap.cap = (snap.len + len + 1) * 2;
        snap.buf = realloc(snap.buf, snap.cap);
        assert_non_null(snap.buf);
    }
    memcpy(snap.buf + snap.len, text, len);
    snap.len += len;
    snap.buf[snap.len] = '\0';
}

static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof line, "%s %o %lld %lld.%09ld\n", path + snap.root_len,
                     (unsigned)st->st_mode, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    snap_append(line, (size_t)n);
    if (S_ISREG(st->st_mode)) {
        char *content = tu_read(path, NULL);
        if (content != NULL)
            snap_append(content, strlen(content));
        free(content);
    } else if (S_ISLNK(st->st_mode)) {
        ssize_t len = readlink(path, line, sizeof line);
        if (len > 0)
            snap_append(line, (size_t)len);
    }
    snap_append("\n", 1);
    return 0;
}

/* Every entry under dir with its mode, size, mtime and content; free() it. */
static char *snapshot(const char *dir)
{
    snap.buf = NULL;
    snap.len = snap.cap = 0;
    snap.root_len = strlen(dir);
    snap_append("", 0);
    assert_int_equal(nftw(dir, snap_entry, 16, FTW_PHYS), 0);
    return snap.buf;
}

/* ---- Running as another user ------------------------------------------------ */

/* Runs code as uid/gid 65534 in a child when root (root bypasses file
 * permissions), else in this process; true if it failed with `expected`. */
static bool fails_as_nobody(fixture *f, const char *code, const char *expected)
{
    if (getuid() != 0)
        return run(f->L, code) != LUA_OK && strstr(last_error, expected) != NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        bool ok = run(f->L, code) != LUA_OK && strstr(last_error, expected) != NULL;
        if (!ok)
            fprintf(stderr, "as uid 65534: %s\n-> %s\n", code, last_error);
        lua_close(f->L); /* valgrind checks the child for leaks too */
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- read ----------------------------------------------------------------- */

static void test_read_returns_whole_content_including_nul_bytes(void **state)
{
    fixture *f = *state;
    char *path = tu_path(f->home, "bin");
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite("a\0b", 1, 3, out), 3);
    for (int i = 0; i < 300000; i++)
        fputc('0' + i % 10, out);
    assert_int_equal(fclose(out), 0);
    assert_lua_ok(f, "local s = fs.read('~/bin')\n"
                     "assert(#s == 300003 and s:sub(1, 3) == 'a\\0b' and s:sub(-1) == '9')");
    assert_lua_ok(f, "assert(fs.read(HOME .. '/bin') == fs.read('~/bin'))");
    tu_write(f->home, "empty", "");
    assert_lua_ok(f, "assert(fs.read('~/empty') == '')");
    free(path);
}

static void test_read_of_missing_file_names_function_path_and_reason(void **state)
{
    fixture *f = *state;
    assert_int_not_equal(run(f->L, "fs.read('~/config.json')"), LUA_OK);
    assert_string_equal(last_error,
                        "script.lua:1: fs.read: \"~/config.json\": No such file or directory");
}

static void test_read_refuses_directories_fifos_and_link_loops(void **state)
{
    fixture *f = *state;
    make_dir(f->home, "dir");
    char *fifo = tu_path(f->home, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    make_link("loop", f->home, "loop");
    assert_lua_error(f, "fs.read('~/dir')", "fs.read: \"~/dir\": Is a directory");
    assert_lua_error(f, "fs.read('~/fifo')", "fs.read: \"~/fifo\": not a regular file");
    assert_lua_error(f, "fs.read('~/loop')", "Too many levels of symbolic links");
    free(fifo);
}

static void test_read_follows_symlinks_inside_roots(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "d/e/real", "real");
    make_link("d/e", f->home, "inlink");
    make_link("inlink/real", f->home, "filelink");
    assert_lua_ok(f, "assert(fs.read('~/inlink/real') == 'real')");
    assert_lua_ok(f, "assert(fs.read('~/filelink') == 'real')");
    /* ".." after a link is taken from the link's target, as the kernel does */
    tu_write(f->home, "d/x", "d/x");
    tu_write(f->home, "x", "home x");
    assert_lua_ok(f, "assert(fs.read('~/inlink/../x') == 'd/x')");
}

/* /proc files say they are empty: neither fs.read nor fs.copy may take
 * that size for the content's. */
static void test_read_and_copy_of_files_stat_says_are_empty(void **state)
{
    fixture *f = *state;
    f->roots[1] = "/proc";
    assert_lua_ok(f, "assert(fs.stat('/proc/self/status').size == 0)");
    assert_lua_ok(f, "local s = fs.read('/proc/self/status')\n"
                     "assert(#s > 100 and s:find('^Name:') and s:sub(-1) == '\\n')");
    assert_lua_ok(f, "fs.copy('/proc/self/status', '~/status')\n"
                     "assert(fs.read('~/status'):find('^Name:'))");
}

/* ---- write ---------------------------------------------------------------- */

static void test_write_creates_and_replaces_files(void **state)
{
    fixture *f = *state;
    assert_lua_ok(f, "fs.write('~/config.json', '{}')");
    char *content = tu_read(f->home, "config.json");
    assert_string_equal(content, "{}");
    free(content);
    assert_lua_ok(f, "fs.write('~/config.json', 'new')");
    content = tu_read(f->home, "config.json");
    assert_string_equal(content, "new");
    free(content);
    assert_int_equal(tu_count_temps(f->home), 0);
}

static void test_write_keeps_existing_mode(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "secret.json", "old");
    char *path = tu_path(f->home, "secret.json");
    assert_int_equal(chmod(path, 0600), 0);
    assert_lua_ok(f, "fs.write('~/secret.json', 'new')");
    assert_int_equal(mode_of(f->home, "secret.json"), 0600);
    free(path);
}

static void test_write_applies_explicit_mode_exactly(void **state)
{
    fixture *f = *state;
    mode_t old = umask(077);
    assert_lua_ok(f, "fs.write('~/a', 'x', '0664')");
    assert_int_equal(mode_of(f->home, "a"), 0664);
    assert_lua_ok(f, "fs.write('~/a', 'x', '640')");
    assert_int_equal(mode_of(f->home, "a"), 0640);
    assert_lua_ok(f, "fs.write('~/a', 'x', 420)");
    assert_int_equal(mode_of(f->home, "a"), 0644);
    assert_lua_ok(f, "fs.write('~/a', 'x', 0x1c0)");
    assert_int_equal(mode_of(f->home, "a"), 0700);
    umask(old);
}

static void test_write_rejects_modes_that_are_not_octal(void **state)
{
    fixture *f = *state;
    assert_int_not_equal(run(f->L, "fs.write('~/a', 'x', 'rw-r--r--')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:1: bad argument #3 to 'write' (mode must be an "
                                    "octal string like \"0644\" or an integer)");
    static const char *const bad[] = {
        "'0844'", "''", "'0x1a4'", "6.5", "{}", "true", "-1", "'77777'", "' 644'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char code[128];
        snprintf(code, sizeof code, "fs.write('~/a', 'x', %s)", bad[i]);
        assert_lua_error(f, code, "mode must be an octal string like \"0644\" or an integer");
    }
    assert_lua_error(f, "fs.write('~/a', 'x', 4096)", "bad argument #3 to 'write' (mode has bits beyond 07777)");
    assert_lua_error(f, "fs.chmod('~/a', 'u+x')", "bad argument #2 to 'chmod'");
    assert_lua_error(f, "fs.mkdir('~/d', '999')", "bad argument #2 to 'mkdir'");
    assert_false(tu_exists(f->home, "a"));
    assert_false(tu_exists(f->home, "d"));
}

static void test_write_through_symlink_updates_target_and_keeps_link(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "dotfiles/config", "old");
    make_link("dotfiles/config", f->home, "config");
    char *target = tu_path(f->home, "dotfiles/config");
    assert_int_equal(chmod(target, 0600), 0);
    assert_lua_ok(f, "fs.write('~/config', 'new')");
    assert_lua_ok(f, "assert(fs.readlink('~/config') == 'dotfiles/config')");
    char *content = tu_read(f->home, "dotfiles/config");
    assert_string_equal(content, "new");
    assert_int_equal(mode_of(f->home, "dotfiles/config"), 0600);
    char *dotfiles = tu_path(f->home, "dotfiles");
    assert_int_equal(tu_count_temps(f->home) + tu_count_temps(dotfiles), 0);
    free(dotfiles);
    free(content);
    free(target);
}

static void test_write_onto_directory_fails_and_leaves_no_temp(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "conf/inner", "keep");
    assert_lua_error(f, "fs.write('~/conf', 'x')", "fs.write: \"~/conf\": Is a directory");
    assert_lua_error(f, "fs.write('~/missing/conf', 'x')",
                     "fs.write: \"~/missing/conf\": No such file or directory");
    assert_int_equal(tu_count_temps(f->home), 0);
    assert_false(tu_exists(f->home, "missing"));
    char *inner = tu_read(f->home, "conf/inner");
    assert_string_equal(inner, "keep");
    free(inner);
}

static struct {
    const char *home;
    int calls, temps;
    char *target;
} seen;

static void observe_before_rename(const char *point)
{
    if (strcmp(point, "write_atomic:before-rename") != 0)
        return;
    seen.calls++;
    seen.temps = tu_count_temps(seen.home);
    seen.target = tu_read(seen.home, "config.json");
}

static void test_write_is_complete_in_temp_before_it_replaces_target(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "config.json", "old");
    memset(&seen, 0, sizeof seen);
    seen.home = f->home;
    tu_seam_hook = observe_before_rename;
    int rc = run(f->L, "fs.write('~/config.json', 'new')");
    tu_seam_hook = NULL;
    assert_int_equal(rc, LUA_OK);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.temps, 1);
    assert_string_equal(seen.target, "old");
    free(seen.target);
    char *content = tu_read(f->home, "config.json");
    assert_string_equal(content, "new");
    free(content);
}

/* ---- exists, is_file, is_dir, stat ------------------------------------------ */

static void test_exists_sees_files_dirs_and_dangling_links(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    make_dir(f->home, "dir");
    make_link("nowhere", f->home, "dangling");
    assert_lua_ok(f, "assert(fs.exists('~/file') == true)");
    assert_lua_ok(f, "assert(fs.exists('~/dir') == true and fs.exists('~') == true)");
    assert_lua_ok(f, "assert(fs.exists('~/dangling') == true)");
    assert_lua_ok(f, "assert(fs.exists('~/missing') == false)");
    assert_lua_ok(f, "assert(fs.exists('~/file/below') == false)");
}

static void test_is_file_and_is_dir_follow_links(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    make_dir(f->home, "dir");
    make_link("file", f->home, "file_link");
    make_link("dir", f->home, "dir_link");
    make_link("nowhere", f->home, "dangling");
    assert_lua_ok(f, "assert(fs.is_file('~/file') and not fs.is_dir('~/file'))");
    assert_lua_ok(f, "assert(fs.is_dir('~/dir') and not fs.is_file('~/dir'))");
    assert_lua_ok(f, "assert(fs.is_file('~/file_link') and fs.is_dir('~/dir_link'))");
    assert_lua_ok(f, "assert(fs.is_file('~/missing') == false and fs.is_dir('~/missing') == false)");
    assert_lua_ok(f, "assert(fs.is_file('~/dangling') == false and fs.is_dir('~/dangling') == false)");
}

static void test_stat_reports_type_size_mode_and_mtime(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "12345");
    char *file = tu_path(f->home, "file"), *fifo = tu_path(f->home, "fifo");
    assert_int_equal(chmod(file, 0640), 0);
    make_dir(f->home, "dir");
    make_link("file", f->home, "link");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    char code[256];
    snprintf(code, sizeof code,
             "local s = fs.stat('~/file')\n"
             "assert(s.type == 'file' and s.size == 5 and s.mode == 416 and s.mtime == %lld)",
             (long long)st.st_mtime);
    assert_lua_ok(f, code);
    assert_lua_ok(f, "assert(fs.stat('~/dir').type == 'dir')");
    assert_lua_ok(f, "assert(fs.stat('~/link').type == 'link' and fs.stat('~/link').size == 4)");
    assert_lua_ok(f, "assert(fs.stat('~/fifo').type == 'other')");
    assert_lua_ok(f, "assert(fs.stat('~/missing') == nil)");
    free(file);
    free(fifo);
}

/* ---- list ----------------------------------------------------------------- */

static void test_list_returns_names_sorted_bytewise(void **state)
{
    fixture *f = *state;
    static const char *const names[] = {"b", "a", "B", "_x", "10", "9", "\xc3\xa9", ".hidden"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        tu_write(f->home, names[i], "");
    make_dir(f->home, "empty");
    assert_lua_ok(f, "local t = fs.list('~')\n"
                     "assert(table.concat(t, ',') == "
                     "'.hidden,.teleclaude,10,9,B,_x,a,b,empty,\\xc3\\xa9', table.concat(t, ','))");
    assert_lua_ok(f, "assert(#fs.list('~/empty') == 0)");
    assert_lua_error(f, "fs.list('~/a')", "fs.list: \"~/a\": Not a directory");
    assert_lua_error(f, "fs.list('~/nope')", "fs.list: \"~/nope\": No such file or directory");
}

static void test_list_of_large_directory(void **state)
{
    fixture *f = *state;
    make_dir(f->home, "many");
    for (int i = 0; i < 1000; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/%04d-entry-with-a-longer-name", i);
        tu_write(f->home, name, "");
    }
    assert_lua_ok(f, "local t = fs.list('~/many')\n"
                     "assert(#t == 1000 and t[1] == '0000-entry-with-a-longer-name'\n"
                     "       and t[1000] == '0999-entry-with-a-longer-name')");
}

/* ---- mkdir, remove, remove_tree -------------------------------------------- */

static void test_mkdir_creates_parents_and_accepts_existing_directory(void **state)
{
    fixture *f = *state;
    mode_t old = umask(022);
    assert_lua_ok(f, "fs.mkdir('~/a/b/c')");
    assert_int_equal(mode_of(f->home, "a/b/c"), 0755);
    assert_lua_ok(f, "fs.mkdir('~/a/b/c')");
    assert_lua_ok(f, "fs.mkdir('~/private', '0700')");
    assert_int_equal(mode_of(f->home, "private"), 0700);
    umask(old);
    tu_write(f->home, "file", "x");
    assert_lua_error(f, "fs.mkdir('~/file')", "fs.mkdir: \"~/file\": Not a directory");
    assert_lua_error(f, "fs.mkdir('~/file/sub')", "fs.mkdir: \"~/file/sub\": Not a directory");
}

static void test_remove_deletes_file_link_or_empty_dir(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    tu_write(f->home, "target/keep", "x");
    make_link("target", f->home, "link");
    make_dir(f->home, "empty");
    assert_lua_ok(f, "fs.remove('~/file'); fs.remove('~/link'); fs.remove('~/empty')");
    assert_false(tu_exists(f->home, "file"));
    assert_false(tu_exists(f->home, "link"));
    assert_false(tu_exists(f->home, "empty"));
    assert_true(tu_exists(f->home, "target/keep"));
    assert_lua_ok(f, "fs.remove('~/file')"); /* already gone: fine */
    assert_lua_error(f, "fs.remove('~/target')", "fs.remove: \"~/target\": Directory not empty");
    assert_true(tu_exists(f->home, "target/keep"));
}

static void test_remove_tree_deletes_everything_below(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "tree/a/b/c/file", "x");
    tu_write(f->home, "tree/top", "x");
    make_dir(f->home, "tree/empty");
    make_link("nowhere", f->home, "tree/a/dangling");
    assert_lua_ok(f, "fs.remove_tree('~/tree')");
    assert_false(tu_exists(f->home, "tree"));
    assert_lua_ok(f, "fs.remove_tree('~/tree')"); /* missing: fine */
    tu_write(f->home, "single", "x");
    assert_lua_ok(f, "fs.remove_tree('~/single')");
    assert_false(tu_exists(f->home, "single"));
}

static void test_remove_tree_removes_links_never_what_they_point_to(void **state)
{
    fixture *f = *state;
    tu_write(f->outside, "precious/data", "keep");
    tu_write(f->home, "inside/keep", "keep");
    char *precious = tu_path(f->outside, "precious");
    tu_write(f->home, "tree/file", "x");
    make_link(precious, f->home, "tree/to_outside");
    make_dir(f->home, "tree/sub");
    make_link(f->outside, f->home, "tree/sub/to_outside_root");
    make_link("../inside", f->home, "tree/to_inside");
    char *before = snapshot(f->outside);
    assert_lua_ok(f, "fs.remove_tree('~/tree')");
    assert_false(tu_exists(f->home, "tree"));
    char *after = snapshot(f->outside);
    assert_string_equal(after, before);
    assert_true(tu_exists(f->home, "inside/keep"));
    make_link("inside", f->home, "dirlink");
    assert_lua_ok(f, "fs.remove_tree('~/dirlink')");
    assert_false(tu_exists(f->home, "dirlink"));
    assert_true(tu_exists(f->home, "inside/keep"));
    free(before);
    free(after);
    free(precious);
}

/* ---- rename, copy ---------------------------------------------------------- */

static void test_rename_moves_files_dirs_and_links_themselves(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "a", "A");
    tu_write(f->home, "dir/inner", "x");
    tu_write(f->home, "b", "B");
    make_link("dir", f->home, "dirlink");
    assert_lua_ok(f, "fs.rename('~/a', '~/moved')");
    assert_false(tu_exists(f->home, "a"));
    assert_lua_ok(f, "assert(fs.read('~/moved') == 'A')");
    assert_lua_ok(f, "fs.rename('~/moved', '~/b')"); /* replaces */
    assert_lua_ok(f, "assert(fs.read('~/b') == 'A')");
    assert_lua_ok(f, "fs.rename('~/dir', '~/dir2')");
    assert_true(tu_exists(f->home, "dir2/inner"));
    assert_lua_ok(f, "fs.rename('~/dirlink', '~/link2')");
    assert_lua_ok(f, "assert(fs.readlink('~/link2') == 'dir')");
    assert_true(tu_exists(f->home, "dir2/inner"));
}

static void test_rename_errors_name_both_paths(void **state)
{
    fixture *f = *state;
    assert_int_not_equal(run(f->L, "fs.rename('~/nope', '~/x')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:1: fs.rename: \"~/nope\" -> \"~/x\": "
                                    "No such file or directory");
}

static char *extra_root_on_other_fs(fixture *f)
{
    struct stat shm, home;
    if (stat("/dev/shm", &shm) != 0 || stat(f->home, &home) != 0 || shm.st_dev == home.st_dev ||
        access("/dev/shm", W_OK) != 0)
        return NULL;
    char templ[] = "/dev/shm/libmigrate-test-XXXXXX";
    if (mkdtemp(templ) == NULL)
        return NULL;
    f->extra = strdup(templ);
    assert_non_null(f->extra);
    f->roots[1] = f->extra;
    set_global_string(f->L, "EXTRA", f->extra);
    return f->extra;
}

static void test_rename_across_file_systems_says_so(void **state)
{
    fixture *f = *state;
    if (extra_root_on_other_fs(f) == NULL)
        skip();
    tu_write(f->home, "a", "A");
    assert_lua_error(f, "fs.rename('~/a', EXTRA .. '/a')",
                     "the paths are on different file systems (use fs.copy, then fs.remove)");
    assert_true(tu_exists(f->home, "a"));
}

static void test_copy_keeps_content_and_mode(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "src", "content");
    char *src = tu_path(f->home, "src");
    assert_int_equal(chmod(src, 0751), 0);
    tu_write(f->home, "dst", "old");
    assert_lua_ok(f, "fs.copy('~/src', '~/dst'); fs.copy('~/src', '~/new')");
    char *dst = tu_read(f->home, "dst"), *created = tu_read(f->home, "new");
    assert_string_equal(dst, "content");
    assert_string_equal(created, "content");
    assert_int_equal(mode_of(f->home, "dst"), 0751);
    assert_int_equal(mode_of(f->home, "new"), 0751);
    assert_int_equal(tu_count_temps(f->home), 0);
    free(src);
    free(dst);
    free(created);
}

static void test_copy_failures_leave_no_temp(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "src", "content");
    make_dir(f->home, "dir");
    assert_lua_error(f, "fs.copy('~/nope', '~/x')", "fs.copy: \"~/nope\": No such file or directory");
    assert_lua_error(f, "fs.copy('~/dir', '~/x')", "fs.copy: \"~/dir\": Is a directory");
    assert_lua_error(f, "fs.copy('~/src', '~/dir')", "fs.copy: \"~/dir\": Is a directory");
    assert_lua_error(f, "fs.copy('~/src', '~/nope/x')",
                     "fs.copy: \"~/nope/x\": No such file or directory");
    assert_false(tu_exists(f->home, "x"));
    assert_int_equal(tu_count_temps(f->home), 0);
    assert_int_equal(tu_count_entries(f->home), 3); /* .teleclaude, src, dir */
}

/* 64 MiB of a pattern that differs in every block, so a copy that lost or
 * repeated a chunk cannot match. */
static void write_big_file(const char *path, size_t mib)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    static uint64_t block[1 << 17]; /* 1 MiB */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        block[i] = x;
    }
    for (size_t m = 0; m < mib; m++) {
        block[0] = m;
        assert_int_equal(fwrite(block, sizeof block, 1, out), 1);
    }
    assert_int_equal(fclose(out), 0);
}

static void assert_same_files(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    static char ba[1 << 20], bb[1 << 20];
    size_t na, nb;
    do {
        na = fread(ba, 1, sizeof ba, fa);
        nb = fread(bb, 1, sizeof bb, fb);
        assert_int_equal(na, nb);
        assert_memory_equal(ba, bb, na);
    } while (na > 0);
    fclose(fa);
    fclose(fb);
}

static void test_copy_of_64_mib_file_is_exact(void **state)
{
    fixture *f = *state;
    char *src = tu_path(f->home, "big"), *dst = tu_path(f->home, "big.copy");
    write_big_file(src, 64);
    assert_int_equal(chmod(src, 0640), 0);
    assert_lua_ok(f, "fs.copy('~/big', '~/big.copy')");
    assert_same_files(src, dst);
    assert_int_equal(mode_of(f->home, "big.copy"), 0640);
    assert_int_equal(tu_count_temps(f->home), 0);
    free(src);
    free(dst);
}

static void test_copy_across_file_systems_falls_back_to_read_write(void **state)
{
    fixture *f = *state;
    if (extra_root_on_other_fs(f) == NULL)
        skip();
    char *src = tu_path(f->home, "big"), *dst = tu_path(f->extra, "big");
    write_big_file(src, 3);
    assert_lua_ok(f, "fs.copy('~/big', EXTRA .. '/big')");
    assert_same_files(src, dst);
    assert_int_equal(tu_count_temps(f->extra), 0);
    free(src);
    free(dst);
}

/* ---- symlink, readlink, chmod, expand ------------------------------------------ */

static void test_symlink_stores_target_as_given(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "dir/file", "x");
    assert_lua_ok(f, "fs.symlink('dir/file', '~/rel')");
    assert_lua_ok(f, "fs.symlink(HOME .. '/dir', '~/abs')");
    assert_lua_ok(f, "fs.symlink('nowhere', '~/dangling')"); /* may dangle, inside */
    assert_lua_ok(f, "assert(fs.readlink('~/rel') == 'dir/file')");
    assert_lua_ok(f, "assert(fs.read('~/rel') == 'x' and fs.is_dir('~/abs'))");
    assert_lua_ok(f, "assert(fs.readlink('~/abs') == HOME .. '/dir')");
    assert_lua_error(f, "fs.symlink('dir', '~/rel')", "fs.symlink: \"~/rel\": File exists");
    assert_lua_error(f, "fs.symlink('x', '~/nope/l')", "fs.symlink: \"~/nope/l\": No such file or directory");
}

static void test_readlink_returns_nil_for_non_links(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    make_link("file", f->home, "link");
    assert_lua_ok(f, "assert(fs.readlink('~/link') == 'file')");
    assert_lua_ok(f, "assert(fs.readlink('~/file') == nil)");
    assert_lua_ok(f, "assert(fs.readlink('~/missing') == nil)");
    assert_lua_ok(f, "assert(fs.readlink('~') == nil)");
}

static void test_chmod_sets_mode(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    make_dir(f->home, "dir");
    assert_lua_ok(f, "fs.chmod('~/file', '0600'); fs.chmod('~/dir', 448)");
    assert_int_equal(mode_of(f->home, "file"), 0600);
    assert_int_equal(mode_of(f->home, "dir"), 0700);
    assert_lua_error(f, "fs.chmod('~/missing', '0600')",
                     "fs.chmod: \"~/missing\": No such file or directory");
}

static void test_expand_normalizes_lexically_without_confinement(void **state)
{
    fixture *f = *state;
    assert_lua_ok(f, "assert(fs.expand('~') == HOME)");
    assert_lua_ok(f, "assert(fs.expand('~/') == HOME)");
    assert_lua_ok(f, "assert(fs.expand('~/a/./b//c/../d/') == HOME .. '/a/b/d')");
    assert_lua_ok(f, "assert(fs.expand('/x/../../y') == '/y')");
    assert_lua_ok(f, "assert(fs.expand('/etc/passwd') == '/etc/passwd')");
    assert_lua_ok(f, "assert(fs.expand('/') == '/')");
    assert_lua_error(f, "fs.expand('a/b')", "fs.expand: \"a/b\": relative paths are not allowed");
}

/* ---- join, read_json, write_json (lua/fs.lua) ---------------------------------- */

static void test_join_puts_exactly_one_slash_between_parts(void **state)
{
    fixture *f = *state;
    assert_lua_ok(f, "assert(fs.join('~', 'a', 'b.json') == '~/a/b.json')");
    assert_lua_ok(f, "assert(fs.join('~/', 'a/', 'b') == '~/a/b')");
    assert_lua_ok(f, "assert(fs.join('/', 'etc') == '/etc')");
    assert_lua_ok(f, "assert(fs.join('/srv//', 'x', '', 'y') == '/srv/x/y')");
    assert_lua_ok(f, "assert(fs.join('~') == '~')");
    assert_lua_ok(f, "assert(fs.join('a', 'b') == 'a/b')");
}

static void test_join_refuses_absolute_later_parts_and_non_strings(void **state)
{
    fixture *f = *state;
    assert_int_not_equal(run(f->L, "fs.join('~', '/etc')"), LUA_OK);
    assert_string_equal(last_error,
                        "script.lua:1: fs.join: part 2 (\"/etc\") is absolute; only the first part may be");
    assert_lua_error(f, "fs.join('~', 'a', '~/b')", "part 3 (\"~/b\") is absolute");
    assert_lua_error(f, "fs.join()", "script.lua:1: bad argument #1 to 'join' (string expected, got no value)");
    assert_lua_error(f, "fs.join('~', 3)", "script.lua:1: bad argument #2 to 'join' (string expected, got number)");
}

static void test_read_json_decodes_and_names_path_on_errors(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "good.json", "{\"a\": 1}");
    tu_write(f->home, "bad.json", "nope");
    assert_lua_ok(f, "assert(fs.read_json('~/good.json').raw == '{\"a\": 1}')");
    assert_int_not_equal(run(f->L, "\nfs.read_json('~/bad.json')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:2: fs.read_json: \"~/bad.json\": unexpected token");
    assert_int_not_equal(run(f->L, "fs.read_json('~/x.json')"), LUA_OK);
    assert_string_equal(last_error,
                        "script.lua:1: fs.read_json: \"~/x.json\": No such file or directory");
    assert_lua_error(f, "fs.read_json(42)", "bad argument #1 to 'read_json' (string expected, got number)");
}

static void test_write_json_writes_indented_text_atomically_keeping_mode(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "conf.json", "{}");
    char *path = tu_path(f->home, "conf.json");
    assert_int_equal(chmod(path, 0600), 0);
    assert_lua_ok(f, "fs.write_json('~/conf.json', {k = 7})");
    char *content = tu_read(f->home, "conf.json");
    assert_string_equal(content, "{\n  \"k\": 7\n}\n");
    assert_int_equal(mode_of(f->home, "conf.json"), 0600);
    assert_int_not_equal(run(f->L, "fs.write_json('~/conf.json', {bad = true})"), LUA_OK);
    assert_string_equal(last_error,
                        "script.lua:1: fs.write_json: \"~/conf.json\": cannot encode a function");
    assert_int_not_equal(run(f->L, "fs.write_json('~/nope/x.json', {k = 1})"), LUA_OK);
    assert_string_equal(last_error,
                        "script.lua:1: fs.write_json: \"~/nope/x.json\": No such file or directory");
    free(content);
    content = tu_read(f->home, "conf.json");
    assert_string_equal(content, "{\n  \"k\": 7\n}\n");
    free(content);
    free(path);
}

/* ---- Confinement ------------------------------------------------------------ */

static void test_every_function_refuses_relative_paths(void **state)
{
    fixture *f = *state;
    static const char *const calls[] = {
        "fs.read(P)", "fs.write(P, 'x')", "fs.exists(P)", "fs.is_file(P)", "fs.is_dir(P)",
        "fs.stat(P)", "fs.list(P)", "fs.mkdir(P)", "fs.remove(P)", "fs.remove_tree(P)",
        "fs.rename(P, '~/x')", "fs.rename('~/x', P)", "fs.copy(P, '~/x')", "fs.copy('~/x', P)",
        "fs.symlink('x', P)", "fs.readlink(P)", "fs.chmod(P, '0644')", "fs.expand(P)",
        "fs.read_json(P)", "fs.write_json(P, {k = 1})",
    };
    static const char *const paths[] = {"config.json", "./x", "", "~user/x", "~x"};
    tu_write(f->home, "x", "x");
    char *before = snapshot(f->home);
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
            char code[256], expected[128];
            snprintf(code, sizeof code, "P = '%s'\n%s", paths[p], calls[i]);
            snprintf(expected, sizeof expected,
                     "\"%s\": relative paths are not allowed (use \"~/...\" or an absolute path)",
                     paths[p]);
            assert_lua_error(f, code, expected);
        }
    }
    assert_int_not_equal(run(f->L, "fs.read('config.json')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:1: fs.read: \"config.json\": relative paths are "
                                    "not allowed (use \"~/...\" or an absolute path)");
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

/* Each call with P set to each way out of home below; none may act. */
static const char *const escaping_calls[] = {
    "fs.read(P)", "fs.write(P, 'x')", "fs.exists(P)", "fs.is_file(P)", "fs.is_dir(P)",
    "fs.stat(P)", "fs.list(P)", "fs.mkdir(P)", "fs.remove(P)", "fs.remove_tree(P)",
    "fs.rename(P, '~/moved')", "fs.rename('~/a', P)", "fs.copy(P, '~/copied')",
    "fs.copy('~/a', P)", "fs.symlink('a', P)", "fs.readlink(P)", "fs.chmod(P, '0600')",
    "fs.read_json(P)", "fs.write_json(P, {k = 1})",
};

static void prepare_escape_routes(fixture *f)
{
    tu_write(f->outside, "victim", "keep");
    tu_write(f->outside, "sub/inner", "keep");
    make_link(f->outside, f->home, "out");
    char *sub = tu_path(f->outside, "sub");
    make_link(sub, f->home, "deep");
    free(sub);
    tu_write(f->home, "victim", "home victim"); /* where a lexical ".." would land */
    tu_write(f->home, "a", "a");
}

static void test_every_function_refuses_paths_outside_roots(void **state)
{
    fixture *f = *state;
    prepare_escape_routes(f);
    char *victim = tu_path(f->outside, "victim");
    const char *escapes[] = {
        victim,                         /* absolute */
        "~/../OUTNAME/victim",          /* ".." above home */
        "~/out/victim",                 /* a symlink in home to outside */
        "~/deep/../victim",             /* ".." after a link is outside */
        "~/nope/../out/victim",         /* ".." out of a missing dir, then a link */
        "~/out",                        /* (for the functions that follow links) */
    };
    char *outside_before = snapshot(f->outside), *home_before = snapshot(f->home);
    for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++) {
        for (size_t i = 0; i < sizeof escaping_calls / sizeof escaping_calls[0]; i++) {
            const char *call = escaping_calls[i];
            bool keeps_final = strstr(call, "exists") || strstr(call, "stat") ||
                               strstr(call, "remove(") || strstr(call, "remove_tree") ||
                               strstr(call, "rename") || strstr(call, "symlink") ||
                               strstr(call, "readlink");
            if (e == 5 && keeps_final)
                continue; /* "~/out" names the link itself, which is inside */
            char code[512];
            snprintf(code, sizeof code, "P = ('%s'):gsub('OUTNAME', OUTNAME)\n%s", escapes[e], call);
            assert_lua_error(f, code, "outside allowed roots");
        }
    }
    char *outside_after = snapshot(f->outside), *home_after = snapshot(f->home);
    assert_string_equal(outside_after, outside_before);
    assert_string_equal(home_after, home_before);
    /* the kernel takes ".." after the link: /etc/.. is /, outside */
    make_link("/etc", f->home, "etc");
    tu_write(f->home, "x", "x");
    assert_lua_error(f, "fs.exists('~/etc/../x')", "fs.exists: \"~/etc/../x\": outside allowed roots");
    assert_lua_error(f, "fs.write('~/etc/../x', 'y')", "outside allowed roots");
    assert_int_not_equal(run(f->L, "fs.write('/etc/passwd', 'x')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:1: fs.write: \"/etc/passwd\": outside allowed roots");
    free(victim);
    free(outside_before);
    free(outside_after);
    free(home_before);
    free(home_after);
}

static void test_symlink_refuses_targets_outside_roots(void **state)
{
    fixture *f = *state;
    prepare_escape_routes(f);
    static const char *const targets[] = {
        "'/etc/passwd'", "OUT .. '/victim'", "'../' .. OUTNAME .. '/victim'", "'out/victim'",
        "'deep/../victim'", "'out'", "'..'",
    };
    char *before = snapshot(f->home);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char code[256];
        snprintf(code, sizeof code, "fs.symlink(%s, '~/newlink')", targets[i]);
        assert_lua_error(f, code, "outside allowed roots");
    }
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    assert_lua_error(f, "fs.symlink('/etc', '~/sub/x')", "fs.symlink: \"/etc\": outside allowed roots");
    /* the link itself may name a link in home; it is that name which is made */
    assert_lua_ok(f, "assert(fs.readlink('~/out') == OUT and fs.stat('~/out').type == 'link')");
    free(before);
    free(after);
}

/* ---- Read-only (during check()) and the protected state ------------------------ */

static const char *const mutations[] = {
    "fs.write('~/a', 'x')",           "fs.write('~/new', 'x')",   "fs.mkdir('~/newdir')",
    "fs.remove('~/a')",               "fs.remove_tree('~/dir')", "fs.rename('~/a', '~/b')",
    "fs.copy('~/a', '~/c')",          "fs.symlink('a', '~/l')",   "fs.chmod('~/a', '0600')",
    "fs.write_json('~/j.json', {k = 1})",
};

static void test_mutations_are_refused_while_readonly(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "a", "a");
    tu_write(f->home, "dir/x", "x");
    make_link("a", f->home, "link");
    f->env.readonly_reason = READONLY_REASON;
    char *before = snapshot(f->home);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        char name[32], expected[96];
        sscanf(mutations[i], "fs.%31[a-z_]", name);
        snprintf(expected, sizeof expected, "script.lua:1: fs.%s: not allowed: %s", name,
                 READONLY_REASON);
        assert_lua_error(f, mutations[i], expected);
    }
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    /* reads still work */
    assert_lua_ok(f, "assert(fs.read('~/a') == 'a' and fs.exists('~/a') and fs.is_file('~/a'))");
    assert_lua_ok(f, "assert(fs.is_dir('~/dir') and fs.stat('~/a').type == 'file')");
    assert_lua_ok(f, "assert(#fs.list('~/dir') == 1 and fs.readlink('~/link') == 'a')");
    assert_lua_ok(f, "assert(fs.expand('~/a') == HOME .. '/a' and fs.join('~', 'a') == '~/a')");
    tu_write(f->home, "j.json", "{}");
    assert_lua_ok(f, "assert(fs.read_json('~/j.json').raw == '{}')");
    /* the flag is read at call time, as the sandbox flips it */
    f->env.readonly_reason = NULL;
    assert_lua_ok(f, "fs.write('~/a', 'changed')");
    char *content = tu_read(f->home, "a");
    assert_string_equal(content, "changed");
    free(content);
    free(before);
    free(after);
}

static void test_state_file_lock_and_their_ancestors_are_not_writable(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "a", "a");
    make_link(f->state, f->home, "statelink");
    static const char *const refused[] = {
        "fs.write(STATE, 'x')",
        "fs.write(LOCK, 'x')",
        "fs.write('~/.teleclaude/migration_state.json', 'x')",
        "fs.write('~/.teleclaude/.migration_state.json.tmp-abc123', 'x')",
        "fs.write('~/.teleclaude/.migration_state.json.lock.tmp-abc123', 'x')",
        "fs.write('~/statelink', 'x')",
        "fs.write('~/.teleclaude/../.teleclaude/./migration_state.json', 'x')",
        "fs.write_json(STATE, {k = 1})",
        "fs.remove(STATE)",
        "fs.remove(LOCK)",
        "fs.remove('~/.teleclaude')",
        "fs.remove_tree('~/.teleclaude')",
        "fs.remove_tree('~')",
        "fs.rename(STATE, '~/moved')",
        "fs.rename('~/a', STATE)",
        "fs.rename('~/.teleclaude', '~/t')",
        "fs.rename('~/a', '~/.teleclaude/.migration_state.json.tmp-zzzzzz')",
        "fs.copy('~/a', STATE)",
        "fs.copy('~/a', LOCK)",
        "fs.symlink('a', '~/.teleclaude/.migration_state.json.tmp-q')",
        "fs.chmod(STATE, '0644')",
        "fs.chmod('~/.teleclaude', '0755')",
        "fs.chmod('~', '0700')",
    };
    char *before = snapshot(f->home);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_lua_error(f, refused[i], "the migration state is not writable from a script");
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    assert_int_not_equal(run(f->L, "fs.remove('~/.teleclaude/migration_state.json')"), LUA_OK);
    assert_string_equal(last_error, "script.lua:1: fs.remove: \"~/.teleclaude/migration_state.json\": "
                                    "the migration state is not writable from a script");
    /* reading it is fine, and so is writing beside it */
    assert_lua_ok(f, "assert(fs.read(STATE) == '{\"applied\": []}' and fs.exists(LOCK))");
    assert_lua_ok(f, "assert(#fs.list('~/.teleclaude') == 2 and fs.stat(STATE).type == 'file')");
    assert_lua_ok(f, "assert(fs.read('~/statelink') == fs.read(STATE))");
    assert_lua_ok(f, "assert(fs.is_file(STATE) and fs.is_dir('~/.teleclaude'))");
    assert_lua_ok(f, "assert(fs.readlink(STATE) == nil and fs.read_json(STATE).raw)");
    assert_lua_ok(f, "fs.write('~/.teleclaude/other.json', 'x')");
    assert_lua_ok(f, "fs.write('~/.teleclaude/migration_state.json.bak', 'x')");
    assert_lua_ok(f, "fs.remove('~/statelink')"); /* the link, not the state */
    assert_true(tu_exists(f->state, NULL));
    free(before);
    free(after);
}

/* ---- Missing paths and permissions ------------------------------------------ */

static void test_missing_paths_per_function(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "a", "a");
    static const struct {
        const char *code, *error; /* error NULL: must succeed */
    } cases[] = {
        {"fs.read('~/nope')", "fs.read: \"~/nope\": No such file or directory"},
        {"fs.write('~/nope/x', 'x')", "fs.write: \"~/nope/x\": No such file or directory"},
        {"assert(fs.exists('~/nope') == false)", NULL},
        {"assert(fs.is_file('~/nope') == false)", NULL},
        {"assert(fs.is_dir('~/nope/deeper') == false)", NULL},
        {"assert(fs.stat('~/nope') == nil)", NULL},
        {"fs.list('~/nope')", "fs.list: \"~/nope\": No such file or directory"},
        {"fs.remove('~/nope')", NULL},
        {"fs.remove_tree('~/nope')", NULL},
        {"fs.rename('~/nope', '~/x')", "No such file or directory"},
        {"fs.rename('~/a', '~/nope/x')", "No such file or directory"},
        {"fs.copy('~/nope', '~/x')", "fs.copy: \"~/nope\": No such file or directory"},
        {"fs.symlink('a', '~/nope/l')", "fs.symlink: \"~/nope/l\": No such file or directory"},
        {"assert(fs.readlink('~/nope') == nil)", NULL},
        {"fs.chmod('~/nope', '0644')", "fs.chmod: \"~/nope\": No such file or directory"},
        {"fs.read_json('~/nope')", "fs.read_json: \"~/nope\": No such file or directory"},
        {"fs.write_json('~/nope/x', {k = 1})", "fs.write_json: \"~/nope/x\": No such file or directory"},
        {"fs.mkdir('~/nope/made/here')", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].error == NULL)
            assert_lua_ok(f, cases[i].code);
        else
            assert_lua_error(f, cases[i].code, cases[i].error);
    }
    assert_true(tu_exists(f->home, "nope/made/here"));
    assert_false(tu_exists(f->home, "x"));
    assert_int_equal(tu_count_temps(f->home), 0);
}

/* fs.expand and fs.join touch no file, so no permission can stop them. */
static void test_permission_denied_per_function(void **state)
{
    fixture *f = *state;
    /* Owned by root (or by us with no bits): unreadable, untraversable. */
    tu_write(f->home, "secret", "s");
    tu_write(f->home, "private/x", "x");
    make_link("x", f->home, "private/l");
    tu_write(f->home, "ro/f", "f");
    char *secret = tu_path(f->home, "secret"), *private = tu_path(f->home, "private");
    char *ro = tu_path(f->home, "ro");
    assert_int_equal(chmod(secret, 0000), 0);
    assert_int_equal(chmod(private, 0000), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    if (getuid() == 0)
        assert_int_equal(chmod(f->home, 0555), 0); /* 65534 cannot write in home */
    static const char *const denied[] = {
        "fs.read('~/secret')",
        "fs.write('~/ro/f', 'x')",
        "fs.exists('~/private/x')",
        "fs.is_file('~/private/x')",
        "fs.is_dir('~/private/x')",
        "fs.stat('~/private/x')",
        "fs.list('~/private')",
        "fs.mkdir('~/ro/new')",
        "fs.remove('~/ro/f')",
        "fs.remove_tree('~/ro')",
        "fs.rename('~/ro/f', '~/ro/g')",
        "fs.copy('~/secret', '~/ro/g')",
        "fs.copy('~/ro/f', '~/ro/g')",
        "fs.symlink('f', '~/ro/l')",
        "fs.readlink('~/private/l')",
        "fs.read_json('~/secret')",
        "fs.write_json('~/ro/f', {k = 1})",
    };
    char *before = snapshot(f->home);
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        if (!fails_as_nobody(f, denied[i], "Permission denied"))
            fail_msg("not denied: %s (%s)", denied[i], last_error);
    /* chmod of someone else's file; as its owner chmod is allowed */
    if (getuid() == 0 && !fails_as_nobody(f, "fs.chmod('~/ro/f', '0777')", "Operation not permitted"))
        fail_msg("chmod not denied");
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    assert_int_equal(chmod(f->home, 0755), 0);
    free(before);
    free(after);
    free(secret);
    free(private);
    free(ro);
}

/* ---- Resources ---------------------------------------------------------------- */

static void test_repeated_calls_leave_no_descriptor_open(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "f", "content");
    tu_write(f->home, "d/x", "x");
    int before = tu_count_fds();
    assert_lua_ok(f, "for i = 1, 200 do\n"
                     "  fs.write('~/f', 'content'); assert(fs.read('~/f') == 'content')\n"
                     "  assert(fs.exists('~/f') and fs.is_file('~/f') and fs.is_dir('~/d'))\n"
                     "  assert(fs.stat('~/f').size == 7 and #fs.list('~/d') == 1)\n"
                     "  fs.mkdir('~/t/a/b'); fs.remove('~/t/a/b'); fs.remove_tree('~/t')\n"
                     "  fs.rename('~/f', '~/g'); fs.rename('~/g', '~/f')\n"
                     "  fs.copy('~/f', '~/c'); fs.symlink('f', '~/l')\n"
                     "  assert(fs.readlink('~/l') == 'f'); fs.remove('~/l')\n"
                     "  fs.chmod('~/f', '0644'); fs.expand('~/x/../y'); fs.join('~', 'x')\n"
                     "  fs.write_json('~/j', {k = 1}); fs.read_json('~/j')\n"
                     "  assert(not pcall(fs.read, '~/nope') and not pcall(fs.read, '~/d'))\n"
                     "  assert(not pcall(fs.write, '~/nope/x', 'x') and not pcall(fs.write, '~/d', 'x'))\n"
                     "  assert(not pcall(fs.list, '~/nope') and not pcall(fs.list, '~/f'))\n"
                     "  assert(not pcall(fs.copy, '~/nope', '~/x') and not pcall(fs.copy, '~/f', '~/d'))\n"
                     "  assert(not pcall(fs.copy, '~/d', '~/x') and not pcall(fs.remove, '~/d'))\n"
                     "  assert(not pcall(fs.rename, '~/nope', '~/x') and not pcall(fs.chmod, '~/nope', 1))\n"
                     "  assert(not pcall(fs.symlink, 'f', '~/f') and not pcall(fs.mkdir, '~/f'))\n"
                     "  assert(not pcall(fs.read, '/etc/passwd') and not pcall(fs.read_json, '~/nope'))\n"
                     "end");
    assert_int_equal(tu_count_fds(), before);
    assert_int_equal(tu_count_temps(f->home), 0);
}

/* A lua_Alloc that fails every allocation past a budget, and counts what
 * is in use so a leak shows after lua_close(). */
typedef struct budget {
    size_t in_use;
    long left;
    bool limited;
} budget;

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *b = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->in_use -= old;
        return NULL;
    }
    if (nsize > old && b->limited && b->left-- <= 0)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p != NULL)
        b->in_use = b->in_use - old + nsize;
    return p;
}

/* Calls fs.<fn>(arg) with a budget of 0, 1, 2, ... allocations until it
 * succeeds; every failure must be a clean memory error with nothing open. */
static void sweep_allocation_failures(fixture *f, const char *fn, const char *arg,
                                      const char *check)
{
    budget b = {0};
    lua_State *L = lua_newstate(budget_alloc, &b);
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_fs(L, &f->env);
    lua_setglobal(L, "fs");
    int fds = tu_count_fds();
    bool succeeded = false;
    for (long budget_left = 0; budget_left < 100000 && !succeeded; budget_left++) {
        lua_settop(L, 0);
        lua_getglobal(L, "fs");
        lua_getfield(L, -1, fn);
        lua_pushstring(L, arg);
        b.left = budget_left;
        b.limited = true;
        int rc = lua_pcall(L, 1, 1, 0);
        b.limited = false;
        assert_int_equal(tu_count_fds(), fds);
        if (rc == LUA_OK) {
            lua_setglobal(L, "result");
            assert_int_equal(luaL_dostring(L, check), LUA_OK);
            succeeded = true;
        } else if (rc != LUA_ERRMEM) {
            fail_msg("budget %ld: %s", budget_left, lua_tostring(L, -1));
        }
    }
    assert_true(succeeded);
    lua_close(L);
    assert_int_equal(b.in_use, 0);
}

static void test_allocation_failures_in_read_and_list_leak_nothing(void **state)
{
    fixture *f = *state;
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    tu_write(f->home, "big", big);
    free(big);
    for (int i = 0; i < 60; i++) {
        char name[32];
        snprintf(name, sizeof name, "dir/entry-%02d", i);
        tu_write(f->home, name, "");
    }
    char *big_path = tu_path(f->home, "big"), *dir = tu_path(f->home, "dir");
    sweep_allocation_failures(f, "read", big_path, "assert(#result == 100000)");
    sweep_allocation_failures(f, "list", dir, "assert(#result == 60 and result[60] == 'entry-59')");
    free(big_path);
    free(dir);
}


/* ---- No setuid/setgid, trailing slashes, existing roots, deep trees ------- */

static void test_no_function_creates_or_keeps_setuid_or_setgid(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "plain", "x");
    static const char *const refused[] = {
        "fs.write('~/w', 'x', '4755')",   "fs.write('~/w', 'x', '2755')",
        "fs.write('~/w', 'x', 4095)",     "fs.write('~/w', 'x', '6755')",
        "fs.chmod('~/plain', '4755')",    "fs.chmod('~/plain', '2711')",
        "fs.chmod('~/plain', '07777')",   "fs.mkdir('~/d', '2755')",
        "fs.mkdir('~/d', '4700')",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_lua_error(f, refused[i], "has a setuid or setgid bit");
    assert_lua_error(f, "fs.chmod('~/plain', '4755')",
                     "bad argument #2 to 'chmod' (mode 04755 has a setuid or setgid bit");
    assert_false(tu_exists(f->home, "w"));
    assert_false(tu_exists(f->home, "d"));
    assert_int_equal(mode_of(f->home, "plain") & 06000, 0);
    /* A setuid, setgid file (the owner may set both on their own file):
     * its copy and its rewrite keep every other bit, never these. */
    tu_write(f->home, "suid", "#!/bin/sh\n");
    char *suid = tu_path(f->home, "suid");
    assert_int_equal(chmod(suid, 06755), 0);
    free(suid);
    if ((mode_of(f->home, "suid") & 06000) != 06000)
        skip(); /* a file system mounted nosuid-like that drops them */
    assert_lua_ok(f, "fs.copy('~/suid', '~/copied')");
    assert_int_equal(mode_of(f->home, "copied"), 0755);
    assert_lua_ok(f, "fs.write('~/suid', 'new')");
    assert_int_equal(mode_of(f->home, "suid"), 0755);
    /* Sticky and the permission bits are fine. */
    assert_lua_ok(f, "fs.mkdir('~/sticky', '1777') fs.chmod('~/plain', '0640')");
    assert_int_equal(mode_of(f->home, "plain"), 0640);
}

static void test_trailing_slash_means_a_directory(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "file", "x");
    assert_lua_error(f, "fs.write('~/new/', 'x')", "fs.write: \"~/new/\": Is a directory");
    assert_lua_error(f, "fs.write('~/file/', 'x')", "fs.write: \"~/file/\": Is a directory");
    assert_lua_error(f, "fs.copy('~/file', '~/new/')", "fs.copy: \"~/new/\": Is a directory");
    assert_lua_error(f, "fs.write_json('~/new/', {})", "Is a directory");
    assert_false(tu_exists(f->home, "new"));
    char *content = tu_read(f->home, "file");
    assert_string_equal(content, "x");
    free(content);
    assert_lua_error(f, "fs.read('~/file/')", "fs.read: \"~/file/\": Not a directory");
    assert_lua_ok(f, "assert(fs.exists('~/file/') == false and fs.exists('~/file'))");
    assert_lua_error(f, "fs.remove('~/file/')", "fs.remove: \"~/file/\": Not a directory");
    assert_true(tu_exists(f->home, "file"));
    /* and for a directory it changes nothing */
    assert_lua_ok(f, "fs.mkdir('~/dir/') assert(fs.is_dir('~/dir/')) fs.remove('~/dir/')");
    assert_false(tu_exists(f->home, "dir"));
}

static void test_mkdir_of_home_and_state_directory_returns_normally(void **state)
{
    fixture *f = *state;
    char *before = snapshot(f->home);
    assert_lua_ok(f, "fs.mkdir('~') fs.mkdir('~/') fs.mkdir(HOME) fs.mkdir('~/.teleclaude')");
    assert_lua_ok(f, "fs.mkdir('~/.teleclaude/.') fs.mkdir('~/x/..')");
    char *after = snapshot(f->home);
    assert_string_equal(after, before);
    free(before);
    free(after);
    /* but a directory where the state or its temp would go is refused */
    assert_lua_error(f, "fs.mkdir(STATE)", "fs.mkdir: ");
    assert_lua_error(f, "fs.mkdir('~/.teleclaude/.migration_state.json.tmp-abcdef')",
                     "the migration state is not writable from a script");
}

/* Nested `levels` deep below home/name, made with *at() calls (no path
 * could name the bottom of it). */
static void make_deep_tree(const char *home, const char *name, int levels)
{
    int fd = open(home, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(mkdirat(fd, name, 0755), 0);
    int cur = openat(fd, name, O_RDONLY | O_DIRECTORY);
    close(fd);
    for (int i = 0; i < levels; i++) {
        assert_true(cur >= 0);
        int file = openat(cur, "f", O_WRONLY | O_CREAT, 0644);
        assert_true(file >= 0);
        close(file);
        assert_int_equal(mkdirat(cur, "d", 0755), 0);
        int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
        close(cur);
        cur = next;
    }
    close(cur);
}

static void test_remove_tree_removes_trees_of_any_depth(void **state)
{
    fixture *f = *state;
    /* 300 levels, as fs.mkdir can make them (once refused past 256) */
    char code[1024] = "fs.mkdir('~/t";
    for (int i = 0; i < 300; i++)
        strcat(code, "/d");
    strcat(code, "') fs.remove_tree('~/t')");
    assert_lua_ok(f, code);
    assert_false(tu_exists(f->home, "t"));
    /* 5000 levels: deeper than PATH_MAX can name, and than the descriptor
     * limit and the C stack would allow one frame or descriptor per level */
    make_deep_tree(f->home, "deep", 5000);
    int fds = tu_count_fds();
    assert_lua_ok(f, "fs.remove_tree('~/deep')");
    assert_false(tu_exists(f->home, "deep"));
    assert_int_equal(tu_count_fds(), fds);
}

static void test_state_is_recognised_by_device_and_inode(void **state)
{
    fixture *f = *state;
    char *hard = tu_path(f->home, "hardlinked-state");
    assert_int_equal(link(f->state, hard), 0);
    free(hard);
    char *before = tu_read(f->state, NULL);
    assert_lua_error(f, "fs.write('~/hardlinked-state', 'x')",
                     "the migration state is not writable from a script");
    assert_lua_error(f, "fs.chmod('~/hardlinked-state', '0666')",
                     "the migration state is not writable from a script");
    assert_lua_error(f, "fs.remove('~/hardlinked-state')",
                     "the migration state is not writable from a script");
    char *after = tu_read(f->state, NULL);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_read_returns_whole_content_including_nul_bytes),
        T(test_read_of_missing_file_names_function_path_and_reason),
        T(test_read_refuses_directories_fifos_and_link_loops),
        T(test_read_follows_symlinks_inside_roots),
        T(test_read_and_copy_of_files_stat_says_are_empty),
        T(test_write_creates_and_replaces_files),
        T(test_write_keeps_existing_mode),
        T(test_write_applies_explicit_mode_exactly),
        T(test_write_rejects_modes_that_are_not_octal),
        T(test_write_through_symlink_updates_target_and_keeps_link),
        T(test_write_onto_directory_fails_and_leaves_no_temp),
        T(test_write_is_complete_in_temp_before_it_replaces_target),
        T(test_exists_sees_files_dirs_and_dangling_links),
        T(test_is_file_and_is_dir_follow_links),
        T(test_stat_reports_type_size_mode_and_mtime),
        T(test_list_returns_names_sorted_bytewise),
        T(test_list_of_large_directory),
        T(test_mkdir_creates_parents_and_accepts_existing_directory),
        T(test_remove_deletes_file_link_or_empty_dir),
        T(test_remove_tree_deletes_everything_below),
        T(test_remove_tree_removes_links_never_what_they_point_to),
        T(test_rename_moves_files_dirs_and_links_themselves),
        T(test_rename_errors_name_both_paths),
        T(test_rename_across_file_systems_says_so),
        T(test_copy_keeps_content_and_mode),
        T(test_copy_failures_leave_no_temp),
        T(test_copy_of_64_mib_file_is_exact),
        T(test_copy_across_file_systems_falls_back_to_read_write),
        T(test_symlink_stores_target_as_given),
        T(test_readlink_returns_nil_for_non_links),
        T(test_chmod_sets_mode),
        T(test_expand_normalizes_lexically_without_confinement),
        T(test_join_puts_exactly_one_slash_between_parts),
        T(test_join_refuses_absolute_later_parts_and_non_strings),
        T(test_read_json_decodes_and_names_path_on_errors),
        T(test_write_json_writes_indented_text_atomically_keeping_mode),
        T(test_every_function_refuses_relative_paths),
        T(test_every_function_refuses_paths_outside_roots),
        T(test_symlink_refuses_targets_outside_roots),
        T(test_mutations_are_refused_while_readonly),
        T(test_state_file_lock_and_their_ancestors_are_not_writable),
        T(test_missing_paths_per_function),
        T(test_permission_denied_per_function),
        T(test_repeated_calls_leave_no_descriptor_open),
        T(test_allocation_failures_in_read_and_list_leak_nothing),
        T(test_no_function_creates_or_keeps_setuid_or_setgid),
        T(test_trailing_slash_means_a_directory),
        T(test_mkdir_of_home_and_state_directory_returns_normally),
        T(test_remove_tree_removes_trees_of_any_depth),
        T(test_state_is_recognised_by_device_and_inode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
