/* protect.c - what keeps scripts away from the run's state file and lock
 * (SPEC §5): the files by identity (device and inode), and by every
 * spelling the runner can name. A string alone is not enough: the state
 * directory may be reached through a symlink created before the directory
 * was, or the home bind-mounted at a second allowed root; an identity is
 * the same whatever path reaches it. */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool same_file(const struct stat *st, const mig_file_id *id)
{
    return st->st_dev == id->dev && st->st_ino == id->ino;
}

static mig_file_id id_of(const struct stat *st)
{
    mig_file_id id = {st->st_dev, st->st_ino};
    return id;
}

static char *join(const char *dir, size_t dir_len, const char *rest, const char *name)
{
    size_t n = dir_len + strlen(rest) + strlen(name) + 2;
    char *out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%.*s%s/%s", (int)dir_len, dir, rest, name);
    return out;
}

static bool add_path(mig_protect *p, size_t *count, char *path)
{
    if (path == NULL)
        return false;
    char **grown = realloc(p->paths, (*count + 2) * sizeof *grown);
    if (grown == NULL) {
        free(path);
        return false;
    }
    p->paths = grown;
    p->paths[(*count)++] = path;
    p->paths[*count] = NULL;
    return true;
}

/* dir's identity and every ancestor's, dir first: "/a/b" gives /a/b, /a, /.
 * dir is absolute and symlink-free. */
static bool collect_ancestors(mig_protect *p, const char *dir)
{
    size_t n = 1;
    for (const char *c = dir; *c != '\0'; c++)
        n += *c == '/';
    p->ancestors = calloc(n, sizeof *p->ancestors);
    char *path = strdup(dir);
    if (p->ancestors == NULL || path == NULL) {
        free(path);
        return false;
    }
    size_t len = strlen(path);
    for (;;) {
        /* One entry per ancestor, also for one that cannot be stat()ed
         * (it matches nothing then), so that entry k is always dir less k
         * components (see add_root_spellings). */
        struct stat st;
        mig_file_id none = {0, 0};
        if (p->view.n_ancestors < n)
            p->ancestors[p->view.n_ancestors++] =
                stat(len > 0 ? path : "/", &st) == 0 ? id_of(&st) : none;
        if (len == 0)
            break;
        while (len > 0 && path[len - 1] != '/')
            len--;
        while (len > 0 && path[len - 1] == '/')
            len--;
        path[len] = '\0';
    }
    free(path);
    return true;
}

/* The spellings of the state and the lock under each root that is the same
 * directory as one of the state directory's ancestors (a bind mount of the
 * home, a second name the roots' resolution could not fold): root + the
 * rest of the directory's path below that ancestor. */
static bool add_root_spellings(mig_protect *p, size_t *count, const char *dir,
                               char *const *roots)
{
    for (size_t r = 0; roots != NULL && roots[r] != NULL; r++) {
        struct stat st;
        if (stat(roots[r], &st) != 0)
            continue;
        /* Ancestor k is dir cut after its (n - 1 - k)th slash, from the end. */
        size_t len = strlen(dir);
        for (size_t k = 0; k < p->view.n_ancestors; k++) {
            if (same_file(&st, &p->ancestors[k])) {
                size_t root_len = strlen(roots[r]);
                while (root_len > 1 && roots[r][root_len - 1] == '/')
                    root_len--;
                if (root_len == 1)
                    root_len = 0; /* "/" joins as "" */
                const char *rest = dir + len;
                if ((len != root_len || strncmp(dir, roots[r], len) != 0) &&
                    (!add_path(p, count, join(roots[r], root_len, rest, p->names[0])) ||
                     !add_path(p, count, join(roots[r], root_len, rest, p->names[1]))))
                    return false;
                break;
            }
            while (len > 0 && dir[len - 1] != '/')
                len--;
            while (len > 0 && dir[len - 1] == '/')
                len--;
        }
    }
    return true;
}

void mig_protect_refresh(mig_protect *p)
{
    if (!p->by_identity)
        return;
    struct stat st;
    size_t n = 0;
    if (stat(p->paths[0], &st) == 0)
        p->files[n++] = id_of(&st);
    if (p->have_lock) /* the lock is never replaced: its identity holds */
        p->files[n++] = p->lock_id;
    p->view.n_files = n;
}

int mig_protect_init(mig_protect *p, const char *state_path, const char *lock_path, int lock_fd,
                     char *const *roots)
{
    memset(p, 0, sizeof *p);
    const char *slash = strrchr(state_path, '/'), *lslash = strrchr(lock_path, '/');
    if (slash == NULL || lslash == NULL)
        return MIGRATE_EINVAL;
    char *dir = slash == state_path ? strdup("/") : strndup(state_path, (size_t)(slash - state_path));
    /* Where the directory exists, its real path: the one scripts' paths
     * resolve to (it may have been made through a symlink since the run
     * first resolved state_path). */
    char *real = dir != NULL ? realpath(dir, NULL) : NULL;
    const char *at = real != NULL ? real : dir;
    size_t at_len = at != NULL && strcmp(at, "/") != 0 ? strlen(at) : 0;
    size_t count = 0;
    bool ok = at != NULL && add_path(p, &count, join(at, at_len, "", slash + 1)) &&
              add_path(p, &count, join(at, at_len, "", lslash + 1));
    if (ok) {
        p->names[0] = strrchr(p->paths[0], '/') + 1;
        p->names[1] = strrchr(p->paths[1], '/') + 1;
        size_t tn = strlen(p->names[0]) + sizeof ".tmp-" + 1;
        if ((p->temp_prefix = malloc(tn)) != NULL)
            snprintf(p->temp_prefix, tn, ".%s.tmp-", p->names[0]);
        ok = p->temp_prefix != NULL;
    }
    struct stat st;
    if (ok && real != NULL && stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        p->by_identity = true;
        p->view.dir = id_of(&st);
        if ((lock_fd >= 0 ? fstat(lock_fd, &st) : stat(p->paths[1], &st)) == 0) {
            p->lock_id = id_of(&st);
            p->have_lock = true;
        }
        mig_protect_refresh(p);
        ok = collect_ancestors(p, real) && add_root_spellings(p, &count, real, roots);
    }
    p->view.names = p->names;
    p->view.temp_prefix = p->temp_prefix;
    p->view.ancestors = p->ancestors;
    p->view.files = p->files;
    free(dir);
    free(real);
    return ok ? MIGRATE_OK : MIGRATE_ENOMEM;
}

const mig_protection *mig_protect_view(const mig_protect *p)
{
    return p->by_identity ? &p->view : NULL;
}

void mig_protect_free(mig_protect *p)
{
    for (size_t i = 0; p->paths != NULL && p->paths[i] != NULL; i++)
        free(p->paths[i]);
    free(p->paths);
    free(p->temp_prefix);
    free(p->ancestors);
    memset(p, 0, sizeof *p);
}
