/* fsrec.c - an LD_PRELOAD recorder of the file-system operations a process
 * makes under one directory, for the power-loss simulator (powerloss.c).
 *
 * Environment:
 *   FSREC_LOG     the log to append to (unset: the recorder does nothing)
 *   FSREC_PREFIX  record only operations on paths under this directory
 *                 (absolute, symlink-free)
 *
 * Every intercepted call is forwarded to libc first; only calls that
 * succeeded are logged, one record each, in the order they returned:
 *   O <fd> <flags> <path>      open/openat/creat (a directory too)
 *   W <fd> <offset> <len>      write/pwrite, followed by the len bytes written
 *   T <fd> <len>               ftruncate
 *   S <fd>                     fsync/fdatasync
 *   C <fd>                     close
 *   R <old>\t<new>             rename/renameat/renameat2
 *   U <path>                   unlink/unlinkat
 *   D <path>                   rmdir (unlinkat AT_REMOVEDIR)
 *   M <path>                   mkdir/mkdirat
 *   K <text>                   a mark the recorded program made (fsrec_mark)
 * A descriptor is recorded from its open onwards only if its path is under
 * the prefix. Relative paths are resolved against the working directory or
 * the directory descriptor (through /proc/self/fd), "." components folded
 * (fs.c syncs a directory it holds as openat(dirfd, ".")). O_PATH opens
 * are not recorded: such a descriptor serves only as a base. Not
 * intercepted: openat2 (fs.c opens only O_PATH directories with it), io_uring, mmap writes, copy_file_range, writev: the simulator's
 * scenario uses none of them (it fails on an fsync of an unknown fd).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 4096

static int log_fd = -1;
static char prefix[PATH_MAX];
static size_t prefix_len;
static bool tracked[MAX_FD];

#define REAL(ret, name, ...)                                                            \
    static ret (*real_##name)(__VA_ARGS__);                                             \
    static void load_##name(void)                                                       \
    {                                                                                   \
        if (real_##name == NULL)                                                        \
            real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);                 \
    }

REAL(int, open, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(int, ftruncate, int, off_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, close, int)
REAL(int, rename, const char *, const char *)
REAL(int, renameat, int, const char *, int, const char *)
REAL(int, renameat2, int, const char *, int, const char *, unsigned)
REAL(int, unlink, const char *)
REAL(int, unlinkat, int, const char *, int)
REAL(int, rmdir, const char *)
REAL(int, mkdir, const char *, mode_t)
REAL(int, mkdirat, int, const char *, mode_t)

__attribute__((constructor)) static void fsrec_init(void)
{
    const char *log = getenv("FSREC_LOG"), *pre = getenv("FSREC_PREFIX");
    if (log == NULL || pre == NULL || strlen(pre) >= sizeof prefix)
        return;
    load_open();
    load_write();
    snprintf(prefix, sizeof prefix, "%s", pre);
    prefix_len = strlen(prefix);
    log_fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put(const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = real_write(log_fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void putf(const char *fmt, ...)
{
    char buf[3 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* dirfd + path joined, as given. */
static bool absolute_raw(int dirfd, const char *path, char *out, size_t size)
{
    if (path[0] == '/')
        return snprintf(out, size, "%s", path) < (int)size;
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (getcwd(base, sizeof base) == NULL)
            return false;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n <= 0)
            return false;
        base[n] = '\0';
    }
    return snprintf(out, size, "%s/%s", base, path) < (int)size;
}

/* Folds "." components and repeated or trailing slashes, so that the
 * directory fs.c syncs as openat(dirfd, ".") is logged by its name. */
static void fold_dots(char *p)
{
    char *w = p;
    for (const char *r = p; *r != '\0';) {
        if (r[0] == '/' && (r[1] == '/' || r[1] == '\0' || (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
            r += r[1] == '.' ? 2 : 1;
            continue;
        }
        *w++ = *r++;
    }
    if (w == p)
        *w++ = '/';
    *w = '\0';
}

/* dirfd + path as an absolute path in out; false if it cannot be told. */
static bool absolute(int dirfd, const char *path, char *out, size_t size)
{
    bool ok = absolute_raw(dirfd, path, out, size);
    if (ok)
        fold_dots(out);
    return ok;
}

static bool under(const char *abs)
{
    return log_fd >= 0 && strncmp(abs, prefix, prefix_len) == 0 &&
           (abs[prefix_len] == '/' || abs[prefix_len] == '\0');
}

static bool watched(int fd)
{
    return log_fd >= 0 && fd >= 0 && fd < MAX_FD && tracked[fd];
}

static void opened(int dirfd, const char *path, int flags, int fd)
{
    char abs[PATH_MAX];
    if (fd < 0 || fd >= MAX_FD)
        return;
    tracked[fd] = false;
    /* An O_PATH descriptor (fs.c's lookups) can neither be written nor
     * synced: only paths relative to it matter, told through /proc. */
    if (flags & O_PATH)
        return;
    if (log_fd < 0 || !absolute(dirfd, path, abs, sizeof abs) || !under(abs))
        return;
    tracked[fd] = true;
    putf("O %d %d %s\n", fd, flags, abs);
}

static void path_op(char kind, int dirfd, const char *path)
{
    char abs[PATH_MAX];
    if (log_fd >= 0 && absolute(dirfd, path, abs, sizeof abs) && under(abs))
        putf("%c %s\n", kind, abs);
}

int open(const char *path, int flags, ...)
{
    load_open();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    int e = errno;
    opened(AT_FDCWD, path, flags, fd);
    errno = e;
    return fd;
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    load_openat();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_openat(dirfd, path, flags, mode);
    int e = errno;
    opened(dirfd, path, flags, fd);
    errno = e;
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int creat(const char *path, mode_t mode)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

static void wrote(int fd, off_t off, const void *buf, ssize_t n)
{
    if (n <= 0 || !watched(fd))
        return;
    putf("W %d %lld %zd\n", fd, (long long)off, n);
    put(buf, (size_t)n);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    load_write();
    off_t off = -1;
    if (watched(fd)) {
        struct stat st;
        int fl = fcntl(fd, F_GETFL);
        off = (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0) ? st.st_size
                                                                     : lseek(fd, 0, SEEK_CUR);
    }
    ssize_t n = real_write(fd, buf, len);
    int e = errno;
    wrote(fd, off, buf, n);
    errno = e;
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    load_pwrite();
    ssize_t n = real_pwrite(fd, buf, len, off);
    int e = errno;
    wrote(fd, off, buf, n);
    errno = e;
    return n;
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

int ftruncate(int fd, off_t len)
{
    load_ftruncate();
    int rc = real_ftruncate(fd, len);
    if (rc == 0 && watched(fd))
        putf("T %d %lld\n", fd, (long long)len);
    return rc;
}

int fsync(int fd)
{
    load_fsync();
    int rc = real_fsync(fd);
    if (rc == 0 && watched(fd))
        putf("S %d\n", fd);
    return rc;
}

int fdatasync(int fd)
{
    load_fdatasync();
    int rc = real_fdatasync(fd);
    if (rc == 0 && watched(fd))
        putf("S %d\n", fd);
    return rc;
}

int close(int fd)
{
    load_close();
    bool was = watched(fd);
    if (fd >= 0 && fd < MAX_FD)
        tracked[fd] = false;
    int rc = real_close(fd);
    int e = errno;
    if (was)
        putf("C %d\n", fd);
    errno = e;
    return rc;
}

static void renamed(int olddir, const char *old, int newdir, const char *new_)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (log_fd >= 0 && absolute(olddir, old, a, sizeof a) && absolute(newdir, new_, b, sizeof b) &&
        (under(a) || under(b)))
        putf("R %s\t%s\n", a, b);
}

int rename(const char *old, const char *new_)
{
    load_rename();
    int rc = real_rename(old, new_);
    if (rc == 0)
        renamed(AT_FDCWD, old, AT_FDCWD, new_);
    return rc;
}

int renameat(int od, const char *old, int nd, const char *new_)
{
    load_renameat();
    int rc = real_renameat(od, old, nd, new_);
    if (rc == 0)
        renamed(od, old, nd, new_);
    return rc;
}

int renameat2(int od, const char *old, int nd, const char *new_, unsigned flags)
{
    load_renameat2();
    int rc = real_renameat2(od, old, nd, new_, flags);
    if (rc == 0)
        renamed(od, old, nd, new_);
    return rc;
}

int unlink(const char *path)
{
    load_unlink();
    int rc = real_unlink(path);
    if (rc == 0)
        path_op('U', AT_FDCWD, path);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags)
{
    load_unlinkat();
    char abs[PATH_MAX];
    bool ok = absolute(dirfd, path, abs, sizeof abs); /* before: dirfd may be the victim's */
    int rc = real_unlinkat(dirfd, path, flags);
    if (rc == 0 && ok)
        path_op(flags & AT_REMOVEDIR ? 'D' : 'U', AT_FDCWD, abs);
    return rc;
}

int rmdir(const char *path)
{
    load_rmdir();
    int rc = real_rmdir(path);
    if (rc == 0)
        path_op('D', AT_FDCWD, path);
    return rc;
}

int mkdir(const char *path, mode_t mode)
{
    load_mkdir();
    int rc = real_mkdir(path, mode);
    if (rc == 0)
        path_op('M', AT_FDCWD, path);
    return rc;
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    load_mkdirat();
    int rc = real_mkdirat(dirfd, path, mode);
    if (rc == 0)
        path_op('M', dirfd, path);
    return rc;
}

/* Called by the recorded program (found with dlsym) to place a mark. */
__attribute__((visibility("default"))) void fsrec_mark(const char *text);
void fsrec_mark(const char *text)
{
    if (log_fd >= 0)
        putf("K %s\n", text);
}
