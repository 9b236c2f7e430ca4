/* fs.c - the `fs` module: how a migration script touches the user's files
 * (SPEC §5).
 *
 * Confinement is done by the kernel's own lookups on directory
 * descriptors, never by checking a string and handing it to a system call
 * that resolves it again: a process that swaps a component for a symlink
 * in between would take the call outside the allowed roots.
 *
 * Every path is resolved to a target: a descriptor (O_PATH) of the
 * directory that holds its last component, that component's name, and an
 * O_PATH descriptor of the entry if it exists. Where the kernel has
 * openat2(), a path without symlinks or dots is resolved in one call with
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS from the
 * root it lies under. Everything else (symlinks, "..", missing components,
 * a kernel without openat2 or a seccomp filter refusing it) goes through
 * walk(): component by component from the root, each one opened with
 * O_NOFOLLOW; a symlink is read through its own descriptor (readlinkat)
 * and its target spliced into the rest of the path, re-rooted and checked
 * again (at most MAX_LINKS of them); ".." re-walks from the root. Above
 * the roots (a path that reaches a root through a symlinked ancestor, say)
 * components are looked at by name, since nothing is done there: only a
 * descriptor opened on a root itself starts a walk that may lead to an
 * action. Every action is then an *at() call on (directory descriptor,
 * name) that follows no symlink: openat O_NOFOLLOW, renameat, unlinkat,
 * mkdirat, symlinkat, fchmodat2 (or chmod of the descriptor), fstat.
 *
 * No fs function creates or keeps a setuid or setgid bit: an explicit mode
 * with one is refused, a copy or a rewrite drops it.
 *
 * Errors are raised, never returned: a migration must not carry on after a
 * lost write. No Lua function is called while a file descriptor, DIR* or
 * malloc'd block is held, since a Lua error would longjmp past its
 * release: resolver scratch space and buffers are Lua userdata allocated
 * before the first descriptor is opened, and errors are raised after the
 * last one is closed. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#define MAX_LINKS 40          /* as the kernel: more is ELOOP */
#define MAX_PASSES 8          /* remove_tree re-reads a directory that filled up again */
#define READ_ATTEMPTS 24      /* fs.read retries a file that grows while read */
#define LIST_ATTEMPTS 8       /* fs.list retries a directory that grows while read */
#define FIRST_READ 4096       /* fs.read's first buffer; fstat sizes the next */
#define COPY_BUFFER (64 * 1024)
#define SETID_BITS (S_ISUID | S_ISGID)

/* fchmodat2 (Linux 6.6) has the same number on every architecture. */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* Error codes of our own beside errno values, for path_error(). */
enum {
    RELATIVE_PATH = -1,
    NOT_REGULAR = -2,
    NUL_IN_PATH = -3,
    OUTSIDE = -4,
    PROTECTED = -5,
    CHANGED = -6,
    VIEW_FULL = MIG_VIEW_FULL
};

typedef enum link_mode {
    FOLLOW,     /* the final component is followed if it is a link */
    KEEP_FINAL  /* the final component names the link itself */
} link_mode;

/* Scratch space of one resolution. Lua memory (a userdata), so it counts
 * against the script's limit and is collected if an error unwinds. */
typedef struct resolver {
    char path[PATH_MAX]; /* the path to resolve, absolute ("~" expanded) */
    char out[PATH_MAX];  /* resolved so far; "" stands for "/" */
    size_t out_len;
    char rest[PATH_MAX]; /* components still to resolve */
    char link[PATH_MAX]; /* a link's target, spliced in front of rest */
    int missing;         /* trailing components of out that do not exist */
    int missing_err;     /* why the first of them does not (ENOENT, ENOTDIR) */
    int links;
    const char *root;    /* the root out lies in while walking by descriptor */
    size_t root_len;     /* its length without trailing slashes */
} resolver;

/* What a path resolved to. Plain C memory (on the caller's stack): only
 * descriptors, released by target_release() before any Lua error. */
typedef struct target {
    resolver *r;          /* r->out: the resolved path */
    int dir;              /* O_PATH: the directory holding name; -1 */
    int fd;               /* O_PATH|O_NOFOLLOW: the entry; -1 when missing */
    struct stat st;       /* of fd */
    char name[NAME_MAX + 1];
    bool is_root;         /* the path is an allowed root itself (name ".") */
    bool dir_wanted;      /* a trailing "/", "." or "..": a directory is meant */
    int parent_err;       /* non-zero: the directory holding name is missing */
} target;

static mig_fsenv *fs_env(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- Errors -------------------------------------------------------------- */

static const char *error_text(int err, char *buf, size_t len)
{
    switch (err) {
    case RELATIVE_PATH: return "relative paths are not allowed (use \"~/...\" or an absolute path)";
    case NOT_REGULAR: return "not a regular file";
    case NUL_IN_PATH: return "path contains a NUL byte";
    case OUTSIDE: return "outside allowed roots";
    case PROTECTED: return "the migration state is not writable from a script";
    case CHANGED: return "changed while being resolved (a directory was moved or swapped)";
    case VIEW_FULL: return "the rehearsal's copy-on-write view is full (it holds at most "
                           "opts.rehearsal_memory_limit bytes; raise it, or rehearse fewer "
                           "migrations at once)";
    default: return mig_strerror(err, buf, len);
    }
}

/* Raises `fs.<fn>: "<path as given>": <reason>`. */
static int path_error(lua_State *L, const char *fn, int arg, int err)
{
    char buf[128];
    return luaL_error(L, "fs.%s: \"%s\": %s", fn, lua_tostring(L, arg),
                      error_text(err, buf, sizeof buf));
}

static int stage_error(lua_State *L, const char *fn, int arg, const char *stage, int err)
{
    if (strcmp(stage, "open") == 0)
        return path_error(L, fn, arg, err);
    char buf[128];
    return luaL_error(L, "fs.%s: \"%s\": %s: %s", fn, lua_tostring(L, arg), stage,
                      error_text(err, buf, sizeof buf));
}

/* ---- Path resolution ------------------------------------------------------- */

/* "~" or "~/..." becomes home + rest; absolute paths are copied. */
static int expand_into(const mig_fsenv *env, const char *path, char dst[PATH_MAX])
{
    const char *prefix = "";
    if (path[0] == '~' && (path[1] == '\0' || path[1] == '/')) {
        prefix = env->home;
        path++;
    } else if (path[0] != '/') {
        return RELATIVE_PATH;
    }
    int n = snprintf(dst, PATH_MAX, "%s%s", prefix, path);
    return n < 0 || n >= PATH_MAX ? ENAMETOOLONG : 0;
}

/* The next component of rest at *pos; false when none is left. */
static bool next_component(const char *rest, size_t *pos, const char **name, size_t *len)
{
    while (rest[*pos] == '/')
        (*pos)++;
    if (rest[*pos] == '\0')
        return false;
    *name = rest + *pos;
    *len = strcspn(*name, "/");
    *pos += *len;
    return true;
}

/* What the next component of a walk is. */
typedef enum step {
    STEP_END,    /* none left */
    STEP_DOT,    /* "." */
    STEP_DOTDOT, /* ".." */
    STEP_NAME    /* a name: *name, *len */
} step;

/* The next component of r->rest at *pos for a walk: *last when nothing
 * follows it; a trailing "/" after the last one means a directory is
 * wanted (*dir_wanted). */
static step next_step(const resolver *r, size_t *pos, const char **name, size_t *len, bool *last,
                      bool *dir_wanted)
{
    if (!next_component(r->rest, pos, name, len))
        return STEP_END;
    size_t after = *pos + strspn(r->rest + *pos, "/");
    *last = r->rest[after] == '\0';
    if (*last && after > *pos)
        *dir_wanted = true;
    if (*len == 1 && (*name)[0] == '.')
        return STEP_DOT;
    if (*len == 2 && (*name)[0] == '.' && (*name)[1] == '.')
        return STEP_DOTDOT;
    return STEP_NAME;
}

static void pop_component(resolver *r)
{
    while (r->out_len > 0 && r->out[r->out_len - 1] != '/')
        r->out_len--;
    if (r->out_len > 0)
        r->out_len--;
    r->out[r->out_len] = '\0';
}

static int push_component(resolver *r, const char *name, size_t len)
{
    if (len > NAME_MAX)
        return ENAMETOOLONG;
    if (r->out_len + 1 + len >= PATH_MAX)
        return ENAMETOOLONG;
    r->out[r->out_len++] = '/';
    memmove(r->out + r->out_len, name, len);
    r->out_len += len;
    r->out[r->out_len] = '\0';
    return 0;
}

/* Replaces the link just pushed onto out by its target (r->link, n bytes
 * long), which continues with what is left of rest after *pos. */
static int splice_link(resolver *r, size_t *pos, ssize_t n)
{
    if (++r->links > MAX_LINKS)
        return ELOOP;
    size_t tail = strlen(r->rest + *pos + strspn(r->rest + *pos, "/"));
    if (n <= 0)
        return ENOENT;
    if (n >= PATH_MAX || (size_t)n + 1 + strlen(r->rest + *pos) >= PATH_MAX)
        return ENAMETOOLONG;
    /* The rest only if something is left: "link" + "" must not become
     * "target/", which would ask for a directory. */
    if (tail > 0)
        strcpy(r->link + n, r->rest + *pos);
    else
        r->link[n] = '\0';
    strcpy(r->rest, r->link);
    *pos = 0;
    pop_component(r); /* a relative target is relative to the link's directory */
    if (r->link[0] == '/') {
        r->out_len = 0;
        r->out[0] = '\0';
    }
    return 0;
}

static size_t root_length(const char *root)
{
    size_t n = strlen(root);
    while (n > 0 && root[n - 1] == '/')
        n--;
    return n;
}

/* Whether out is exactly an allowed root; if so, opens it into *fd and
 * remembers it as the root of the walk. */
static int enter_root(const mig_fsenv *env, resolver *r, int *fd)
{
    for (const char *const *root = env->roots; root != NULL && *root != NULL; root++) {
        size_t n = root_length(*root);
        if (n != r->out_len || memcmp(r->out, *root, n) != 0)
            continue;
        *fd = open(**root != '\0' ? *root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*fd < 0)
            return errno;
        r->root = *root;
        r->root_len = n;
        return 0;
    }
    return 0;
}

/* After a "..": a descriptor of out, walked again from its root through
 * names that must all be directories (out holds no link and no dot). */
static int reopen(resolver *r, int *fd)
{
    int cur = open(*r->root != '\0' ? r->root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return errno;
    size_t pos = r->root_len, len;
    const char *name;
    char comp[NAME_MAX + 1];
    while (next_component(r->out, &pos, &name, &len)) {
        memcpy(comp, name, len);
        comp[len] = '\0';
        int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(cur);
        if (next < 0)
            return err == ELOOP || err == ENOTDIR || err == ENOENT ? CHANGED : err;
        cur = next;
    }
    *fd = cur;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void target_release(target *t)
{
    close_fd(&t->dir);
    close_fd(&t->fd);
}

/* The target is the directory open as fd, out itself: a root (no
 * directory of it lies inside the roots) or, after a trailing dot, a
 * directory walked again by name so that its parent is known. */
static int walk(const mig_fsenv *env, resolver *r, link_mode how, target *t);

static int end_on_directory(const mig_fsenv *env, resolver *r, link_mode how, target *t, int fd)
{
    t->dir_wanted = true;
    if (r->out_len == r->root_len) {
        t->is_root = true;
        t->dir = fd;
        strcpy(t->name, ".");
        t->fd = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (t->fd < 0 || fstat(t->fd, &t->st) != 0)
            return errno;
        return 0;
    }
    close(fd);
    memcpy(r->rest, r->out, r->out_len + 1);
    return walk(env, r, how, t);
}

static int walk(const mig_fsenv *env, resolver *r, link_mode how, target *t)
{
    int fd = -1, err = 0;
    bool ends_dir = true; /* no name component yet: "/" is a directory */
    r->out_len = 0;
    r->out[0] = '\0';
    r->missing = 0;
    r->missing_err = 0;
    r->root = NULL;
    r->root_len = 0;
    if ((err = enter_root(env, r, &fd)) != 0)
        goto fail;
    size_t pos = 0, len;
    const char *name;
    bool last;
    for (step k; (k = next_step(r, &pos, &name, &len, &last, &t->dir_wanted)) != STEP_END;) {
        ends_dir = last;
        if (k == STEP_DOT)
            continue;
        if (k == STEP_DOTDOT) {
            if (r->missing > 0) {
                pop_component(r);
                r->missing--;
            } else if (fd >= 0 && r->out_len == r->root_len) {
                if (r->root_len == 0)
                    continue; /* "/.." is "/" */
                close_fd(&fd); /* up out of the root: by name from here */
                r->root = NULL;
                pop_component(r);
            } else {
                pop_component(r);
                if (fd >= 0) {
                    close_fd(&fd);
                    if ((err = reopen(r, &fd)) != 0)
                        goto fail;
                }
            }
            continue;
        }
        ends_dir = false;
        if ((err = push_component(r, name, len)) != 0)
            goto fail;
        if (r->missing > 0) {
            r->missing++;
            continue;
        }
        const char *cname = r->out + r->out_len - len;
        struct stat st;
        if (fd < 0) {
            /* Above the roots: looked at by name until a root is reached. */
            if ((err = enter_root(env, r, &fd)) != 0)
                goto fail;
            if (fd >= 0) {
                if (last) {
                    ends_dir = true;
                    break;
                }
                continue;
            }
            if (last && how == KEEP_FINAL)
                break;
            if (lstat(r->out, &st) != 0) {
                if (errno != ENOENT && errno != ENOTDIR) {
                    err = errno;
                    goto fail;
                }
                r->missing = 1;
                r->missing_err = errno;
            } else if (S_ISLNK(st.st_mode)) {
                ssize_t n = readlink(r->out, r->link, PATH_MAX);
                if (n < 0) {
                    err = errno;
                    goto fail;
                }
                if ((err = splice_link(r, &pos, n)) != 0)
                    goto fail;
                ends_dir = true; /* unless the target names more */
                if ((err = enter_root(env, r, &fd)) != 0) /* a link to "/" */
                    goto fail;
            }
            continue;
        }
        int child = openat(fd, cname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
            if (errno != ENOENT && errno != ENOTDIR) {
                err = errno;
                goto fail;
            }
            r->missing = 1;
            r->missing_err = errno;
            continue;
        }
        if (fstat(child, &st) != 0) {
            err = errno;
            close(child);
            goto fail;
        }
        if (S_ISLNK(st.st_mode) && !(last && how == KEEP_FINAL)) {
            ssize_t n = readlinkat(child, "", r->link, PATH_MAX);
            err = n < 0 ? errno : 0;
            close(child);
            if (err == 0)
                err = splice_link(r, &pos, n);
            if (err != 0)
                goto fail;
            ends_dir = true; /* unless the target names more */
            if (r->link[0] == '/') { /* absolute: from the top again */
                close_fd(&fd);
                r->root = NULL;
                if ((err = enter_root(env, r, &fd)) != 0)
                    goto fail;
            }
            continue;
        }
        if (last) {
            t->fd = child;
            t->st = st;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            fd = child;
            continue;
        }
        close(child);
        r->missing = 1;
        r->missing_err = ENOTDIR;
    }
    if (fd < 0) {
        err = OUTSIDE;
        goto fail;
    }
    if (ends_dir && r->missing == 0)
        return end_on_directory(env, r, how, t, fd);
    t->dir = fd;
    if (r->missing > 1)
        t->parent_err = r->missing_err;
    const char *slash = strrchr(r->out, '/');
    strcpy(t->name, slash != NULL ? slash + 1 : r->out);
    return 0;
fail:
    close_fd(&fd);
    close_fd(&t->fd);
    return err;
}

/* ---- openat2: the whole lookup in one call ------------------------------- */

static atomic_bool no_openat2; /* ENOSYS, or a seccomp filter said EPERM */

/* Resolves r->rest in one openat2() when it is plain: under a root, no
 * ".", "..", trailing slash or symlink. false: take the walk. */
static bool resolve_plain(const mig_fsenv *env, resolver *r, link_mode how, target *t)
{
    if (atomic_load_explicit(&no_openat2, memory_order_relaxed))
        return false;
#ifdef MIGRATE_TEST_SEAMS
    /* The test build only: every lookup by the walk, as on a kernel
     * without openat2 (MIGRATE_TEST_NO_OPENAT2=1 build/tests/test_fs). */
    if (getenv("MIGRATE_TEST_NO_OPENAT2") != NULL)
        return false;
#endif
    size_t pos = 0, len;
    const char *name;
    r->out_len = 0;
    while (next_component(r->rest, &pos, &name, &len)) {
        if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.') ||
            push_component(r, name, len) != 0)
            return false;
    }
    if (r->out_len == 0 || r->rest[strlen(r->rest) - 1] == '/')
        return false;
    const char *root = NULL;
    size_t n = 0;
    for (const char *const *p = env->roots; p != NULL && *p != NULL && root == NULL; p++) {
        n = root_length(*p);
        if (r->out_len > n && memcmp(r->out, *p, n) == 0 && r->out[n] == '/')
            root = *p;
    }
    if (root == NULL)
        return false;
    int rootfd = open(*root != '\0' ? root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return false;
    const char *base = strrchr(r->out, '/') + 1;
    int dir = rootfd;
    if (base > r->out + n + 1) {
        char *rel = r->link;
        size_t rel_len = (size_t)(base - 1 - (r->out + n + 1));
        memcpy(rel, r->out + n + 1, rel_len);
        rel[rel_len] = '\0';
        struct open_how oh = {
            .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
        };
        long got = syscall(SYS_openat2, rootfd, rel, &oh, sizeof oh);
        int err = errno;
        close(rootfd);
        if (got < 0) {
            if (err == ENOSYS || err == EPERM)
                atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
            return false;
        }
        dir = (int)got;
    }
    int fd = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 ? errno != ENOENT
               : fstat(fd, &st) != 0 || (S_ISLNK(st.st_mode) && how == FOLLOW)) {
        if (fd >= 0)
            close(fd);
        close(dir);
        return false;
    }
    t->dir = dir;
    t->fd = fd;
    if (fd >= 0)
        t->st = st;
    strcpy(t->name, base);
    r->missing = fd < 0;
    r->missing_err = ENOENT;
    return true;
}

/* Resolves r->path into *t: 0 or an error code. */
static int resolve_target(const mig_fsenv *env, resolver *r, link_mode how, target *t)
{
    *t = (target){.r = r, .dir = -1, .fd = -1};
    r->links = 0;
    memcpy(r->rest, r->path, strlen(r->path) + 1);
    if (resolve_plain(env, r, how, t))
        return 0;
    return walk(env, r, how, t);
}

/* ---- State protection ------------------------------------------------------ */

/* Whether name is ".<base>.tmp-...": the temp file of a state write. */
static bool is_temp_name(const char *name, const char *base)
{
    size_t base_len = strlen(base);
    return name[0] == '.' && strncmp(name + 1, base, base_len) == 0 &&
           strncmp(name + 1 + base_len, ".tmp-", 5) == 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether acting on t could change a protected file (the state, its
 * lock): by any spelling, since the comparison is by device and inode of
 * what the descriptors hold: the entry itself, or the same name (or a
 * temp of it) in the same directory; with `ancestors`, also a directory
 * holding one (fs.remove_tree, fs.rename). */
static bool id_is(const struct stat *st, const mig_file_id *id)
{
    return st->st_dev == id->dev && st->st_ino == id->ino;
}

/* The same question against the identities run.c took (mig_protection):
 * these hold whatever a script does to the names after they were taken. */
static bool protected_by_identity(const mig_protection *p, const target *t, const struct stat *dir_st,
                                  bool ancestors)
{
    if (dir_st != NULL && id_is(dir_st, &p->dir)) {
        if (strncmp(t->name, p->temp_prefix, strlen(p->temp_prefix)) == 0)
            return true;
        for (const char *const *n = p->names; *n != NULL; n++)
            if (strcmp(t->name, *n) == 0)
                return true;
    }
    if (t->fd < 0)
        return false;
    for (size_t i = 0; i < p->n_files; i++)
        if (id_is(&t->st, &p->files[i]))
            return true;
    for (size_t i = 0; ancestors && S_ISDIR(t->st.st_mode) && i < p->n_ancestors; i++)
        if (id_is(&t->st, &p->ancestors[i]))
            return true;
    return false;
}

static bool protected_target(const mig_fsenv *env, const target *t, bool ancestors)
{
    struct stat dir_st;
    bool have_dir = t->dir >= 0 && !t->is_root && fstat(t->dir, &dir_st) == 0;
    if (env->protection != NULL && protected_by_identity(env->protection, t, have_dir ? &dir_st : NULL, ancestors))
        return true;
    for (const char *const *p = env->protected_paths; p != NULL && *p != NULL; p++) {
        struct stat st;
        if (t->fd >= 0 && stat(*p, &st) == 0 && same_file(&st, &t->st))
            return true;
        const char *slash = strrchr(*p, '/');
        if (slash == NULL)
            continue;
        const char *base = slash + 1;
        char dir[PATH_MAX];
        size_t dlen = slash == *p ? 1 : (size_t)(slash - *p);
        if (dlen >= sizeof dir)
            continue;
        memcpy(dir, *p, dlen);
        dir[dlen] = '\0';
        if (have_dir && (strcmp(t->name, base) == 0 || is_temp_name(t->name, base)) &&
            stat(dir, &st) == 0 && same_file(&st, &dir_st))
            return true;
        if (!ancestors || t->fd < 0 || !S_ISDIR(t->st.st_mode))
            continue;
        /* Each directory on the protected path, up to "/". */
        for (;;) {
            if (stat(dir, &st) == 0 && same_file(&st, &t->st))
                return true;
            char *up = strrchr(dir, '/');
            if (up == NULL || (up == dir && dir[1] == '\0'))
                break;
            up[up == dir ? 1 : 0] = '\0';
        }
    }
    return false;
}

/* ---- Taking paths from arguments -------------------------------------------- */

/* Checks argument arg of fs.<fn> and readies *t for locate(): raises on
 * a bad argument, before any descriptor exists. The resolver is left on
 * the stack. */
static void prepare(lua_State *L, int arg, const char *fn, target *t)
{
    const char *closed = fs_env(L)->closed_reason;
    if (closed != NULL)
        luaL_error(L, "fs.%s: not allowed: %s", fn, closed);
    size_t len;
    const char *given = luaL_checklstring(L, arg, &len);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    *t = (target){.r = r, .dir = -1, .fd = -1};
    int err = strlen(given) != len ? NUL_IN_PATH : expand_into(fs_env(L), given, r->path);
    if (err != 0)
        path_error(L, fn, arg, err);
}

static int locate(lua_State *L, target *t, link_mode how)
{
    return resolve_target(fs_env(L), t->r, how, t);
}

/* Read at call time: the sandbox sets it around check() and clears it for
 * migrate(). */
static void check_writable(lua_State *L, const char *fn)
{
    const char *reason = fs_env(L)->readonly_reason;
    if (reason != NULL)
        luaL_error(L, "fs.%s: not allowed: %s", fn, reason);
}


/* ---- Arguments ----------------------------------------------------------- */

static lua_Integer parse_octal(const char *text, size_t len)
{
    if (len == 0 || len > 6)
        return -1;
    lua_Integer mode = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '7')
            return -1;
        mode = mode * 8 + (text[i] - '0');
    }
    return mode;
}

/* A mode as an octal string ("0644") or an integer (420): Lua has no
 * octal literals, so a script writing 0644 would mean 644. A setuid or
 * setgid bit is refused: no fs function makes a file that runs with its
 * owner's rights (the executor may be root). */
static mode_t check_mode(lua_State *L, int arg)
{
    lua_Integer mode = -1;
    if (lua_type(L, arg) == LUA_TSTRING) {
        size_t len;
        const char *text = lua_tolstring(L, arg, &len);
        mode = parse_octal(text, len);
    } else if (lua_type(L, arg) == LUA_TNUMBER) {
        int is_integer;
        mode = lua_tointegerx(L, arg, &is_integer);
        if (!is_integer)
            mode = -1;
        else if (mode > 07777)
            luaL_argerror(L, arg, "mode has bits beyond 07777");
    }
    if (mode < 0 || mode > 07777)
        luaL_argerror(L, arg, "mode must be an octal string like \"0644\" or an integer");
    if (mode & SETID_BITS) {
        char text[96];
        snprintf(text, sizeof text, "mode 0%o has a setuid or setgid bit (04000, 02000): fs never "
                 "sets one", (unsigned)mode);
        luaL_argerror(L, arg, lua_pushstring(L, text));
    }
    return (mode_t)mode;
}

static int opt_mode(lua_State *L, int arg, int fallback)
{
    return lua_isnoneornil(L, arg) ? fallback : (int)check_mode(L, arg);
}

/* ---- Plain file work (no Lua in here) ---------------------------------- */

/* The target as a regular file: 0, or why it is not one. */
static int want_file(const target *t)
{
    if (t->fd < 0)
        return t->parent_err != 0 ? t->parent_err : ENOENT;
    if (S_ISDIR(t->st.st_mode))
        return EISDIR;
    if (!S_ISREG(t->st.st_mode))
        return NOT_REGULAR;
    return t->dir_wanted ? ENOTDIR : 0;
}

/* Opens the regular file t names for reading, never following a link and
 * never blocking (a FIFO swapped in is refused by the fstat after). */
static int open_file(const target *t, int *in, struct stat *st)
{
    int err = want_file(t);
    if (err != 0)
        return err;
    *in = openat(t->dir, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (*in < 0)
        return errno;
    err = fstat(*in, st) != 0 ? errno : 0;
    if (err == 0 && !S_ISREG(st->st_mode))
        err = S_ISDIR(st->st_mode) ? EISDIR : NOT_REGULAR;
    if (err != 0)
        close_fd(in);
    return err;
}

/* Reads the open file into buf (room bytes). *got == room means it did
 * not fit; *size is then what fstat says it holds now. Closes in. */
static int read_into(int in, const struct stat *st, char *buf, size_t room, size_t *got,
                     off_t *size)
{
    int err = 0;
    *got = 0;
    *size = st->st_size;
    if ((uintmax_t)st->st_size >= room)
        *got = room;
    while (*got < room) {
        ssize_t n = read(in, buf + *got, room - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        *got += (size_t)n;
    }
    close(in);
    return err;
}

/* Names in a directory, in a userdata: count pointers, then the bytes. */
typedef struct listing {
    char **names;   /* NULL: only count */
    char *bytes;
    size_t max_names, max_bytes;
    size_t count, used;
    bool overflow;
} listing;

/* Reads the names of the directory t names (a link to one followed by
 * locate()). */
static int read_names(const target *t, listing *ls)
{
    if (t->fd < 0)
        return t->parent_err != 0 ? t->parent_err : ENOENT;
    if (!S_ISDIR(t->st.st_mode))
        return ENOTDIR;
    int fd = openat(t->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    ls->count = ls->used = 0;
    ls->overflow = false;
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            err = errno;
            break;
        }
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t size = strlen(name) + 1;
        if (ls->names != NULL) {
            if (ls->count == ls->max_names || size > ls->max_bytes - ls->used) {
                ls->overflow = true;
                break;
            }
            ls->names[ls->count] = memcpy(ls->bytes + ls->used, name, size);
        }
        ls->count++;
        ls->used += size;
    }
    closedir(dir);
    return err;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytewise: unsigned char */
}

/* ---- remove_tree: depth without recursion ---------------------------------- */

/* One directory being emptied: where it is (to recognise it when coming
 * back up through ".."), its name in its parent, and how often it was
 * read through since it was entered. */
typedef struct level {
    dev_t dev;
    ino_t ino;
    int passes;
    char name[NAME_MAX + 1];
} level;

typedef struct tree_walk {
    level *levels;
    size_t depth, cap;
} tree_walk;

static int push_level(tree_walk *w, const struct stat *st, const char *name)
{
    if (w->depth == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        level *bigger = realloc(w->levels, cap * sizeof *bigger);
        if (bigger == NULL)
            return ENOMEM;
        w->levels = bigger;
        w->cap = cap;
    }
    level *l = &w->levels[w->depth++];
    l->dev = st->st_dev;
    l->ino = st->st_ino;
    l->passes = 0;
    snprintf(l->name, sizeof l->name, "%s", name);
    return 0;
}

/* Opens dirfd/name as a directory to read, never through a link. */
static int open_dir_nofollow(int dirfd, const char *name, int *fd, struct stat *st)
{
    *fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return errno;
    if (fstat(*fd, st) != 0) {
        int err = errno;
        close_fd(fd);
        return err;
    }
    return 0;
}

/* Empties the directory parent/name and everything under it. One
 * directory is open at a time: going down closes the parent, coming back
 * up opens ".." and checks it is the directory it left (device and
 * inode), so a tree moved meanwhile is never followed elsewhere. Entries
 * are read again until none is left: removing while reading may skip
 * some. The heap holds one level per depth, the C stack nothing. */
static int empty_tree(int parent, const char *name)
{
    tree_walk w = {NULL, 0, 0};
    int fd;
    struct stat st;
    int err = open_dir_nofollow(parent, name, &fd, &st);
    if (err == 0)
        err = push_level(&w, &st, name);
    DIR *dir = NULL;
    while (err == 0 && w.depth > 0) {
        if (dir == NULL && (dir = fdopendir(fd)) == NULL) {
            err = errno;
            close(fd);
            break;
        }
        level *cur = &w.levels[w.depth - 1];
        bool removed = false, descended = false;
        struct dirent *entry;
        rewinddir(dir);
        while (err == 0 && (errno = 0, entry = readdir(dir)) != NULL) {
            const char *n = entry->d_name;
            if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                continue;
            if (fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                err = errno == ENOENT ? 0 : errno;
                continue;
            }
            if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dirfd(dir), n, 0) != 0 && errno != ENOENT)
                    err = errno;
                removed = true;
                continue;
            }
            if (unlinkat(dirfd(dir), n, AT_REMOVEDIR) == 0) {
                removed = true;
                continue;
            }
            if (errno == ENOENT)
                continue;
            if (errno != ENOTEMPTY && errno != EEXIST) {
                err = errno;
                continue;
            }
            int child;
            if ((err = open_dir_nofollow(dirfd(dir), n, &child, &st)) != 0) {
                if (err == ENOENT) /* gone meanwhile */
                    err = 0;
                continue;
            }
            if ((err = push_level(&w, &st, n)) != 0) {
                close(child);
                break;
            }
            closedir(dir);
            dir = NULL;
            fd = child;
            descended = true;
            break;
        }
        if (err == 0 && !descended && entry == NULL && errno != 0)
            err = errno;
        if (err != 0 || descended)
            continue;
        cur = &w.levels[w.depth - 1];
        if (removed && ++cur->passes < MAX_PASSES)
            continue; /* read it once more: it may have filled up again */
        /* Empty (or refilling faster than we remove): up a level. */
        if (w.depth == 1) {
            w.depth = 0;
            break;
        }
        int up = openat(dirfd(dir), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (up < 0) {
            err = errno;
            break;
        }
        const level *above = &w.levels[w.depth - 2];
        if (fstat(up, &st) != 0 || st.st_dev != above->dev || st.st_ino != above->ino) {
            err = CHANGED; /* moved meanwhile: ".." is not where we came from */
            close(up);
            break;
        }
        closedir(dir);
        dir = NULL;
        fd = up;
        if (unlinkat(fd, cur->name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
            err = errno;
            close(fd);
            break;
        }
        w.depth--;
    }
    if (dir != NULL)
        closedir(dir);
    free(w.levels);
    return err;
}

/* In-kernel copy where the file systems allow it (also reflinks), else
 * read/write through buf; either way continues at the current offsets.
 * The end is always confirmed by read(): copy_file_range() reports 0 bytes
 * for files whose size the kernel does not know, such as those in /proc. */
static int copy_data(int in, int out, char *buf, size_t size)
{
    bool in_kernel = true;
    for (;;) {
        ssize_t n;
        if (in_kernel) {
            n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
            if (n == 0 || (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                                     errno == EOPNOTSUPP))) {
                in_kernel = false;
                continue;
            }
        } else {
            n = read(in, buf, size);
            int err = n > 0 ? mig_write_all(out, buf, (size_t)n) : 0;
            if (err != 0)
                return err;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : 0;
    }
}

typedef struct copy_source {
    int in;
    char *buf;
} copy_source;

static int fill_copy(int out, void *ctx)
{
    const copy_source *src = ctx;
    return copy_data(src->in, out, src->buf, COPY_BUFFER);
}

/* chmod of the entry open as t->fd (O_PATH, not a link), as it is now:
 * fchmodat2 refuses a link swapped in under the name; without it (before
 * Linux 6.6) the descriptor itself is changed through /proc. */
static int chmod_target(const target *t, mode_t mode)
{
    if (syscall(SYS_fchmodat2, t->dir, t->name, mode, AT_SYMLINK_NOFOLLOW) == 0) {
        struct stat now;
        if (fstat(t->fd, &now) == 0 && same_file(&now, &t->st))
            return 0;
        return CHANGED; /* another file was moved in: it got the mode, inside */
    }
    if (errno != ENOSYS && errno != EPERM)
        return errno == EOPNOTSUPP ? ELOOP : errno;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
    return chmod(proc, mode) != 0 ? errno : 0;
}

void mig_path_normalize(const char *path, char *out)
{
    size_t len = 0, pos = 0, n;
    const char *name;
    while (next_component(path, &pos, &name, &n)) {
        if (n == 1 && name[0] == '.')
            continue;
        if (n == 2 && name[0] == '.' && name[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, name, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
}

/* ---- The real files, for the rehearsal's view -------------------------------- */

/* Whether the first len bytes of path (a resolver's out: "" is "/") lie in
 * an allowed root (or are one). */
static bool in_roots(const mig_fsenv *env, const char *path, size_t len)
{
    for (const char *const *root = env->roots; root != NULL && *root != NULL; root++) {
        size_t n = root_length(*root);
        if (len >= n && memcmp(path, *root, n) == 0 && (len == n || path[n] == '/'))
            return true;
    }
    return false;
}

static bool is_a_root(const mig_fsenv *env, const char *path, size_t len)
{
    for (const char *const *root = env->roots; root != NULL && *root != NULL; root++) {
        size_t n = root_length(*root);
        if (len == n && memcmp(path, *root, n) == 0)
            return true;
    }
    return false;
}

/* Resolves a symlink-free absolute path of the real files for the view,
 * the final component not followed. Above the roots, by name (nothing is
 * done there); inside them, through the confined resolution, so that a
 * component swapped for a link since the view looked at it cannot lead
 * out. *r is malloc'd; release with disk_done(). */
static int disk_locate(const mig_fsenv *env, const char *path, resolver **r, target *t)
{
    *t = (target){.dir = -1, .fd = -1};
    *r = malloc(sizeof **r);
    if (*r == NULL)
        return ENOMEM;
    t->r = *r;
    if (snprintf((*r)->path, PATH_MAX, "%s", path) >= PATH_MAX)
        return ENAMETOOLONG;
    int err = resolve_target(env, *r, KEEP_FINAL, t);
    if (err == 0 && t->fd < 0)
        err = t->parent_err != 0 ? t->parent_err : ENOENT;
    return err;
}

static void disk_done(resolver *r, target *t)
{
    target_release(t);
    free(r);
}

int mig_fs_disk_lstat(const mig_fsenv *env, const char *path, struct stat *st, char *link,
                      size_t link_size)
{
    ssize_t n = 0;
    int err = 0;
    if (!in_roots(env, path, strcmp(path, "/") == 0 ? 0 : strlen(path))) {
        if (lstat(path, st) != 0)
            return errno;
        if (S_ISLNK(st->st_mode) && (n = readlink(path, link, link_size)) < 0)
            return errno;
    } else {
        resolver *r;
        target t;
        err = disk_locate(env, path, &r, &t);
        if (err == 0) {
            *st = t.st;
            if (S_ISLNK(st->st_mode) && (n = readlinkat(t.fd, "", link, link_size)) < 0)
                err = errno;
        }
        disk_done(r, &t);
    }
    if (err == 0 && S_ISLNK(st->st_mode)) {
        if ((size_t)n >= link_size)
            return ENAMETOOLONG;
        link[n] = '\0';
    }
    return err;
}

int mig_fs_disk_read(const mig_fsenv *env, const char *path, size_t max, char **out, size_t *len)
{
    resolver *r;
    target t;
    int in = -1;
    struct stat st;
    *out = NULL;
    int err = disk_locate(env, path, &r, &t);
    if (err == 0)
        err = open_file(&t, &in, &st);
    disk_done(r, &t);
    if (err != 0)
        return err;
    if ((uintmax_t)st.st_size > max) {
        close(in);
        return EFBIG;
    }
    char *buf = malloc(max + 1 < (size_t)st.st_size + 4097 ? max + 1 : (size_t)st.st_size + 4097);
    size_t room = max + 1 < (size_t)st.st_size + 4097 ? max + 1 : (size_t)st.st_size + 4097;
    off_t size;
    if (buf == NULL) {
        close(in);
        return ENOMEM;
    }
    if ((err = read_into(in, &st, buf, room, len, &size)) == 0 && *len == room)
        err = EFBIG; /* grew past what we read: not a diff we can show */
    if (err != 0) {
        free(buf);
        return err;
    }
    *out = buf;
    return 0;
}

/* Calls fn for each name in the real directory path (no "." or ".."),
 * until it returns true. */
static int disk_each_name(const mig_fsenv *env, const char *path,
                          bool (*fn)(void *ctx, const char *name), void *ctx)
{
    resolver *r;
    target t;
    int err = disk_locate(env, path, &r, &t);
    DIR *dir = NULL;
    if (err == 0 && !S_ISDIR(t.st.st_mode))
        err = ENOTDIR;
    if (err == 0) {
        int fd = openat(t.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
            err = errno;
            if (fd >= 0)
                close(fd);
        }
    }
    disk_done(r, &t);
    for (struct dirent *e; dir != NULL && (errno = 0, e = readdir(dir)) != NULL;) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && fn(ctx, e->d_name))
            break;
    }
    if (dir != NULL)
        closedir(dir);
    return err;
}

/* ---- The rehearsal's view: resolution -------------------------------------- */

/* What a path resolved to in the view: the counterpart of target. */
typedef struct vtarget {
    resolver *r;          /* r->out: the resolved path ("" for "/") */
    mig_vnode *dir;       /* the directory holding name (the last one that exists) */
    mig_vnode *node;      /* the entry; NULL when missing */
    /* "file/." (or "file/.."... back to it): node is NULL, as walk() has
     * no descriptor of it, but the name is taken by this non-directory,
     * which the *at() calls on (dir, name) then meet: EEXIST for
     * symlinkat, replaced by renameat. */
    mig_vnode *blocker;
    char name[NAME_MAX + 1];
    bool is_root;
    bool dir_wanted;
    int parent_err;
} vtarget;

/* out without its last k components. */
static size_t strip_components(const char *out, size_t len, int k)
{
    while (k-- > 0) {
        while (len > 0 && out[len - 1] != '/')
            len--;
        if (len > 0)
            len--;
    }
    return len;
}

/* The walk of walk(), over the view's nodes instead of descriptors: the
 * same components, links spliced the same way, the same answers. */
static int view_walk(const mig_fsenv *env, resolver *r, link_mode how, vtarget *t)
{
    mig_view *v = env->view;
    mig_vnode *cur = mig_view_root(v);
    *t = (vtarget){.r = r};
    r->links = 0;
    memcpy(r->rest, r->path, strlen(r->path) + 1);
    r->out_len = 0;
    r->out[0] = '\0';
    r->missing = 0;
    r->missing_err = 0;
    bool ends_dir = true;
    size_t pos = 0, len;
    const char *name;
    bool last;
    int err;
    for (step k; (k = next_step(r, &pos, &name, &len, &last, &t->dir_wanted)) != STEP_END;) {
        ends_dir = last;
        if (k == STEP_DOT)
            continue;
        if (k == STEP_DOTDOT) {
            if (r->missing > 0) {
                pop_component(r);
                r->missing--;
            } else if (r->out_len > 0) {
                pop_component(r);
                cur = cur->parent;
            }
            continue;
        }
        ends_dir = false;
        if ((err = push_component(r, name, len)) != 0)
            return err;
        if (r->missing > 0) {
            r->missing++;
            continue;
        }
        mig_vnode *child;
        if ((err = mig_view_child(v, env, cur, r->out + r->out_len - len, &child)) != 0)
            return err;
        if (child == NULL) {
            r->missing = 1;
            r->missing_err = ENOENT;
            continue;
        }
        if (child->kind == MIG_VN_LINK && !(last && how == KEEP_FINAL)) {
            size_t n = strlen(child->link);
            if (n >= PATH_MAX)
                return ENAMETOOLONG;
            memcpy(r->link, child->link, n);
            if ((err = splice_link(r, &pos, (ssize_t)n)) != 0)
                return err;
            if (r->link[0] == '/')
                cur = mig_view_root(v);
            ends_dir = true; /* unless the target names more */
            continue;
        }
        if (last) {
            t->node = child;
            break;
        }
        if (child->kind == MIG_VN_DIR) {
            cur = child;
            continue;
        }
        r->missing = 1;
        r->missing_err = ENOTDIR;
        t->blocker = child;
    }
    if (r->missing != 1 || r->missing_err != ENOTDIR)
        t->blocker = NULL;
    size_t holder;
    /* An allowed root named as the last component is the root itself, as
     * walk() makes it when it enters one (end_on_directory()). */
    if (!ends_dir && r->missing == 0 && t->node != NULL && t->node->kind == MIG_VN_DIR &&
        is_a_root(env, r->out, r->out_len)) {
        ends_dir = true;
        cur = t->node;
    }
    if (ends_dir && r->missing == 0) {
        t->dir_wanted = true;
        t->node = cur;
        t->dir = cur->parent != NULL ? cur->parent : cur;
        if (is_a_root(env, r->out, r->out_len)) {
            t->is_root = true;
            strcpy(t->name, ".");
            return 0;
        }
        holder = strip_components(r->out, r->out_len, 1);
    } else {
        t->dir = cur;
        if (r->missing > 1)
            t->parent_err = r->missing_err;
        holder = strip_components(r->out, r->out_len, r->missing > 1 ? r->missing : 1);
    }
    if (r->out_len == 0 || !in_roots(env, r->out, holder))
        return OUTSIDE;
    const char *slash = strrchr(r->out, '/');
    strcpy(t->name, slash != NULL ? slash + 1 : r->out);
    return 0;
}

static int view_locate(lua_State *L, target *t, link_mode how, vtarget *vt)
{
    return view_walk(fs_env(L), t->r, how, vt);
}

static bool has_id(const mig_vnode *n)
{
    return n != NULL && (n->dev != 0 || n->ino != 0);
}

static bool node_is(const mig_vnode *n, dev_t dev, ino_t ino)
{
    return n != NULL && has_id(n) && n->dev == dev && n->ino == ino;
}

static bool stat_is(const char *path, const mig_vnode *n)
{
    struct stat st;
    return has_id(n) && stat(path, &st) == 0 && node_is(n, st.st_dev, st.st_ino);
}

/* protected_target() for the view: path is the entry's resolved path, dir
 * the node holding it, node the entry or NULL. By the same identities
 * (those of the real entries the nodes mirror) and the same spellings. */
static bool view_protected(const mig_fsenv *env, const char *path, const mig_vnode *dir,
                           const mig_vnode *node, const char *name, bool ancestors)
{
    bool is_dir = node != NULL && node->kind == MIG_VN_DIR;
    const mig_protection *p = env->protection;
    if (p != NULL && node_is(dir, p->dir.dev, p->dir.ino)) {
        if (strncmp(name, p->temp_prefix, strlen(p->temp_prefix)) == 0)
            return true;
        for (const char *const *n = p->names; *n != NULL; n++)
            if (strcmp(name, *n) == 0)
                return true;
    }
    for (size_t i = 0; p != NULL && i < p->n_files; i++)
        if (node_is(node, p->files[i].dev, p->files[i].ino))
            return true;
    for (size_t i = 0; p != NULL && ancestors && is_dir && i < p->n_ancestors; i++)
        if (node_is(node, p->ancestors[i].dev, p->ancestors[i].ino))
            return true;
    size_t plen = strlen(path);
    size_t parent_len = strip_components(path, plen, 1);
    for (const char *const *pp = env->protected_paths; pp != NULL && *pp != NULL; pp++) {
        const char *slash = strrchr(*pp, '/');
        if (slash == NULL)
            continue;
        const char *base = slash + 1;
        size_t dlen = (size_t)(slash - *pp);
        bool same_name = strcmp(name, base) == 0 || is_temp_name(name, base);
        if (strcmp(path, *pp) == 0 || stat_is(*pp, node))
            return true;
        if (same_name && dlen == parent_len && memcmp(*pp, path, dlen) == 0)
            return true;
        char pdir[PATH_MAX];
        if (dlen >= sizeof pdir)
            continue;
        memcpy(pdir, *pp, dlen);
        pdir[dlen] = '\0';
        if (same_name && stat_is(dlen > 0 ? pdir : "/", dir))
            return true;
        if (!ancestors || !is_dir)
            continue;
        if (plen == 0 || (strncmp(*pp, path, plen) == 0 && (*pp)[plen] == '/'))
            return true;
        /* Each directory on the protected path, up to "/", by identity. */
        for (;;) {
            if (stat_is(pdir[0] ? pdir : "/", node))
                return true;
            char *up = strrchr(pdir, '/');
            if (up == NULL || pdir[0] == '\0')
                break;
            *up = '\0';
        }
    }
    return false;
}

static bool vt_protected(const mig_fsenv *env, const vtarget *t, bool ancestors)
{
    return view_protected(env, t->r->out, t->dir, t->node, t->name, ancestors);
}

/* ---- The rehearsal's view: acting ------------------------------------------- */

static const char *node_type(const mig_vnode *n)
{
    return n->kind == MIG_VN_DIR ? "dir" : n->kind == MIG_VN_LINK ? "link" : "file";
}

static const char *shown_path(const char *out)
{
    return out[0] != '\0' ? out : "/";
}

/* want_file() for the view. */
static int view_want_file(const vtarget *t)
{
    if (t->node == NULL)
        return t->parent_err != 0 ? t->parent_err : ENOENT;
    if (t->node->kind == MIG_VN_DIR)
        return EISDIR;
    if (t->node->kind != MIG_VN_FILE)
        return NOT_REGULAR;
    return t->dir_wanted ? ENOTDIR : 0;
}

/* want_new_file() for the view. */
static int view_want_new_file(const mig_fsenv *env, const vtarget *t)
{
    if (t->parent_err != 0)
        return t->parent_err;
    if (t->is_root || (t->node != NULL && t->node->kind == MIG_VN_DIR) || t->dir_wanted)
        return EISDIR;
    return vt_protected(env, t, false) ? PROTECTED : 0;
}

/* Gives the file at t (made if missing) new content: a blob, or the real
 * file at disk (fs.copy of one the view has not changed); from: the copy's
 * source. Journaled as created or modified. */
static int view_set_file(const mig_fsenv *env, vtarget *t, mig_blob *blob, const char *disk,
                         uint64_t size, int mode, const char *from)
{
    mig_view *v = env->view;
    mig_vnode *n = t->node != NULL && t->node->kind == MIG_VN_FILE ? t->node : NULL;
    /* What the real write replaces (its mode carries over): the entry, or
     * the non-directory in the way of "file/.". */
    const mig_vnode *old = t->node != NULL ? t->node : t->blocker;
    if (mode < 0)
        mode = old != NULL && old->kind != MIG_VN_LINK ? (int)(old->mode & 01777)
                                                       : (int)(0644 & ~mig_view_umask(v));
    if (n == NULL && old != NULL && old->kind == MIG_VN_FILE) {
        n = (mig_vnode *)old;
        t->node = n;
    }
    mig_vchange c = {
        .kind = n != NULL ? MIGRATE_CHANGE_MODIFIED : MIGRATE_CHANGE_CREATED,
        .type = "file",
        .path = t->r->out,
        .from = (char *)from,
        .mode = mode,
        .old_mode = n != NULL ? (int)n->mode : -1,
        .size = size,
        .old_blob = n != NULL ? n->blob : NULL,
        .old_disk = n != NULL && n->blob == NULL ? n->backing : NULL,
        .new_blob = blob,
        .new_disk = (char *)disk,
    };
    int err = mig_view_log(v, &c);
    if (err == 0 && n == NULL)
        err = mig_view_put(v, t->dir, t->name, MIG_VN_FILE, &n);
    char *keep = NULL;
    if (err == 0 && disk != NULL && (err = mig_view_set_string(v, &keep, disk)) == 0) {
        mig_view_set_string(v, &n->backing, NULL);
        n->backing = keep;
    } else if (err == 0) {
        mig_view_set_string(v, &n->backing, NULL);
    }
    if (err != 0)
        return err;
    mig_blob *was = n->blob; /* referenced before dropped: blob may be it */
    n->blob = mig_view_blob_ref(blob);
    mig_view_blob_drop(v, was);
    n->size = size;
    n->mode = (unsigned)mode;
    n->mtime = (int64_t)time(NULL);
    /* A new file, as the real write's rename makes: no longer the real
     * one's inode (nor a hard link of anything). */
    n->dev = 0;
    n->ino = 0;
    t->node = n;
    return 0;
}

static int view_write(const mig_fsenv *env, vtarget *t, const char *data, size_t len, int mode)
{
    int err = view_want_new_file(env, t);
    mig_blob *blob = err == 0 ? mig_view_blob(env->view, data, len, &err) : NULL;
    if (err == 0)
        err = view_set_file(env, t, blob, NULL, len, mode, NULL);
    mig_view_blob_drop(env->view, blob);
    return err;
}

/* fs.copy in the view: the destination shares the source's bytes. */
static int view_copy(const mig_fsenv *env, vtarget *src, vtarget *dst, int *side)
{
    *side = 1;
    int err = view_want_file(src);
    if (err != 0)
        return err;
    *side = 2;
    if ((err = view_want_new_file(env, dst)) != 0)
        return err;
    mig_vnode *s = src->node;
    if (dst->node == s || dst->blocker == s)
        return 0; /* onto itself ("f", "f/."): the same bytes and mode */
    int mode = (int)(s->mode & 07777 & ~SETID_BITS);
    return view_set_file(env, dst, s->blob, s->blob == NULL ? s->backing : NULL,
                         s->blob != NULL ? s->blob->len : s->size, mode,
                         shown_path(src->r->out));
}

typedef struct unhidden {
    const mig_vnode *dir;
    bool found;
} unhidden;

static bool note_unhidden(void *ctx, const char *name)
{
    unhidden *u = ctx;
    for (size_t i = 0; i < u->dir->nkids; i++)
        if (strcmp(u->dir->kids[i]->name, name) == 0)
            return false; /* its node decides */
    u->found = true;
    return true;
}

/* Whether a directory of the view holds anything. */
static int view_is_empty(const mig_fsenv *env, const mig_vnode *dir, bool *empty)
{
    for (size_t i = 0; i < dir->nkids; i++)
        if (dir->kids[i]->kind != MIG_VN_GONE) {
            *empty = false;
            return 0;
        }
    unhidden u = {dir, false};
    int err = dir->backing != NULL ? disk_each_name(env, dir->backing, note_unhidden, &u) : 0;
    *empty = !u.found;
    return err;
}

static int view_remove(const mig_fsenv *env, vtarget *t, bool tree)
{
    mig_vnode *n = t->node;
    if (n == NULL)
        return t->parent_err == ENOTDIR ? ENOTDIR : 0;
    if (vt_protected(env, t, true))
        return PROTECTED;
    if (t->is_root)
        return EBUSY;
    bool is_dir = n->kind == MIG_VN_DIR;
    if (t->dir_wanted && !is_dir)
        return ENOTDIR;
    if (is_dir && !tree) {
        bool empty;
        int err = view_is_empty(env, n, &empty);
        if (err != 0)
            return err;
        if (!empty)
            return ENOTEMPTY;
    }
    mig_vchange c = {.kind = MIGRATE_CHANGE_REMOVED, .type = node_type(n), .path = t->r->out,
                     .mode = -1, .old_mode = -1};
    int err = mig_view_log(env->view, &c);
    return err != 0 ? err : mig_view_remove(env->view, n);
}

/* The device a node lives on: its own, or the nearest mirrored ancestor's. */
static dev_t node_dev(const mig_vnode *n)
{
    while (n != NULL && !has_id(n))
        n = n->parent;
    return n != NULL ? n->dev : 0;
}

/* rename(2)'s rules, on the view. */
static int view_rename(const mig_fsenv *env, vtarget *src, vtarget *dst)
{
    /* renameat() acts on the names: "file/." names file. */
    mig_vnode *s = src->node != NULL ? src->node : src->blocker;
    mig_vnode *d = dst->node != NULL ? dst->node : dst->blocker;
    if (src->parent_err != 0 || dst->parent_err != 0)
        return src->parent_err != 0 ? src->parent_err : dst->parent_err;
    if (s == NULL)
        return ENOENT;
    bool s_dir = s->kind == MIG_VN_DIR;
    if (s == d || (d != NULL && has_id(s) && node_is(d, s->dev, s->ino)))
        return 0; /* the same file (or two hard links of it): rename(2) does nothing */
    for (const mig_vnode *up = dst->dir; s_dir && up != NULL; up = up->parent)
        if (up == s)
            return EINVAL; /* into itself */
    for (const mig_vnode *up = src->dir; d != NULL && up != NULL; up = up->parent)
        if (up == d)
            return ENOTEMPTY; /* over a directory it lies in (as Linux checks first) */
    if (d != NULL && s_dir && d->kind != MIG_VN_DIR)
        return ENOTDIR;
    if (d != NULL && !s_dir && d->kind == MIG_VN_DIR)
        return EISDIR;
    if (d != NULL && s_dir) {
        bool empty;
        int err = view_is_empty(env, d, &empty);
        if (err != 0)
            return err;
        if (!empty)
            return ENOTEMPTY;
    }
    if (node_dev(s) != node_dev(dst->dir))
        return EXDEV;
    mig_vchange c = {.kind = MIGRATE_CHANGE_RENAMED, .type = node_type(s), .path = dst->r->out,
                     .from = (char *)shown_path(src->r->out), .mode = -1, .old_mode = -1};
    int err = mig_view_log(env->view, &c);
    return err != 0 ? err : mig_view_move(env->view, s, dst->dir, dst->name);
}

/* One step of mkdir -p in the view, as mkdir_step() does on disk. */
static int view_mkdir_step(const mig_fsenv *env, vtarget *t, mode_t mode, bool *done)
{
    *done = false;
    resolver *r = t->r;
    if (t->node != NULL) {
        *done = true;
        return t->node->kind == MIG_VN_DIR ? 0 : ENOTDIR;
    }
    if (r->missing_err == ENOTDIR)
        return ENOTDIR;
    size_t end = strip_components(r->out, r->out_len, r->missing - 1);
    size_t start = end;
    while (start > 0 && r->out[start - 1] != '/')
        start--;
    if (end - start > NAME_MAX)
        return ENAMETOOLONG;
    char name[NAME_MAX + 1];
    memcpy(name, r->out + start, end - start);
    name[end - start] = '\0';
    char saved = r->out[end];
    r->out[end] = '\0';
    int err = view_protected(env, r->out, t->dir, NULL, name, false) ? PROTECTED : 0;
    mig_vnode *n = NULL;
    mig_vchange c = {.kind = MIGRATE_CHANGE_CREATED, .type = "dir", .path = r->out,
                     .mode = (int)(mode & ~mig_view_umask(env->view) & 07777), .old_mode = -1};
    if (err == 0)
        err = mig_view_log(env->view, &c);
    r->out[end] = saved;
    if (err == 0 && (err = mig_view_put(env->view, t->dir, name, MIG_VN_DIR, &n)) == 0) {
        n->mode = (unsigned)c.mode;
        n->size = 4096;
    }
    return err;
}

static int view_symlink(const mig_fsenv *env, const char *text, vtarget *link, int *side)
{
    /* Where it would point must resolve, as check_link_target() asks. */
    resolver *r = malloc(sizeof *r);
    if (r == NULL)
        return ENOMEM;
    const char *dir = link->r->out;
    const char *slash = strrchr(dir, '/');
    size_t dlen = slash == NULL ? 0 : (size_t)(slash - dir);
    int n = text[0] == '/' ? snprintf(r->path, PATH_MAX, "%s", text)
                           : snprintf(r->path, PATH_MAX, "%.*s/%s", (int)dlen, dir, text);
    vtarget pointee;
    int err = n < 0 || n >= PATH_MAX ? ENAMETOOLONG : view_walk(env, r, FOLLOW, &pointee);
    free(r);
    *side = 1;
    if (err != 0)
        return err;
    *side = 2;
    if (link->parent_err != 0)
        return link->parent_err;
    if (link->is_root || link->node != NULL)
        return EEXIST;
    if (link->dir_wanted)
        return ENOENT;
    if (vt_protected(env, link, false))
        return PROTECTED;
    if (link->blocker != NULL)
        return EEXIST; /* what symlinkat() says of the name "file/." names */
    mig_vchange c = {.kind = MIGRATE_CHANGE_CREATED, .type = "link", .path = link->r->out,
                     .target = (char *)text, .mode = -1, .old_mode = -1};
    mig_vnode *made;
    if ((err = mig_view_log(env->view, &c)) != 0 ||
        (err = mig_view_put(env->view, link->dir, link->name, MIG_VN_LINK, &made)) != 0)
        return err;
    made->mode = 0777;
    made->size = strlen(text);
    return mig_view_set_string(env->view, &made->link, text);
}

static int view_chmod(const mig_fsenv *env, vtarget *t, mode_t mode)
{
    mig_vnode *n = t->node;
    if (n == NULL)
        return t->parent_err != 0 ? t->parent_err : ENOENT;
    if (vt_protected(env, t, true))
        return PROTECTED;
    if (n->mode == mode)
        return 0;
    mig_vchange c = {.kind = MIGRATE_CHANGE_MODE, .type = node_type(n),
                     .path = (char *)shown_path(t->r->out), .mode = (int)mode,
                     .old_mode = (int)n->mode};
    int err = mig_view_log(env->view, &c);
    if (err == 0)
        n->mode = mode;
    return err;
}

static int list_names(lua_State *L, target *t, listing *ls, link_mode how);

/* fs.list in the view: the real directory's names (read as fs.list reads
 * them, into Lua memory) merged with the nodes', sorted. */
static int view_list(lua_State *L, target *t, vtarget *vt)
{
    mig_vnode *dir = vt->node;
    listing ls = {0};
    if (dir->backing != NULL) {
        if (snprintf(t->r->path, PATH_MAX, "%s", dir->backing) >= PATH_MAX)
            return ENAMETOOLONG;
        int err = list_names(L, t, &ls, KEEP_FINAL);
        if (err != 0)
            return err;
    }
    lua_createtable(L, (int)(ls.count < INT_MAX ? ls.count : INT_MAX), 0);
    size_t i = 0, k = 0;
    lua_Integer at = 1;
    while (i < ls.count || k < dir->nkids) {
        int c = i == ls.count      ? 1
                : k == dir->nkids ? -1
                                  : strcmp(ls.names[i], dir->kids[k]->name);
        const char *name = c < 0 ? ls.names[i] : dir->kids[k]->name;
        bool shown = c < 0 || dir->kids[k]->kind != MIG_VN_GONE;
        if (c <= 0)
            i++;
        if (c >= 0)
            k++;
        if (shown) {
            lua_pushstring(L, name);
            lua_rawseti(L, -2, at++);
        }
    }
    return 0;
}

/* fs.stat's fields for a node. */
static void view_stat_of(const mig_vnode *n, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_mode = (mode_t)n->mode | (n->kind == MIG_VN_DIR    ? S_IFDIR
                                     : n->kind == MIG_VN_LINK ? S_IFLNK
                                     : n->kind == MIG_VN_FILE ? S_IFREG
                                                              : S_IFIFO);
    st->st_size = (off_t)(n->kind == MIG_VN_FILE && n->blob != NULL ? n->blob->len : n->size);
    st->st_mtime = (time_t)n->mtime;
}

/* ---- The functions scripts call ------------------------------------------ */

/* Each one: arguments checked and Lua memory taken (prepare), then the
 * targets located and acted on in plain C, then the descriptors released,
 * then (only then) an error raised. */

/* Reads the file t's path names (how: whether a final link is followed). */
static int read_path(lua_State *L, target *t, link_mode how)
{
    size_t room = FIRST_READ;
    for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        char *buf = lua_newuserdatauv(L, room, 0);
        size_t got = 0;
        off_t size = 0;
        int in = -1;
        struct stat st;
        int err = locate(L, t, how);
        if (err == 0)
            err = open_file(t, &in, &st);
        target_release(t);
        if (err == 0)
            err = read_into(in, &st, buf, room, &got, &size);
        if (err != 0)
            return path_error(L, "read", 1, err);
        if (got < room) {
            lua_pushlstring(L, buf, got);
            return 1;
        }
        lua_pop(L, 1);
        /* It grew, or stat undercounts it (as /proc does): make room. */
        if (room > SIZE_MAX / 4)
            return path_error(L, "read", 1, EFBIG);
        room = (size_t)size + 1 > 2 * room ? (size_t)size + 1 : 2 * room + 4096;
    }
    return path_error(L, "read", 1, EAGAIN);
}

static int fs_read(lua_State *L)
{
    target t;
    prepare(L, 1, "read", &t);
    if (fs_env(L)->view == NULL)
        return read_path(L, &t, FOLLOW);
    vtarget vt;
    int err = view_locate(L, &t, FOLLOW, &vt);
    if (err == 0)
        err = view_want_file(&vt);
    if (err != 0)
        return path_error(L, "read", 1, err);
    if (vt.node->blob != NULL) {
        lua_pushlstring(L, vt.node->blob->data, vt.node->blob->len);
        return 1;
    }
    /* A file the rehearsal has not changed: the real one's bytes. */
    snprintf(t.r->path, PATH_MAX, "%s", vt.node->backing);
    return read_path(L, &t, KEEP_FINAL);
}

/* Where a new file (fs.write, fs.copy's destination) may go: 0 or why not. */
static int want_new_file(const mig_fsenv *env, const target *t)
{
    if (t->parent_err != 0)
        return t->parent_err;
    if (t->is_root || (t->fd >= 0 && S_ISDIR(t->st.st_mode)) || t->dir_wanted)
        return EISDIR;
    return protected_target(env, t, false) ? PROTECTED : 0;
}

static int fs_write(lua_State *L)
{
    check_writable(L, "write");
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int mode = opt_mode(L, 3, -1);
    target t;
    prepare(L, 1, "write", &t);
    const char *stage = "open";
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        if ((err = view_locate(L, &t, FOLLOW, &vt)) == 0)
            err = view_write(fs_env(L), &vt, data, len, mode);
        if (err != 0)
            return path_error(L, "write", 1, err);
        return 0;
    }
    err = locate(L, &t, FOLLOW);
    if (err == 0)
        err = want_new_file(fs_env(L), &t);
    if (err == 0)
        err = mig_write_atomic_at(t.dir, t.name, data, len, mode, &stage);
    target_release(&t);
    if (err != 0)
        return stage_error(L, "write", 1, stage, err);
    return 0;
}

/* fs.exists, fs.is_file, fs.is_dir: false when missing. */
static int file_type_is(lua_State *L, const char *fn, link_mode how, mode_t type)
{
    target t;
    prepare(L, 1, fn, &t);
    int err;
    bool found;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        err = view_locate(L, &t, how, &vt);
        const mig_vnode *n = vt.node;
        found = err == 0 && n != NULL &&
                (type == 0 || (type == S_IFREG && n->kind == MIG_VN_FILE) ||
                 (type == S_IFDIR && n->kind == MIG_VN_DIR));
        if (found && vt.dir_wanted && n->kind != MIG_VN_DIR)
            found = false;
    } else {
        err = locate(L, &t, how);
        found = err == 0 && t.fd >= 0 && (type == 0 || (t.st.st_mode & S_IFMT) == type);
        if (found && t.dir_wanted && !S_ISDIR(t.st.st_mode))
            found = false;
        target_release(&t);
    }
    if (err != 0)
        return path_error(L, fn, 1, err);
    lua_pushboolean(L, found);
    return 1;
}

static int fs_exists(lua_State *L)
{
    return file_type_is(L, "exists", KEEP_FINAL, 0);
}

static int fs_is_file(lua_State *L)
{
    return file_type_is(L, "is_file", FOLLOW, S_IFREG);
}

static int fs_is_dir(lua_State *L)
{
    return file_type_is(L, "is_dir", FOLLOW, S_IFDIR);
}

static int fs_stat(lua_State *L)
{
    target t;
    prepare(L, 1, "stat", &t);
    int err;
    bool found;
    struct stat st;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        err = view_locate(L, &t, KEEP_FINAL, &vt);
        found = err == 0 && vt.node != NULL;
        if (found)
            view_stat_of(vt.node, &st);
    } else {
        err = locate(L, &t, KEEP_FINAL);
        found = err == 0 && t.fd >= 0;
        st = t.st;
        target_release(&t);
    }
    if (err != 0)
        return path_error(L, "stat", 1, err);
    if (!found) {
        lua_pushnil(L);
        return 1;
    }
    const char *type = S_ISREG(st.st_mode)   ? "file"
                       : S_ISDIR(st.st_mode) ? "dir"
                       : S_ISLNK(st.st_mode) ? "link"
                                             : "other";
    lua_createtable(L, 0, 4);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/* Locates the directory and reads its names into ls. */
static int list_once(lua_State *L, target *t, listing *ls, link_mode how)
{
    int err = locate(L, t, how);
    if (err == 0)
        err = read_names(t, ls);
    target_release(t);
    return err;
}

/* The sorted names of the directory t's path names, in *ls (a userdata
 * left on the stack): counts the entries, allocates for them (with room
 * for a few more), reads them again; a directory that grew in between is
 * read once more. 0 or an error code. */
static int list_names(lua_State *L, target *t, listing *ls, link_mode how)
{
    for (int attempt = 0; attempt < LIST_ATTEMPTS; attempt++) {
        ls->names = NULL;
        int err = list_once(L, t, ls, how);
        if (err != 0)
            return err;
        ls->max_names = ls->count + ls->count / 8 + 16;
        ls->max_bytes = ls->used + ls->used / 8 + 1024;
        if (ls->max_names > (SIZE_MAX - ls->max_bytes) / sizeof(char *))
            return ENOMEM;
        ls->names = lua_newuserdatauv(L, ls->max_names * sizeof(char *) + ls->max_bytes, 0);
        ls->bytes = (char *)(ls->names + ls->max_names);
        if ((err = list_once(L, t, ls, how)) != 0)
            return err;
        if (!ls->overflow)
            break;
        lua_pop(L, 1);
    }
    if (ls->overflow)
        return EAGAIN;
    qsort(ls->names, ls->count, sizeof(char *), compare_names);
    return 0;
}

static int fs_list(lua_State *L)
{
    target t;
    prepare(L, 1, "list", &t);
    listing ls = {0};
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        if ((err = view_locate(L, &t, FOLLOW, &vt)) == 0 && vt.node == NULL)
            err = vt.parent_err != 0 ? vt.parent_err : ENOENT;
        if (err == 0 && vt.node->kind != MIG_VN_DIR)
            err = ENOTDIR;
        if (err == 0)
            err = view_list(L, &t, &vt);
        if (err != 0)
            return path_error(L, "list", 1, err);
        return 1;
    }
    if ((err = list_names(L, &t, &ls, FOLLOW)) != 0)
        return path_error(L, "list", 1, err);
    lua_createtable(L, (int)(ls.count < INT_MAX ? ls.count : INT_MAX), 0);
    for (size_t i = 0; i < ls.count; i++) {
        lua_pushstring(L, ls.names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* One step of mkdir -p: 0 when t is a directory (*done), else creates the
 * first missing component below the last existing one. */
static int mkdir_step(const mig_fsenv *env, target *t, mode_t mode, bool *done)
{
    *done = false;
    resolver *r = t->r;
    if (t->fd >= 0) {
        *done = true;
        return S_ISDIR(t->st.st_mode) ? 0 : ENOTDIR;
    }
    /* Something not a directory stands where one is needed ("file/x",
     * "file/."): mkdir there would find it, forever. */
    if (r->missing_err == ENOTDIR)
        return ENOTDIR;
    /* The first missing component: skip back over the others. */
    size_t end = r->out_len;
    for (int i = 1; i < r->missing; i++) {
        while (end > 0 && r->out[end - 1] != '/')
            end--;
        end--;
    }
    size_t start = end;
    while (start > 0 && r->out[start - 1] != '/')
        start--;
    if (end - start > NAME_MAX)
        return ENAMETOOLONG;
    char name[NAME_MAX + 1];
    memcpy(name, r->out + start, end - start);
    name[end - start] = '\0';
    /* The directory to make the state's place taken, by any spelling. */
    target probe = *t;
    memcpy(probe.name, name, end - start + 1);
    if (protected_target(env, &probe, false))
        return PROTECTED;
    if (mkdirat(t->dir, name, mode) != 0)
        return errno == EEXIST ? 0 : errno; /* made meanwhile: look again */
    /* A new directory is an entry in its parent: sync that, or a crash may
     * forget a directory a migration reported as made. */
    return mig_fsync_new_dir(t->dir);
}

static int fs_mkdir(lua_State *L)
{
    check_writable(L, "mkdir");
    int mode = opt_mode(L, 2, 0755);
    target t;
    prepare(L, 1, "mkdir", &t);
    int err = 0;
    bool done = false;
    /* Each round makes one directory, or finds that another process did;
     * a round is bounded by the components of the path and its links. */
    for (int round = 0; err == 0 && !done && round < PATH_MAX / 2; round++) {
        if (fs_env(L)->view != NULL) {
            vtarget vt;
            if ((err = view_locate(L, &t, FOLLOW, &vt)) == 0)
                err = view_mkdir_step(fs_env(L), &vt, (mode_t)mode, &done);
            continue;
        }
        err = locate(L, &t, FOLLOW);
        if (err == 0)
            err = mkdir_step(fs_env(L), &t, (mode_t)mode, &done);
        target_release(&t);
    }
    if (err == 0 && !done)
        err = EAGAIN;
    if (err != 0)
        return path_error(L, "mkdir", 1, err);
    return 0;
}

/* fs.remove and fs.remove_tree: a missing path is no error; a directory
 * must be empty for fs.remove, and fs.remove_tree empties it first. */
static int remove_target(const mig_fsenv *env, target *t, bool tree, const char **stage)
{
    if (t->fd < 0)
        return t->parent_err == ENOTDIR ? ENOTDIR : 0;
    if (protected_target(env, t, true))
        return PROTECTED;
    if (t->is_root)
        return EBUSY;
    bool is_dir = S_ISDIR(t->st.st_mode);
    if (t->dir_wanted && !is_dir)
        return ENOTDIR;
    int err = 0;
    if (is_dir && tree)
        err = empty_tree(t->dir, t->name);
    if (err == 0 && unlinkat(t->dir, t->name, is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT)
        err = errno;
    if (err == 0 && (err = mig_fsync_dirfd(t->dir)) != 0)
        *stage = "fsync dir";
    return err;
}

static int remove_path(lua_State *L, const char *fn, bool tree)
{
    check_writable(L, fn);
    target t;
    prepare(L, 1, fn, &t);
    const char *stage = "open";
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        if ((err = view_locate(L, &t, KEEP_FINAL, &vt)) == 0)
            err = view_remove(fs_env(L), &vt, tree);
    } else {
        err = locate(L, &t, KEEP_FINAL);
        if (err == 0)
            err = remove_target(fs_env(L), &t, tree, &stage);
        target_release(&t);
    }
    if (err != 0)
        return stage_error(L, fn, 1, stage, err);
    return 0;
}

static int fs_remove(lua_State *L)
{
    return remove_path(L, "remove", false);
}

static int fs_remove_tree(lua_State *L)
{
    return remove_path(L, "remove_tree", true);
}

/* What may be renamed (side: which argument the refusal is about). */
static int rename_allowed(const mig_fsenv *env, const target *t)
{
    if (protected_target(env, t, true))
        return PROTECTED;
    return t->is_root ? EBUSY : 0;
}

static int fs_rename(lua_State *L)
{
    check_writable(L, "rename");
    target src, dst;
    prepare(L, 1, "rename", &src);
    prepare(L, 2, "rename", &dst);
    int side = 1;
    int err;
    bool resolved;
    if (fs_env(L)->view != NULL) {
        const mig_fsenv *env = fs_env(L);
        vtarget vs, vd;
        if ((err = view_locate(L, &src, KEEP_FINAL, &vs)) == 0)
            err = vt_protected(env, &vs, true) ? PROTECTED : vs.is_root ? EBUSY : 0;
        if (err == 0) {
            side = 2;
            if ((err = view_locate(L, &dst, KEEP_FINAL, &vd)) == 0)
                err = vt_protected(env, &vd, true) ? PROTECTED : vd.is_root ? EBUSY : 0;
        }
        resolved = err == 0;
        if (resolved)
            err = view_rename(env, &vs, &vd);
        goto done;
    }
    err = locate(L, &src, KEEP_FINAL);
    if (err == 0)
        err = rename_allowed(fs_env(L), &src);
    if (err == 0) {
        side = 2;
        if ((err = locate(L, &dst, KEEP_FINAL)) == 0)
            err = rename_allowed(fs_env(L), &dst);
    }
    resolved = err == 0;
    if (resolved && (src.parent_err != 0 || dst.parent_err != 0))
        err = src.parent_err != 0 ? src.parent_err : dst.parent_err;
    else if (resolved) {
        err = renameat(src.dir, src.name, dst.dir, dst.name) != 0 ? errno : 0;
        /* Both directories changed; sync both so the move survives a crash. */
        if (err == 0 && (err = mig_fsync_dirfd(dst.dir)) == 0)
            err = mig_fsync_dirfd(src.dir);
    }
    target_release(&src);
    target_release(&dst);
done:
    if (!resolved)
        return path_error(L, "rename", side, err);
    if (err == EXDEV)
        return luaL_error(L, "fs.rename: \"%s\" -> \"%s\": the paths are on different file "
                             "systems (use fs.copy, then fs.remove)",
                          lua_tostring(L, 1), lua_tostring(L, 2));
    if (err != 0) {
        char buf[128];
        return luaL_error(L, "fs.rename: \"%s\" -> \"%s\": %s", lua_tostring(L, 1),
                          lua_tostring(L, 2), error_text(err, buf, sizeof buf));
    }
    return 0;
}

/* Copies src over dst atomically, mode kept less setuid/setgid; *side is
 * the argument (1 for src, 2 for dst) the failure is about. */
static int copy_file(lua_State *L, target *src, target *dst, char *buf, const char **stage,
                     int *side)
{
    *stage = "open";
    *side = 1;
    int in = -1;
    struct stat st;
    int err = locate(L, src, FOLLOW);
    if (err == 0)
        err = open_file(src, &in, &st);
    target_release(src);
    if (err != 0)
        return err;
    *side = 2;
    if ((err = locate(L, dst, FOLLOW)) == 0 && (err = want_new_file(fs_env(L), dst)) == 0) {
        copy_source from = {in, buf};
        err = mig_replace_atomic_at(dst->dir, dst->name, fill_copy, &from,
                                    (int)(st.st_mode & 07777 & ~SETID_BITS), true, stage);
    }
    target_release(dst);
    close(in);
    return err;
}

static int fs_copy(lua_State *L)
{
    check_writable(L, "copy");
    target src, dst;
    prepare(L, 1, "copy", &src);
    prepare(L, 2, "copy", &dst);
    const char *stage = "open";
    int side = 1;
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vs, vd;
        if ((err = view_locate(L, &src, FOLLOW, &vs)) == 0 && (err = view_want_file(&vs)) == 0) {
            side = 2;
            if ((err = view_locate(L, &dst, FOLLOW, &vd)) == 0)
                err = view_copy(fs_env(L), &vs, &vd, &side);
        }
    } else {
        char *buf = lua_newuserdatauv(L, COPY_BUFFER, 0);
        err = copy_file(L, &src, &dst, buf, &stage, &side);
    }
    if (err != 0)
        return stage_error(L, "copy", side, stage, err);
    return 0;
}

/* Where the link at `link` (resolved) would point, as the kernel will read
 * it: a relative target is relative to the link's directory. */
static int check_link_target(const mig_fsenv *env, const char *target_text, const target *link,
                             target *pointee)
{
    resolver *r = pointee->r;
    const char *dir = link->r->out;
    const char *slash = strrchr(dir, '/');
    size_t dlen = slash == NULL ? 0 : (size_t)(slash - dir);
    int n = target_text[0] == '/'
                ? snprintf(r->path, PATH_MAX, "%s", target_text)
                : snprintf(r->path, PATH_MAX, "%.*s/%s", (int)dlen, dir, target_text);
    if (n < 0 || n >= PATH_MAX)
        return ENAMETOOLONG;
    int err = resolve_target(env, r, FOLLOW, pointee);
    target_release(pointee);
    return err;
}

static int fs_symlink(lua_State *L)
{
    check_writable(L, "symlink");
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (strlen(text) != len)
        return path_error(L, "symlink", 1, NUL_IN_PATH);
    target link, pointee;
    prepare(L, 2, "symlink", &link);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    pointee = (target){.r = r, .dir = -1, .fd = -1};
    int side = 2;
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vl;
        if ((err = view_locate(L, &link, KEEP_FINAL, &vl)) == 0)
            err = view_symlink(fs_env(L), text, &vl, &side);
        if (err != 0)
            return path_error(L, "symlink", side, err);
        return 0;
    }
    err = locate(L, &link, KEEP_FINAL);
    if (err == 0) {
        side = 1;
        err = check_link_target(fs_env(L), text, &link, &pointee);
    }
    if (err == 0) {
        side = 2;
        if (link.parent_err != 0)
            err = link.parent_err;
        else if (link.is_root || link.fd >= 0)
            err = EEXIST;
        else if (link.dir_wanted)
            err = ENOENT;
        else if (protected_target(fs_env(L), &link, false))
            err = PROTECTED;
    }
    const char *stage = "open";
    if (err == 0) {
        side = 2;
        if (symlinkat(text, link.dir, link.name) != 0)
            err = errno;
        else if ((err = mig_fsync_dirfd(link.dir)) != 0)
            stage = "fsync dir";
    }
    target_release(&link);
    if (err != 0)
        return stage_error(L, "symlink", side, stage, err);
    return 0;
}

static int fs_readlink(lua_State *L)
{
    target t;
    prepare(L, 1, "readlink", &t);
    char *text = lua_newuserdatauv(L, PATH_MAX, 0);
    int err;
    ssize_t n = -1;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        if ((err = view_locate(L, &t, KEEP_FINAL, &vt)) != 0)
            return path_error(L, "readlink", 1, err);
        if (vt.node == NULL || vt.node->kind != MIG_VN_LINK)
            lua_pushnil(L);
        else
            lua_pushstring(L, vt.node->link);
        return 1;
    }
    err = locate(L, &t, KEEP_FINAL);
    if (err == 0 && t.fd >= 0 && S_ISLNK(t.st.st_mode)) {
        n = readlinkat(t.fd, "", text, PATH_MAX);
        if (n < 0)
            err = errno;
        else if (n >= PATH_MAX)
            err = ENAMETOOLONG;
    }
    target_release(&t);
    if (err != 0)
        return path_error(L, "readlink", 1, err);
    if (n < 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, text, (size_t)n);
    return 1;
}

static int fs_chmod(lua_State *L)
{
    check_writable(L, "chmod");
    mode_t mode = check_mode(L, 2);
    target t;
    prepare(L, 1, "chmod", &t);
    int err;
    if (fs_env(L)->view != NULL) {
        vtarget vt;
        if ((err = view_locate(L, &t, FOLLOW, &vt)) == 0)
            err = view_chmod(fs_env(L), &vt, mode);
        if (err != 0)
            return path_error(L, "chmod", 1, err);
        return 0;
    }
    err = locate(L, &t, FOLLOW);
    if (err == 0 && t.fd < 0)
        err = t.parent_err != 0 ? t.parent_err : ENOENT;
    if (err == 0 && protected_target(fs_env(L), &t, true))
        err = PROTECTED;
    if (err == 0)
        err = chmod_target(&t, mode);
    target_release(&t);
    if (err != 0)
        return path_error(L, "chmod", 1, err);
    return 0;
}

/* Only lexical: "~" expanded, ".", ".." and "//" folded. No symlink is
 * resolved and the result is not confined to the roots (nothing is
 * touched); "~/link/.." may name a different directory than the kernel
 * would reach. */
static int fs_expand(lua_State *L)
{
    size_t len;
    const char *given = luaL_checklstring(L, 1, &len);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    int err = strlen(given) != len ? NUL_IN_PATH : expand_into(fs_env(L), given, r->rest);
    if (err != 0)
        return path_error(L, "expand", 1, err);
    mig_path_normalize(r->rest, r->out);
    lua_pushstring(L, r->out);
    return 1;
}

static const luaL_Reg fs_functions[] = {
    {"read", fs_read},
    {"write", fs_write},
    {"exists", fs_exists},
    {"is_file", fs_is_file},
    {"is_dir", fs_is_dir},
    {"stat", fs_stat},
    {"list", fs_list},
    {"mkdir", fs_mkdir},
    {"remove", fs_remove},
    {"remove_tree", fs_remove_tree},
    {"rename", fs_rename},
    {"copy", fs_copy},
    {"symlink", fs_symlink},
    {"readlink", fs_readlink},
    {"chmod", fs_chmod},
    {"expand", fs_expand},
    {NULL, NULL},
};

void mig_open_fs(lua_State *L, mig_fsenv *env)
{
    lua_createtable(L, 0, (int)(sizeof fs_functions / sizeof fs_functions[0] - 1));
    lua_pushlightuserdata(L, env);
    luaL_setfuncs(L, fs_functions, 1);
}
