/* runstate.c - a run's lock and state file (SPEC §4.4): taking the lock,
 * loading the state (moving a corrupt one aside), protecting both from
 * scripts, and saving each recorded outcome. run.c drives it. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void mig_runstate_init(mig_runstate *s, mig_warn_fn warn, void *warn_ud, char *err)
{
    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    s->warn = warn;
    s->warn_ud = warn_ud;
    s->err = err;
}

static void warnf(mig_runstate *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(mig_runstate *s, const char *fmt, ...)
{
    char msg[MIG_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->warn(s->warn_ud, msg);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the lock ------------------------------------------------------------------ */

static int take_lock(mig_runstate *s, unsigned lock_timeout_ms);

/* flock on <state>.lock, waiting up to lock_timeout_ms. The lock file is
 * never removed: a waiter holding the old file and a newcomer creating a
 * new one would both believe they hold the lock. */
int mig_runstate_lock(mig_runstate *s, unsigned lock_timeout_ms, bool create)
{
    char buf[128];
    if (!create) {
        s->lock_fd = open(s->lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (s->lock_fd < 0 && (errno == ENOENT || errno == ENOTDIR))
            return MIGRATE_OK; /* no lock file yet: nothing to take without writing */
        if (s->lock_fd < 0)
            return mig_errf(s->err, MIGRATE_EIO, "%s: cannot open: %s", s->lock_path,
                            mig_strerror(errno, buf, sizeof buf));
        return take_lock(s, lock_timeout_ms);
    }
    char *dir = strdup(s->state_path);
    if (dir == NULL)
        return mig_errf(s->err, MIGRATE_ENOMEM, "out of memory");
    *strrchr(dir, '/') = '\0';
    int e = dir[0] != '\0' ? mig_mkdir_parents(dir, 0700) : 0;
    free(dir);
    if (e != 0)
        return mig_errf(s->err, MIGRATE_EIO, "%s: cannot create its directory: %s",
                        s->state_path, mig_strerror(e, buf, sizeof buf));
    s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->lock_fd < 0)
        return mig_errf(s->err, MIGRATE_EIO, "%s: cannot open: %s", s->lock_path,
                        mig_strerror(errno, buf, sizeof buf));
    return take_lock(s, lock_timeout_ms);
}

static int take_lock(mig_runstate *s, unsigned lock_timeout_ms)
{
    char buf[128];
    double give_up = now_seconds() + lock_timeout_ms / 1000.0;
    for (;;) {
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
            return MIGRATE_OK;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return mig_errf(s->err, MIGRATE_EIO, "%s: cannot lock: %s", s->lock_path,
                            mig_strerror(errno, buf, sizeof buf));
        double left = give_up - now_seconds();
        if (left <= 0)
            return mig_errf(s->err, MIGRATE_ELOCKED,
                            "%s: another run holds the lock (waited %u ms)", s->lock_path,
                            lock_timeout_ms);
        struct timespec nap = {0, (long)((left < 0.01 ? left : 0.01) * 1e9)};
        nanosleep(&nap, NULL);
    }
}

/* Once the state directory exists (a real run has made it and holds the
 * lock in it): the state file and the lock, by identity and by every
 * spelling, for every script's fs. Resolved again here: the directory may
 * have been made just now through a symlink, which the run's first
 * resolution could not yet see. A dry run writes nothing and may have no
 * directory: then only the strings protect, which a read-only run does not
 * need anyway. */
int mig_runstate_protect(mig_runstate *s, char *const *roots)
{
    int rc = mig_protect_init(&s->protect, s->state_path, s->lock_path, s->lock_fd, roots);
    if (rc != MIGRATE_OK)
        return mig_errf(s->err, rc, "out of memory protecting the state file");
    return MIGRATE_OK;
}

/* ---- the state ------------------------------------------------------------------- */

static int move_corrupt_aside(mig_runstate *s, char *aside, size_t len)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    struct stat st;
    for (int n = 0; n < 1000; n++) {
        if (n == 0)
            snprintf(aside, len, "%s.corrupt-%s", s->state_path, when);
        else
            snprintf(aside, len, "%s.corrupt-%s-%d", s->state_path, when, n);
        if (lstat(aside, &st) != 0)
            break; /* free name (we hold the lock: nobody races us to it) */
    }
    if (rename(s->state_path, aside) != 0 || mig_fsync_parent(s->state_path) != 0) {
        char buf[128];
        return mig_errf(s->err, MIGRATE_EIO, "%s: cannot move the corrupt state aside: %s",
                        s->state_path, mig_strerror(errno, buf, sizeof buf));
    }
    return MIGRATE_OK;
}

int mig_runstate_load(mig_runstate *s, bool recover_corrupt, bool dry_run)
{
    if (!dry_run)
        mig_sweep_temps(s->state_path);
    int rc = mig_state_load(s->state_path, &s->state, s->err);
    if (rc != MIGRATE_ESTATE || !recover_corrupt)
        return rc;
    if (dry_run) {
        warnf(s, "%s; a real run would move it aside and let check() alone decide", s->err);
    } else {
        char aside[PATH_MAX + 64];
        rc = move_corrupt_aside(s, aside, sizeof aside);
        if (rc != MIGRATE_OK)
            return rc;
        warnf(s, "%s; moved aside to %s, check() alone decides what is applied", s->err, aside);
    }
    s->err[0] = '\0';
    s->state = mig_state_new();
    return s->state ? MIGRATE_OK : mig_errf(s->err, MIGRATE_ENOMEM, "out of memory");
}

/* Ids recorded for versions above `to` mean the daemon was rolled back:
 * worth saying, never a reason to fail. */
void mig_runstate_warn_ahead(mig_runstate *s, const migrate_version *to, const char *to_text)
{
    if (to_text == NULL)
        return;
    for (size_t i = 0; i < mig_state_count(s->state); i++) {
        const char *id = mig_state_id(s->state, i);
        const char *slash = id ? strchr(id, '/') : NULL;
        migrate_version v;
        if (slash == NULL || id[0] != 'v' ||
            mig_version_parse(id + 1, (size_t)(slash - id - 1), &v, NULL) != MIGRATE_OK)
            continue;
        if (migrate_version_compare(&v, to) > 0)
            warnf(s, "the state records %s, newer than %s (was the daemon rolled back?)", id,
                  to_text);
    }
}

int mig_runstate_record(mig_runstate *s, const char *id, const char *outcome, double seconds,
                        const char *sha256, const char *stamp)
{
    int rc = mig_state_record(s->state, id, outcome, seconds, sha256);
    if (rc == MIGRATE_OK && stamp[0] != '\0')
        rc = mig_state_set_stamp(s->state, id, stamp);
    if (rc == MIGRATE_OK) {
        rc = mig_state_save(s->state, s->state_path, s->err);
        if (rc == MIGRATE_OK)
            mig_protect_refresh(&s->protect); /* the save made a new file: a new inode */
    } else {
        mig_errf(s->err, rc, "out of memory recording %s", id);
    }
    return rc;
}

void mig_runstate_free(mig_runstate *s)
{
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    s->lock_fd = -1;
    mig_state_free(s->state);
    s->state = NULL;
    mig_protect_free(&s->protect);
    free(s->state_path);
    free(s->lock_path);
    s->state_path = s->lock_path = NULL;
}
