/* faultshim.c - an LD_PRELOAD library that makes the Nth file-system call
 * fail, come up short, or kill the process, so the reliability programs can
 * test every failure point of a run the way SQLite and LevelDB test theirs.
 *
 * Configuration is read from the environment whenever the shim is armed
 * (by faultshim_arm(), or at load time when FAULTSHIM_ARMED=1):
 *   FAULTSHIM_PREFIX  count only calls on paths under this directory (an
 *                     fd-based call counts when its fd's path is under it)
 *   FAULTSHIM_OPS     comma-separated operation names to count (default all)
 *   FAULTSHIM_NTH     the counted call to act on (1-based; 0 or unset: none)
 *   FAULTSHIM_ERRNO   EIO, ENOSPC, EINTR or a number (default EIO)
 *   FAULTSHIM_ACTION  fail (default), short (a write writes half), kill
 *                     (SIGKILL before the call)
 *   FAULTSHIM_STICKY  1: act on every counted call from the Nth on (a
 *                     full disk stays full)
 *   FAULTSHIM_LOG     kill: append "<n> <op> <path>" here before dying
 * Only calls made while armed are counted, so neither the loader nor a test's
 * own setup shifts the numbering. The shim is test code: its global state is
 * the point of it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef enum action { ACT_FAIL, ACT_SHORT, ACT_KILL } action;

static struct {
    bool armed, sticky, fired;
    char prefix[PATH_MAX];
    size_t prefix_len;
    char ops[256];
    long nth, calls;
    int err;
    action act;
    char log[PATH_MAX];
    char fired_at[PATH_MAX + 64];
} shim;

/* The real functions, looked up once. */
#define REAL(name) static __typeof__(name) *real_##name
REAL(open);
REAL(open64);
REAL(openat);
REAL(openat64);
REAL(write);
REAL(fsync);
REAL(fdatasync);
REAL(close);
REAL(rename);
REAL(renameat);
REAL(renameat2);
REAL(mkdir);
REAL(mkdirat);
REAL(unlink);
REAL(unlinkat);
REAL(rmdir);
REAL(fchmod);
REAL(symlink);
REAL(copy_file_range);

__attribute__((constructor)) static void shim_init(void)
{
#define LOOKUP(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)
    LOOKUP(open);
    LOOKUP(open64);
    LOOKUP(openat);
    LOOKUP(openat64);
    LOOKUP(write);
    LOOKUP(fsync);
    LOOKUP(fdatasync);
    LOOKUP(close);
    LOOKUP(rename);
    LOOKUP(renameat);
    LOOKUP(renameat2);
    LOOKUP(mkdir);
    LOOKUP(mkdirat);
    LOOKUP(unlink);
    LOOKUP(unlinkat);
    LOOKUP(rmdir);
    LOOKUP(fchmod);
    LOOKUP(symlink);
    LOOKUP(copy_file_range);
    const char *armed = getenv("FAULTSHIM_ARMED");
    if (armed != NULL && strcmp(armed, "1") == 0) {
        void faultshim_arm(void);
        faultshim_arm();
    }
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : fallback;
}

static int parse_errno(const char *s)
{
    if (strcmp(s, "EIO") == 0)
        return EIO;
    if (strcmp(s, "ENOSPC") == 0)
        return ENOSPC;
    if (strcmp(s, "EINTR") == 0)
        return EINTR;
    if (strcmp(s, "EDQUOT") == 0)
        return EDQUOT;
    int n = atoi(s);
    return n > 0 ? n : EIO;
}

/* ---- control, for programs that find these with dlsym(RTLD_DEFAULT) ---- */

EXPORT void faultshim_arm(void);
EXPORT void faultshim_arm(void)
{
    snprintf(shim.prefix, sizeof shim.prefix, "%s", env_or("FAULTSHIM_PREFIX", "/"));
    shim.prefix_len = strlen(shim.prefix);
    while (shim.prefix_len > 1 && shim.prefix[shim.prefix_len - 1] == '/')
        shim.prefix[--shim.prefix_len] = '\0';
    snprintf(shim.ops, sizeof shim.ops, ",%s,", env_or("FAULTSHIM_OPS", "all"));
    shim.nth = atol(env_or("FAULTSHIM_NTH", "0"));
    shim.err = parse_errno(env_or("FAULTSHIM_ERRNO", "EIO"));
    const char *act = env_or("FAULTSHIM_ACTION", "fail");
    shim.act = strcmp(act, "kill") == 0 ? ACT_KILL : strcmp(act, "short") == 0 ? ACT_SHORT : ACT_FAIL;
    shim.sticky = strcmp(env_or("FAULTSHIM_STICKY", "0"), "1") == 0;
    snprintf(shim.log, sizeof shim.log, "%s", env_or("FAULTSHIM_LOG", ""));
    shim.calls = 0;
    shim.fired = false;
    shim.fired_at[0] = '\0';
    shim.armed = true;
}

EXPORT void faultshim_disarm(void);
EXPORT void faultshim_disarm(void)
{
    shim.armed = false;
}

/* Calls counted since the last arm. */
EXPORT long faultshim_calls(void);
EXPORT long faultshim_calls(void)
{
    return shim.calls;
}

/* "" when no call was acted on since the last arm, else "<op> <path>". */
EXPORT const char *faultshim_fired_at(void);
EXPORT const char *faultshim_fired_at(void)
{
    return shim.fired ? shim.fired_at : "";
}

/* ---- deciding ------------------------------------------------------------ */

static bool op_selected(const char *op)
{
    if (strcmp(shim.ops, ",all,") == 0)
        return true;
    char key[64];
    snprintf(key, sizeof key, ",%s,", op);
    return strstr(shim.ops, key) != NULL;
}

static bool under_prefix(const char *path)
{
    if (path == NULL)
        return false;
    if (shim.prefix_len == 1)
        return true;
    return strncmp(path, shim.prefix, shim.prefix_len) == 0 &&
           (path[shim.prefix_len] == '/' || path[shim.prefix_len] == '\0');
}

/* The absolute path an fd refers to, or "" (pipes, sockets). */
static void fd_path(int fd, char out[PATH_MAX])
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* dirfd + name as an absolute path (lexically; good enough to match a
 * prefix, which is all it is used for). */
static void at_path(int dirfd, const char *name, char out[PATH_MAX])
{
    char base[PATH_MAX];
    if (name[0] == '/') {
        snprintf(out, PATH_MAX, "%s", name);
        return;
    }
    if (dirfd == AT_FDCWD) {
        if (getcwd(base, sizeof base) == NULL)
            base[0] = '\0';
    } else {
        fd_path(dirfd, base);
    }
    snprintf(out, PATH_MAX, "%s/%s", base, name);
}

static void log_kill(const char *op, const char *path)
{
    if (shim.log[0] == '\0')
        return;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof line, "%ld %s %s\n", shim.calls, op, path);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, shim.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        syscall(SYS_write, fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
        syscall(SYS_close, fd);
    }
}

/* Counts the call if it is one we watch, and says what to do with it:
 * false to run it as usual, true to inject (errno already set). A kill
 * never returns. */
static bool inject(const char *op, const char *path)
{
    if (!shim.armed || !op_selected(op) || !under_prefix(path))
        return false;
    long n = ++shim.calls;
    if (shim.nth <= 0 || n < shim.nth || (n > shim.nth && !shim.sticky))
        return false;
    if (!shim.fired)
        snprintf(shim.fired_at, sizeof shim.fired_at, "%s %s", op, path);
    shim.fired = true;
    if (shim.act == ACT_KILL) {
        log_kill(op, path);
        kill(getpid(), SIGKILL);
    }
    errno = shim.err;
    return true;
}

static bool inject_fd(const char *op, int fd)
{
    if (!shim.armed || !op_selected(op))
        return false;
    char path[PATH_MAX];
    fd_path(fd, path);
    return inject(op, path);
}

static bool inject_at(const char *op, int dirfd, const char *name)
{
    if (!shim.armed || !op_selected(op) || name == NULL)
        return false;
    char path[PATH_MAX];
    at_path(dirfd, name, path);
    return inject(op, path);
}

/* ---- the interposed calls ------------------------------------------------ */

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    if (inject_at("open", AT_FDCWD, path))
        return -1;
    return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    if (inject_at("open", AT_FDCWD, path))
        return -1;
    return real_open64(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    if (inject_at("open", dirfd, path))
        return -1;
    return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    if (inject_at("open", dirfd, path))
        return -1;
    return real_openat64(dirfd, path, flags, mode);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    if (inject_fd("write", fd)) {
        if (shim.act == ACT_SHORT && len > 1)
            return real_write(fd, buf, len / 2);
        return -1;
    }
    return real_write(fd, buf, len);
}

EXPORT int fsync(int fd)
{
    return inject_fd("fsync", fd) ? -1 : real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
    return inject_fd("fsync", fd) ? -1 : real_fdatasync(fd);
}

/* Linux releases the descriptor whatever close() reports, so a failing
 * close closes too: a library that retried it would close someone else's. */
EXPORT int close(int fd)
{
    if (inject_fd("close", fd)) {
        int err = errno;
        real_close(fd);
        errno = err;
        return -1;
    }
    return real_close(fd);
}

EXPORT int fchmod(int fd, mode_t mode)
{
    return inject_fd("fchmod", fd) ? -1 : real_fchmod(fd, mode);
}

EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                               unsigned flags)
{
    if (inject_fd("copy_file_range", out))
        return -1;
    return real_copy_file_range(in, in_off, out, out_off, len, flags);
}

EXPORT int rename(const char *from, const char *to)
{
    return inject_at("rename", AT_FDCWD, to) ? -1 : real_rename(from, to);
}

EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    return inject_at("rename", tofd, to) ? -1 : real_renameat(fromfd, from, tofd, to);
}

EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    return inject_at("rename", tofd, to) ? -1 : real_renameat2(fromfd, from, tofd, to, flags);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
    return inject_at("mkdir", AT_FDCWD, path) ? -1 : real_mkdir(path, mode);
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
    return inject_at("mkdir", dirfd, path) ? -1 : real_mkdirat(dirfd, path, mode);
}

EXPORT int unlink(const char *path)
{
    return inject_at("unlink", AT_FDCWD, path) ? -1 : real_unlink(path);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    return inject_at("unlink", dirfd, path) ? -1 : real_unlinkat(dirfd, path, flags);
}

EXPORT int rmdir(const char *path)
{
    return inject_at("unlink", AT_FDCWD, path) ? -1 : real_rmdir(path);
}

EXPORT int symlink(const char *target, const char *path)
{
    return inject_at("symlink", AT_FDCWD, path) ? -1 : real_symlink(target, path);
}
