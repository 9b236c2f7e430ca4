/* durable.c - whole-file writes that survive a crash at any instant (SPEC §6).
 *
 * A file is never rewritten in place: the new content goes to a temp file in
 * the same directory, is flushed to disk, and then renamed over the old one.
 * rename() is atomic within a file system, so a reader (or a host that lost
 * power) sees either the whole old file or the whole new one. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The test build only: MIGRATE_TEST_SKIP_FSYNC=file|dir|mkdir turns one of
 * the three syncs below into a no-op, so the power-loss simulator
 * (tests/reliability/powerloss.c) can show that it catches each missing.
 * Release builds compile the switch away. */
#ifdef MIGRATE_TEST_SEAMS
static bool sync_skipped(const char *which)
{
    const char *s = getenv("MIGRATE_TEST_SKIP_FSYNC");
    return s != NULL && strcmp(s, which) == 0;
}
#else
#define sync_skipped(which) false
#endif

/* Temp names are ".<basename>.tmp-XXXXXX"; a clash with a leftover from a
 * crashed writer is possible, an endless run of them is not. */
#define TEMP_ATTEMPTS 100
#define TEMP_SUFFIX_LEN 6

/* The directory holding path, as a malloc'd string, or NULL (ENOMEM). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

static int random_suffix(char out[TEMP_SUFFIX_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[TEMP_SUFFIX_LEN];
    ssize_t got;
    do
        got = getrandom(bytes, sizeof bytes, 0);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof bytes)
        return got < 0 ? errno : EIO;
    for (size_t i = 0; i < TEMP_SUFFIX_LEN; i++)
        out[i] = alphabet[bytes[i] % (sizeof alphabet - 1)];
    out[TEMP_SUFFIX_LEN] = '\0';
    return 0;
}

/* Creates ".<name>.tmp-XXXXXX" in the directory dirfd; its name goes to
 * tmp (TEMP_NAME_MAX bytes). */
#define TEMP_NAME_MAX (NAME_MAX + 16)
static int create_temp(int dirfd, const char *name, mode_t create_mode, char *tmp, int *fd_out)
{
    for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
        char suffix[TEMP_SUFFIX_LEN + 1];
        int err = random_suffix(suffix);
        if (err != 0)
            return err;
        int n = snprintf(tmp, TEMP_NAME_MAX, ".%s.tmp-%s", name, suffix);
        if (n < 0 || n >= TEMP_NAME_MAX)
            return ENAMETOOLONG;
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        create_mode);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

int mig_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *data = buf;
    while (len > 0) {
        size_t chunk = len < (size_t)SSIZE_MAX ? len : (size_t)SSIZE_MAX;
        ssize_t n = write(fd, data, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO; /* no progress on a regular file: never spin */
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* What the replaced file was: its mode and owner carry over to the new one. */
typedef struct previous {
    bool exists;
    uid_t uid;
    gid_t gid;
} previous;

/* Settles *mode (a negative one becomes the existing file's, less any
 * setuid/setgid bit: no rewrite keeps one) and the mode the temp file is
 * created with. A new file without an explicit mode is created 0644 and
 * the kernel applies the umask: reading the umask means changing it, which
 * no thread-safe library may do. With follow false (fs.c, which resolved
 * the name's links itself) the entry is looked at, never followed: a link
 * in its place (swapped in since) is replaced like a missing file, and
 * tells nothing of where it points, nor lends its target's owner. */
static int choose_mode(int dirfd, const char *name, bool follow, int *mode,
                       mode_t *create_mode, previous *prev)
{
    struct stat st;
    prev->exists = false;
    if (fstatat(dirfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode))
            return EISDIR;
        if (!S_ISLNK(st.st_mode)) {
            if (*mode < 0)
                *mode = (int)(st.st_mode & 01777);
            *prev = (previous){true, st.st_uid, st.st_gid};
        }
    } else if (errno != ENOENT) {
        return errno;
    }
    /* 0600 until fchmod sets the final mode: a file another user could
     * open in between would stay readable to them whatever fchmod says. */
    *create_mode = *mode >= 0 ? 0600 : 0644;
    return 0;
}

/* An executor running as root that rewrites a user's file must not hand
 * it to root (the user's daemon could no longer read a 0600 config). Only
 * root may give a file away; anyone else's temp is theirs already, as with
 * any editor that saves by rename, so EPERM is not a failure. */
static int keep_owner(int fd, const previous *prev)
{
    if (!prev->exists || (prev->uid == geteuid() && prev->gid == getegid()))
        return 0;
    if (fchown(fd, prev->uid, prev->gid) != 0 && errno != EPERM)
        return errno;
    return 0;
}

/* Everything between a created temp file and the rename over path: on
 * failure the caller removes the temp. Consumes fd. */
static int fill_temp(int fd, mig_fill_fn fill, void *ctx, int mode, const previous *prev,
                     const char **stage)
{
    int err = 0;
    if ((err = fill(fd, ctx)) != 0) {
        *stage = "write";
    } else if ((err = keep_owner(fd, prev)) != 0) {
        *stage = "chown";
    } else if (mode >= 0 && fchmod(fd, (mode_t)mode) != 0) {
        /* After the write and the chown: both clear setuid/setgid bits. */
        err = errno;
        *stage = "chmod";
    } else if (!sync_skipped("file") && fsync(fd) != 0) {
        /* Never retried: after a failed fsync the kernel may have dropped
         * the dirty pages, so a second fsync can "succeed" on lost data. */
        err = errno;
        *stage = "fsync";
    }
    if (close(fd) != 0 && err == 0) {
        err = errno;
        *stage = "close";
    }
    return err;
}

static int replace_at(int dirfd, const char *name, bool follow, mig_fill_fn fill, void *ctx,
                      int mode, bool sweep, const char **stage)
{
    *stage = "open";
    mode_t create_mode;
    previous prev = {false, 0, 0};
    int err = choose_mode(dirfd, name, follow, &mode, &create_mode, &prev);
    if (err != 0)
        return err;
    /* Before our own temp exists: then the only leftover a kill can leave
     * is one whose rename never happened, so its target is unchanged and
     * the resumed run writes it again, sweeping it. (Swept after the rename
     * instead, a kill in between would strand an older leftover beside a
     * file that is never rewritten.) */
    if (sweep)
        mig_sweep_temps_at(dirfd, name);
    char tmp[TEMP_NAME_MAX];
    int fd = -1;
    if ((err = create_temp(dirfd, name, create_mode, tmp, &fd)) != 0)
        return err;
    err = fill_temp(fd, fill, ctx, mode, &prev, stage);
    if (err == 0) {
        MIG_TEST_SEAM("write_atomic:before-rename");
        if (renameat(dirfd, tmp, dirfd, name) != 0) {
            err = errno;
            *stage = "rename";
        }
    }
    if (err != 0) {
        unlinkat(dirfd, tmp, 0);
        return err;
    }
    /* The rename lives in the directory: without this fsync a crash can
     * bring back the old file even though the new one was fully synced. */
    if (!sync_skipped("dir") && (err = mig_fsync_dirfd(dirfd)) != 0)
        *stage = "fsync dir";
    return err;
}

int mig_replace_atomic_at(int dirfd, const char *name, mig_fill_fn fill, void *ctx, int mode,
                          bool sweep, const char **stage)
{
    const char *ignored;
    return replace_at(dirfd, name, false, fill, ctx, mode, sweep, stage ? stage : &ignored);
}

/* The directory holding path, opened for reading (so that it can be
 * synced and swept), and the last component of path. */
static int open_parent(const char *path, int *dirfd, const char **name)
{
    const char *slash = strrchr(path, '/');
    *name = slash == NULL ? path : slash + 1;
    char *dir = dir_of(path);
    if (dir == NULL)
        return ENOMEM;
    *dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = *dirfd < 0 ? errno : 0;
    free(dir);
    return err;
}

int mig_replace_atomic(const char *path, mig_fill_fn fill, void *ctx, int mode, bool sweep,
                       const char **stage)
{
    const char *ignored, *name;
    if (stage == NULL)
        stage = &ignored;
    *stage = "open";
    int dirfd;
    int err = open_parent(path, &dirfd, &name);
    if (err != 0)
        return err;
    err = replace_at(dirfd, name, true, fill, ctx, mode, sweep, stage);
    close(dirfd);
    return err;
}

void mig_sweep_temps(const char *path)
{
    const char *name;
    int dirfd;
    if (open_parent(path, &dirfd, &name) != 0)
        return;
    mig_sweep_temps_at(dirfd, name);
    close(dirfd);
}

void mig_sweep_temps_at(int dirfd, const char *name)
{
    char prefix[NAME_MAX + 8];
    int n = snprintf(prefix, sizeof prefix, ".%s.tmp-", name);
    if (n <= 0 || (size_t)n >= sizeof prefix)
        return;
    /* Its own descriptor: readdir needs one opened for reading, and
     * closedir closes it. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    /* Names of exactly our pattern only: ".<base>.tmp-" and the suffix. */
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, (size_t)n) == 0 &&
            strlen(e->d_name) == (size_t)n + TEMP_SUFFIX_LEN)
            unlinkat(dirfd, e->d_name, 0);
    closedir(d);
}

typedef struct bytes {
    const void *data;
    size_t len;
} bytes;

static int fill_bytes(int fd, void *ctx)
{
    const bytes *b = ctx;
    return mig_write_all(fd, b->data, b->len);
}

int mig_write_atomic(const char *path, const void *data, size_t len, int mode, const char **stage)
{
    bytes b = {data, len};
    return mig_replace_atomic(path, fill_bytes, &b, mode, true, stage);
}

int mig_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, int mode,
                        const char **stage)
{
    bytes b = {data, len};
    return mig_replace_atomic_at(dirfd, name, fill_bytes, &b, mode, true, stage);
}

/* An O_PATH descriptor (as fs.c holds) cannot be synced: a descriptor for
 * reading is opened on the same directory for it. */
int mig_fsync_dirfd(int dirfd)
{
    if (fsync(dirfd) == 0)
        return 0;
    if (errno != EBADF)
        return errno;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = fsync(fd) != 0 ? errno : 0;
    close(fd);
    return err;
}

int mig_fsync_parent(const char *path)
{
    char *dir = dir_of(path);
    if (dir == NULL)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    free(dir);
    if (fd < 0)
        return err;
    if (fsync(fd) != 0)
        err = errno;
    close(fd); /* read-only: nothing left to flush, nothing to report */
    return err;
}

int mig_fsync_new_dir(int dirfd)
{
    return sync_skipped("mkdir") ? 0 : mig_fsync_dirfd(dirfd);
}

/* Whether fd is at its end; for a file that filled the buffer exactly. */
static int at_end(int fd, bool *end)
{
    char probe;
    ssize_t n;
    do
        n = read(fd, &probe, 1);
    while (n < 0 && errno == EINTR);
    *end = n == 0;
    return n < 0 ? errno : 0;
}

/* Reads fd to its end, at most max bytes, into a malloc'd buffer that
 * starts at hint bytes and grows if the file grew since fstat. */
static int read_to_end(int fd, size_t hint, size_t max, char **out, size_t *len)
{
    size_t room = hint < max ? hint : max, used = 0;
    char *buf = malloc(room + 1);
    if (buf == NULL)
        return ENOMEM;
    int err = 0;
    for (;;) {
        if (used == room) {
            bool end;
            if (room == max && ((err = at_end(fd, &end)) != 0 || !end))
                err = err != 0 ? err : EFBIG;
            if (err != 0 || room == max)
                break;
            size_t next = room > max / 2 ? max : 2 * room;
            room = next > room ? next : max;
            char *bigger = realloc(buf, room + 1);
            if (bigger == NULL) {
                err = ENOMEM;
                break;
            }
            buf = bigger;
        }
        ssize_t n = read(fd, buf + used, room - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        used += (size_t)n;
    }
    if (err != 0) {
        free(buf);
        return err;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
}

int mig_read_file(const char *path, size_t max, char **out, size_t *len)
{
    /* O_NONBLOCK: a FIFO put in place of the file must not hang the host;
     * it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    else if (!S_ISREG(st.st_mode))
        err = EINVAL;
    else if ((uintmax_t)st.st_size > max)
        err = EFBIG;
    else
        err = read_to_end(fd, st.st_size > 0 ? (size_t)st.st_size : 4096, max, out, len);
    close(fd);
    return err;
}

/* mkdir of one directory; an existing directory (also through a symlink) is
 * fine, anything else in the way is ENOTDIR. */
static int mkdir_one(const char *path, mode_t mode, bool *created)
{
    *created = false;
    if (mkdir(path, mode) == 0) {
        *created = true;
        return 0;
    }
    int err = errno;
    struct stat st;
    if (err == EEXIST)
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    return err;
}

int mig_mkdir_parents(const char *path, mode_t mode)
{
    if (*path == '\0')
        return ENOENT;
    char *copy = strdup(path);
    if (copy == NULL)
        return ENOMEM;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    int err = 0;
    for (char *p = copy + 1; err == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (p[-1] != '/') {
            bool created;
            err = mkdir_one(copy, mode, &created);
            /* A new directory is an entry in its parent: sync that, or a
             * crash may forget a directory a migration reported as made. */
            if (err == 0 && created && !sync_skipped("mkdir"))
                err = mig_fsync_parent(copy);
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    return err;
}
