/* scripts.c - the run's script cache: each pending script read once (its
 * bytes, sha256 and file stamp), a dry run's pre-checked answers, and the
 * sandboxes the compile pass keeps for the run phase. Every file access
 * of the run loop to its scripts goes through here. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SCRIPT_BYTES (16u << 20)
/* See file_stamp(). */
#define RACY_SECONDS 2
/* Loaded scripts wait from the compile pass to their turn in at most this
 * much memory (and never more than memory_limit); see mig_scripts_keep(). */
#define KEEP_LOADED_MAX ((size_t)64 << 20)

void mig_scripts_init(mig_scripts *s)
{
    memset(s, 0, sizeof *s);
    s->vdir_fd = -1;
}

int mig_scripts_alloc(mig_scripts *s, size_t count)
{
    s->items = calloc(count + 1, sizeof *s->items);
    if (s->items == NULL)
        return MIGRATE_ENOMEM;
    s->count = count;
    return MIGRATE_OK;
}

void mig_scripts_free(mig_scripts *s)
{
    if (s->vdir_fd >= 0)
        close(s->vdir_fd);
    for (size_t i = 0; s->items != NULL && i < s->count; i++) {
        free(s->items[i].source);
        free(s->items[i].precheck_error);
        mig_sandbox_free(s->items[i].loaded);
    }
    free(s->items);
    mig_scripts_init(s);
}

/* Size and mtime of a script file: recorded next to its sha256 so that a
 * later run re-reads and re-hashes an applied script only when these
 * changed (SPEC §4.2's warning, without hashing every script on every
 * run). Taken before the file is read: a change racing the read leaves an
 * old stamp beside the new hash, which costs one extra hash, never a
 * missed warning. */

/* name relative to the directory dirfd (AT_FDCWD: the working directory).
 * Formatted by hand: snprintf was a tenth of a run with nothing to do. */
static void file_stamp(int dirfd, const char *name, char out[64])
{
    struct stat st;
    out[0] = '\0';
    /* A file modified in the last seconds may change again within the same
     * timestamp tick (ext4's clock is coarse) without its stamp changing:
     * no stamp for it, so it is hashed until a later run can stamp it. */
    if (fstatat(dirfd, name, &st, 0) != 0 || st.st_size < 0 || st.st_mtim.tv_sec < 0 ||
        st.st_mtim.tv_sec >= time(NULL) - RACY_SECONDS)
        return;
    char *at = out;
    memcpy(at, "size=", 5);
    at = mig_put_uint(at + 5, (unsigned long long)st.st_size, 1);
    memcpy(at, " mtime=", 7);
    at = mig_put_uint(at + 7, (unsigned long long)st.st_mtim.tv_sec, 1);
    *at++ = '.';
    at = mig_put_uint(at, (unsigned long long)st.st_mtim.tv_nsec, 9);
    *at = '\0';
}

int mig_scripts_read(mig_scripts *s, size_t i, const mig_entry *e, char *err)
{
    mig_script *sc = &s->items[i];
    file_stamp(AT_FDCWD, e->path, sc->stamp);
    int e2 = mig_read_file(e->path, MAX_SCRIPT_BYTES, &sc->source, &sc->len);
    if (e2 != 0) {
        char buf[128];
        return mig_errf(err, e2 == ENOMEM ? MIGRATE_ENOMEM : MIGRATE_EMANIFEST,
                        "%s: cannot read script: %s", e->path, mig_strerror(e2, buf, sizeof buf));
    }
    mig_sha256_hex(sc->source, sc->len, sc->sha256);
    return MIGRATE_OK;
}

void mig_scripts_set_precheck(mig_scripts *s, size_t i, mig_call_result c, char *msg,
                              double seconds)
{
    mig_script *sc = &s->items[i];
    sc->precheck = c == MIG_CALL_TRUE    ? MIG_PRECHECK_TRUE
                   : c == MIG_CALL_FALSE ? MIG_PRECHECK_FALSE
                   : msg != NULL         ? MIG_PRECHECK_ERROR
                                         : MIG_PRECHECK_NONE;
    sc->precheck_seconds = seconds;
    if (sc->precheck == MIG_PRECHECK_ERROR)
        sc->precheck_error = msg;
    else
        free(msg);
}

/* A real run keeps the sandbox the compile pass built for a script and
 * calls its migration there, instead of building a second one (which was
 * half the CPU of every applied migration). The top level thus runs once,
 * before any migration, as the authoring guide says; it cannot read the
 * file system, so it cannot tell when it ran. Past the memory bound, a
 * script is loaded again when its turn comes. */
bool mig_scripts_keep(mig_scripts *s, size_t i, mig_sandbox *sb, size_t memory_limit)
{
    size_t bound = memory_limit < KEEP_LOADED_MAX ? memory_limit : KEEP_LOADED_MAX;
    size_t bytes = mig_sandbox_footprint(sb);
    if (bytes > bound - s->loaded_bytes)
        return false;
    s->loaded_bytes += bytes;
    s->items[i].loaded = sb;
    return true;
}

mig_sandbox *mig_scripts_take_loaded(mig_scripts *s, size_t i)
{
    mig_sandbox *sb = s->items[i].loaded;
    s->items[i].loaded = NULL;
    return sb;
}

/* The open directory of e's version, for stat()s relative to it: a lookup
 * of one name rather than of the whole path, for every applied script of
 * every run. AT_FDCWD (whole paths) if it cannot be opened. */
static int version_dir(mig_scripts *s, const mig_entry *e)
{
    if (s->vdir_fd >= 0 && strcmp(s->vdir, e->dir) == 0)
        return s->vdir_fd;
    if (s->vdir_fd >= 0)
        close(s->vdir_fd);
    s->vdir = e->dir;
    s->vdir_fd = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->vdir_fd >= 0 ? s->vdir_fd : AT_FDCWD;
}

void mig_scripts_stamp(mig_scripts *s, const mig_entry *e, char out[64])
{
    int dirfd = version_dir(s, e);
    file_stamp(dirfd, dirfd == AT_FDCWD ? e->path : strrchr(e->path, '/') + 1, out);
}

bool mig_scripts_hash(const mig_entry *e, char out[65])
{
    char *src = NULL;
    size_t len = 0;
    if (mig_read_file(e->path, MAX_SCRIPT_BYTES, &src, &len) != 0)
        return false;
    mig_sha256_hex(src, len, out);
    free(src);
    return true;
}
