/* fuzz_sandbox.c - an arbitrary Lua chunk run as a migration, with a short
 * timeout and a small memory limit. It may fail; it must never crash, hang,
 * leak, or touch anything outside the run's home. The library's file-system
 * calls are linked through -Wl,--wrap wrappers below that abort on any
 * write outside the home, or any open outside the test tree, while a run
 * is under way. */
#include "fuzz_tmp.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) ((cond) ? (void)0 : abort())

static char root[64], home[96], migrations[96], script[160];

static bool auditing;

/* ---- the audit ------------------------------------------------------------ */

static void absolute(int dirfd, const char *path, char out[PATH_MAX])
{
    char base[PATH_MAX] = "";
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return;
    }
    if (dirfd == AT_FDCWD) {
        if (getcwd(base, sizeof base) == NULL)
            base[0] = '\0';
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        base[n > 0 ? n : 0] = '\0';
    }
    snprintf(out, PATH_MAX, "%s/%s", base, path);
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* A ".." component would make the prefix test meaningless; "..x" is a
 * name like any other. */
static bool has_dotdot(const char *path)
{
    for (const char *p = strstr(path, "/.."); p != NULL; p = strstr(p + 1, "/.."))
        if (p[3] == '/' || p[3] == '\0')
            return true;
    return false;
}

static void audit(const char *op, int dirfd, const char *path, bool writes)
{
    if (!auditing)
        return;
    char abs[PATH_MAX];
    absolute(dirfd, path, abs);
    if (has_dotdot(abs) || !under(abs, writes ? home : root)) {
        fprintf(stderr, "sandbox escape: %s %s %s\n", op, writes ? "writes" : "reads", abs);
        abort();
    }
}

static bool writes(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

#define WRAP(ret, name, params) ret __real_##name params; ret __wrap_##name params; ret __wrap_##name params

WRAP(int, open, (const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    audit("open", AT_FDCWD, path, writes(flags));
    return __real_open(path, flags, mode);
}
WRAP(int, openat, (int dirfd, const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    audit("openat", dirfd, path, writes(flags));
    return __real_openat(dirfd, path, flags, mode);
}
WRAP(int, rename, (const char *from, const char *to))
{
    audit("rename", AT_FDCWD, from, true);
    audit("rename", AT_FDCWD, to, true);
    return __real_rename(from, to);
}
WRAP(int, mkdir, (const char *path, mode_t mode))
{
    /* mkdir -p of the state directory tries every parent: on one that
     * exists it changes nothing. */
    struct stat st;
    if (stat(path, &st) != 0)
        audit("mkdir", AT_FDCWD, path, true);
    return __real_mkdir(path, mode);
}
WRAP(int, unlink, (const char *path))
{
    audit("unlink", AT_FDCWD, path, true);
    return __real_unlink(path);
}
WRAP(int, unlinkat, (int dirfd, const char *path, int flags))
{
    audit("unlinkat", dirfd, path, true);
    return __real_unlinkat(dirfd, path, flags);
}
WRAP(int, rmdir, (const char *path))
{
    audit("rmdir", AT_FDCWD, path, true);
    return __real_rmdir(path);
}
WRAP(int, symlink, (const char *target, const char *path))
{
    audit("symlink", AT_FDCWD, path, true);
    return __real_symlink(target, path);
}
WRAP(int, chmod, (const char *path, mode_t mode))
{
    audit("chmod", AT_FDCWD, path, true);
    return __real_chmod(path, mode);
}
WRAP(DIR *, opendir, (const char *path))
{
    audit("opendir", AT_FDCWD, path, false);
    return __real_opendir(path);
}

/* ---- the run ------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (strcmp(path, home) != 0)
        remove(path);
    return 0;
}

static void setup(void)
{
    if (root[0] != '\0')
        return;
    snprintf(root, sizeof root, "%s", fuzz_scratch_dir("sandbox"));
    snprintf(home, sizeof home, "%s/home", root);
    snprintf(migrations, sizeof migrations, "%s/migrations", root);
    snprintf(script, sizeof script, "%s/v1.0.0/001_fuzz.lua", migrations);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/v1.0.0", migrations);
    REQUIRE(mkdir(home, 0755) == 0 && mkdir(migrations, 0755) == 0 && mkdir(dir, 0755) == 0);
    snprintf(dir, sizeof dir, "%s/lib", migrations);
    REQUIRE(mkdir(dir, 0755) == 0);
    char lib[160];
    snprintf(lib, sizeof lib, "%s/helper.lua", dir);
    FILE *f = fopen(lib, "w");
    REQUIRE(f != NULL);
    fputs("return { twice = function(x) return x * 2 end }\n", f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    FILE *f = fopen(script, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, size, f) == size || size == 0);
    REQUIRE(fclose(f) == 0);
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = migrations;
    o.home = home;
    o.timeout_ms = 50;
    o.memory_limit = 16u << 20;
    for (int dry = 1; dry >= 0; dry--) {
        o.dry_run = dry;
        migrate_report *r = NULL;
        auditing = true;
        int rc = migrate_run(NULL, NULL, &o, &r);
        auditing = false;
        REQUIRE(r != NULL);
        REQUIRE(rc == MIGRATE_OK || rc == MIGRATE_EFAILED || rc == MIGRATE_EMANIFEST);
        char *json = migrate_report_json(r);
        REQUIRE(json != NULL);
        free(json);
        migrate_report_free(r);
    }
    nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
