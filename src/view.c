/* view.c - the rehearsal's copy-on-write view of the allowed roots (SPEC
 * §4.6): a tree of nodes over the real file system. fs.c resolves paths
 * through it and acts on it; this file owns its memory and its journal of
 * changes.
 *
 * A node mirrors one entry. Its children are the entries the rehearsal has
 * looked at or changed; a directory with a `backing` also holds, unseen,
 * every entry of that real directory that has no node yet, and a lookup
 * makes a node for one when it is first asked for (lstat'd through fs.c's
 * confined resolution). A removed entry is a GONE node hiding the real one.
 * A file's bytes are either a blob (written in the view, shared by copies)
 * or the real file at `backing` (looked at or copied, never changed), so
 * neither reading a file nor copying one costs its size.
 *
 * Every byte the view holds (nodes, names, blobs, the journal) is counted
 * against its limit; past it an operation fails with MIG_VIEW_FULL and
 * changes nothing. Nothing here writes to the real file system. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* What malloc keeps beside each block, roughly: counted so that many small
 * nodes cannot slip under the limit. */
#define BLOCK_OVERHEAD 16

struct mig_view {
    size_t limit, used, peak;
    unsigned umask;
    mig_vnode *root;
    mig_vchange *changes;
    size_t nchanges, cap;
    size_t diff_bytes; /* the diffs handed to the report so far: at most limit */
};

/* ---- memory ------------------------------------------------------------- */

static void *take(mig_view *v, size_t n, int *err)
{
    if (n > v->limit || v->used + n + BLOCK_OVERHEAD > v->limit) {
        *err = MIG_VIEW_FULL;
        return NULL;
    }
    size_t *p = malloc(sizeof *p + n);
    if (p == NULL) {
        *err = ENOMEM;
        return NULL;
    }
    *p = n;
    v->used += n + BLOCK_OVERHEAD;
    if (v->used > v->peak)
        v->peak = v->used;
    return p + 1;
}

static void give(mig_view *v, void *q)
{
    if (q == NULL)
        return;
    size_t *p = (size_t *)q - 1;
    v->used -= *p + BLOCK_OVERHEAD;
    free(p);
}

static char *take_string(mig_view *v, const char *s, int *err)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = take(v, n, err);
    return copy ? memcpy(copy, s, n) : NULL;
}

int mig_view_set_string(mig_view *v, char **field, const char *s)
{
    int err = 0;
    char *copy = take_string(v, s, &err);
    if (s != NULL && copy == NULL)
        return err;
    give(v, *field);
    *field = copy;
    return 0;
}

mig_blob *mig_view_blob(mig_view *v, const char *data, size_t len, int *err)
{
    if (len > SIZE_MAX - sizeof(mig_blob)) {
        *err = MIG_VIEW_FULL;
        return NULL;
    }
    mig_blob *b = take(v, sizeof *b + len, err);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = len;
    memcpy(b->data, data, len);
    return b;
}

mig_blob *mig_view_blob_ref(mig_blob *b)
{
    if (b != NULL)
        b->refs++;
    return b;
}

void mig_view_blob_drop(mig_view *v, mig_blob *b)
{
    if (b != NULL && --b->refs == 0)
        give(v, b);
}

/* ---- nodes ---------------------------------------------------------------- */

static void clear_content(mig_view *v, mig_vnode *n);

static void node_free(mig_view *v, mig_vnode *n)
{
    if (n == NULL)
        return;
    clear_content(v, n);
    give(v, n->name);
    give(v, n);
}

/* Drops what a node holds (children, bytes, link, backing), keeping its
 * place and name. */
static void clear_content(mig_view *v, mig_vnode *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        node_free(v, n->kids[i]);
    give(v, n->kids);
    n->kids = NULL;
    n->nkids = n->cap = 0;
    mig_view_blob_drop(v, n->blob);
    n->blob = NULL;
    give(v, n->backing);
    give(v, n->link);
    n->backing = n->link = NULL;
}

static mig_vnode *node_new(mig_view *v, const char *name, int kind, int *err)
{
    mig_vnode *n = take(v, sizeof *n, err);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->name = take_string(v, name, err);
    if (n->name == NULL) {
        give(v, n);
        return NULL;
    }
    return n;
}

static unsigned read_umask(void)
{
    /* The umask cannot be read without changing it, which a thread-safe
     * library must not do; Linux (4.7+) shows it in /proc. */
    FILE *f = fopen("/proc/self/status", "re");
    unsigned mask = 022;
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Umask: %o", &mask) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return mask & 0777;
}

mig_view *mig_view_new(size_t limit)
{
    mig_view *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    v->limit = limit;
    v->umask = read_umask();
    int err = 0;
    v->root = node_new(v, "", MIG_VN_DIR, &err);
    if (v->root != NULL)
        v->root->backing = take_string(v, "/", &err);
    if (v->root == NULL || v->root->backing == NULL) {
        mig_view_free(v);
        return NULL;
    }
    struct stat st;
    if (stat("/", &st) == 0) {
        v->root->dev = st.st_dev;
        v->root->ino = st.st_ino;
        v->root->mode = st.st_mode & 07777;
    }
    return v;
}

static void change_free(mig_view *v, mig_vchange *c);

void mig_view_free(mig_view *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nchanges; i++)
        change_free(v, &v->changes[i]);
    free(v->changes);
    node_free(v, v->root);
    free(v);
}

mig_vnode *mig_view_root(mig_view *v)
{
    return v->root;
}

unsigned mig_view_umask(const mig_view *v)
{
    return v->umask;
}

size_t mig_view_peak(const mig_view *v)
{
    return v->peak;
}

/* The position of name among dir's children (sorted bytewise), or where
 * it would go. */
static size_t find_kid(const mig_vnode *dir, const char *name, bool *found)
{
    size_t lo = 0, hi = dir->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(dir->kids[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Puts n (owned) in dir as its child, replacing one of the same name. */
static int attach(mig_view *v, mig_vnode *dir, mig_vnode *n)
{
    bool found;
    size_t at = find_kid(dir, n->name, &found);
    if (found) {
        node_free(v, dir->kids[at]);
        dir->kids[at] = n;
        n->parent = dir;
        return 0;
    }
    if (dir->nkids == dir->cap) {
        int err = 0;
        size_t cap = dir->cap ? 2 * dir->cap : 4;
        mig_vnode **kids = take(v, cap * sizeof *kids, &err);
        if (kids == NULL)
            return err;
        if (dir->nkids > 0)
            memcpy(kids, dir->kids, dir->nkids * sizeof *kids);
        give(v, dir->kids);
        dir->kids = kids;
        dir->cap = cap;
    }
    memmove(dir->kids + at + 1, dir->kids + at, (dir->nkids - at) * sizeof *dir->kids);
    dir->kids[at] = n;
    dir->nkids++;
    n->parent = dir;
    return 0;
}

/* The disk path of name inside dir's backing: false if too long. */
static bool backing_path(const mig_vnode *dir, const char *name, char out[PATH_MAX])
{
    const char *base = dir->backing;
    int n = snprintf(out, PATH_MAX, "%s/%s", strcmp(base, "/") == 0 ? "" : base, name);
    return n > 0 && n < PATH_MAX;
}

/* A node for the real entry at path (lstat'd as st, link its target). */
static mig_vnode *mirror(mig_view *v, const char *name, const char *path, const struct stat *st,
                         const char *link, int *err)
{
    int kind = S_ISDIR(st->st_mode)   ? MIG_VN_DIR
               : S_ISREG(st->st_mode) ? MIG_VN_FILE
               : S_ISLNK(st->st_mode) ? MIG_VN_LINK
                                      : MIG_VN_OTHER;
    mig_vnode *n = node_new(v, name, kind, err);
    if (n == NULL)
        return NULL;
    n->mode = st->st_mode & 07777;
    n->mtime = (int64_t)st->st_mtime;
    n->size = (uint64_t)st->st_size;
    n->dev = st->st_dev;
    n->ino = st->st_ino;
    if (kind == MIG_VN_LINK)
        n->link = take_string(v, link, err);
    else
        n->backing = take_string(v, path, err);
    if (kind == MIG_VN_LINK ? n->link == NULL : n->backing == NULL) {
        node_free(v, n);
        return NULL;
    }
    return n;
}

int mig_view_child(mig_view *v, const mig_fsenv *env, mig_vnode *dir, const char *name,
                   mig_vnode **out)
{
    *out = NULL;
    bool found;
    size_t at = find_kid(dir, name, &found);
    if (found) {
        if (dir->kids[at]->kind != MIG_VN_GONE)
            *out = dir->kids[at];
        return 0;
    }
    if (dir->kind != MIG_VN_DIR || dir->backing == NULL)
        return 0;
    char path[PATH_MAX], link[PATH_MAX];
    if (!backing_path(dir, name, path))
        return ENAMETOOLONG;
    struct stat st;
    int err = mig_fs_disk_lstat(env, path, &st, link, sizeof link);
    if (err == ENOENT || err == ENOTDIR)
        return 0;
    if (err != 0)
        return err;
    mig_vnode *n = mirror(v, name, path, &st, link, &err);
    if (n == NULL)
        return err;
    if ((err = attach(v, dir, n)) != 0) {
        node_free(v, n);
        return err;
    }
    *out = n;
    return 0;
}

int mig_view_put(mig_view *v, mig_vnode *dir, const char *name, int kind, mig_vnode **out)
{
    int err = 0;
    mig_vnode *n = node_new(v, name, kind, &err);
    if (n == NULL)
        return err;
    n->mtime = (int64_t)time(NULL);
    if ((err = attach(v, dir, n)) != 0) {
        node_free(v, n);
        return err;
    }
    *out = n;
    return 0;
}

/* An entry leaving a directory with a backing leaves a GONE node: a real
 * entry of that name may lie under it (also beneath one the view made in
 * its place). */
static bool hides_real(const mig_vnode *dir, const mig_vnode *n)
{
    (void)n;
    return dir->backing != NULL;
}

int mig_view_remove(mig_view *v, mig_vnode *n)
{
    mig_vnode *dir = n->parent;
    bool found;
    size_t at = find_kid(dir, n->name, &found);
    if (!found)
        return 0;
    if (!hides_real(dir, n)) {
        node_free(v, n);
        memmove(dir->kids + at, dir->kids + at + 1, (dir->nkids - at - 1) * sizeof *dir->kids);
        dir->nkids--;
        return 0;
    }
    clear_content(v, n);
    n->kind = MIG_VN_GONE;
    return 0;
}

int mig_view_move(mig_view *v, mig_vnode *n, mig_vnode *dst_dir, const char *name)
{
    mig_vnode *src_dir = n->parent;
    int err = 0;
    char *new_name = take_string(v, name, &err);
    mig_vnode *gone = NULL;
    if (new_name != NULL && hides_real(src_dir, n))
        gone = node_new(v, n->name, MIG_VN_GONE, &err);
    if (new_name == NULL || (hides_real(src_dir, n) && gone == NULL)) {
        give(v, new_name);
        return err;
    }
    /* The replaced entry at the destination goes; the source's place is
     * left GONE (hiding the real entry) or empty. */
    bool found;
    size_t at = find_kid(src_dir, n->name, &found);
    if (gone != NULL) {
        gone->parent = src_dir;
        gone->dev = n->dev;
        gone->ino = n->ino;
        src_dir->kids[at] = gone;
    } else {
        memmove(src_dir->kids + at, src_dir->kids + at + 1,
                (src_dir->nkids - at - 1) * sizeof *src_dir->kids);
        src_dir->nkids--;
    }
    give(v, n->name);
    n->name = new_name;
    if ((err = attach(v, dst_dir, n)) != 0) {
        /* Only growing dst_dir's array can fail, and before any change. */
        node_free(v, n);
        return err;
    }
    return 0;
}

/* ---- the journal of changes ------------------------------------------------ */

static void change_free(mig_view *v, mig_vchange *c)
{
    give(v, c->path);
    give(v, c->from);
    give(v, c->target);
    give(v, c->old_disk);
    give(v, c->new_disk);
    mig_view_blob_drop(v, c->old_blob);
    mig_view_blob_drop(v, c->new_blob);
    memset(c, 0, sizeof *c);
}

static bool is_write(const mig_vchange *c)
{
    return (c->kind == MIGRATE_CHANGE_CREATED || c->kind == MIGRATE_CHANGE_MODIFIED) &&
           strcmp(c->type, "file") == 0 && c->from == NULL;
}

int mig_view_log(mig_view *v, const mig_vchange *c)
{
    /* Writes in a row to one file are one change: from the first content
     * to the last (a script that saves as it goes). */
    mig_vchange *last = v->nchanges > 0 ? &v->changes[v->nchanges - 1] : NULL;
    if (last != NULL && is_write(last) && is_write(c) && strcmp(last->path, c->path) == 0) {
        mig_view_blob_drop(v, last->new_blob);
        last->new_blob = mig_view_blob_ref(c->new_blob);
        last->mode = c->mode;
        last->size = c->size;
        return 0;
    }
    if (v->nchanges == v->cap) {
        mig_vchange *bigger = mig_grow(v->changes, &v->cap, sizeof *bigger, 16);
        if (bigger == NULL)
            return ENOMEM;
        v->changes = bigger;
    }
    int err = 0;
    mig_vchange *n = &v->changes[v->nchanges];
    *n = (mig_vchange){.kind = c->kind, .type = c->type, .mode = c->mode,
                       .old_mode = c->old_mode, .size = c->size};
    if ((n->path = take_string(v, c->path, &err)) == NULL ||
        (c->from && (n->from = take_string(v, c->from, &err)) == NULL) ||
        (c->target && (n->target = take_string(v, c->target, &err)) == NULL) ||
        (c->old_disk && (n->old_disk = take_string(v, c->old_disk, &err)) == NULL) ||
        (c->new_disk && (n->new_disk = take_string(v, c->new_disk, &err)) == NULL)) {
        change_free(v, n);
        return err;
    }
    n->old_blob = mig_view_blob_ref(c->old_blob);
    n->new_blob = mig_view_blob_ref(c->new_blob);
    v->nchanges++;
    return 0;
}

/* One side of a file change: its bytes (*owned malloc'd when read from
 * disk), or false when it cannot be shown (binary, too big, unreadable). */
static bool side_text(const mig_fsenv *env, const mig_blob *blob, const char *disk,
                      const char **text, size_t *len, char **owned)
{
    *owned = NULL;
    if (blob != NULL) {
        *text = blob->data;
        *len = blob->len;
    } else if (disk != NULL) {
        if (mig_fs_disk_read(env, disk, MIGRATE_MAX_DIFF_BYTES, owned, len) != 0)
            return false;
        *text = *owned;
    } else {
        *text = "";
        *len = 0;
    }
    return *len <= MIGRATE_MAX_DIFF_BYTES && memchr(*text, '\0', *len) == NULL;
}

/* The unified diff of a file change, malloc'd; NULL when it has none. */
static char *change_diff(const mig_fsenv *env, const mig_vchange *c, bool *same)
{
    const char *a, *b;
    size_t la, lb;
    char *oa, *ob;
    *same = false;
    bool shown = side_text(env, c->old_blob, c->old_disk, &a, &la, &oa);
    shown = side_text(env, c->new_blob, c->new_disk, &b, &lb, &ob) && shown;
    char *diff = NULL;
    if (shown) {
        bool too_large;
        bool created = c->kind == MIGRATE_CHANGE_CREATED;
        diff = mig_unified_diff("", created ? "/dev/null" : c->path, a, la, c->path, b, lb,
                                &too_large);
        *same = diff != NULL && diff[0] == '\0' && !created;
    }
    free(oa);
    free(ob);
    return diff;
}

int mig_view_flush(mig_view *v, const mig_fsenv *env, migrate_report *r, size_t i)
{
    int rc = MIGRATE_OK;
    for (size_t k = 0; k < v->nchanges; k++) {
        mig_vchange *c = &v->changes[k];
        char *diff = NULL;
        bool same = false;
        if (strcmp(c->type, "file") == 0 &&
            (c->kind == MIGRATE_CHANGE_CREATED || c->kind == MIGRATE_CHANGE_MODIFIED))
            diff = change_diff(env, c, &same);
        /* A rewrite to the same bytes and mode changed nothing a user sees. */
        bool unchanged = same && c->mode == c->old_mode && c->from == NULL;
        /* The report's diffs are bounded like the view: past the limit, a
         * change keeps no diff. */
        size_t dlen = diff != NULL ? strlen(diff) : 0;
        if (dlen > v->limit - v->diff_bytes) {
            free(diff);
            diff = NULL;
        } else {
            v->diff_bytes += dlen;
        }
        migrate_change pub = {
            .kind = c->kind,
            .path = c->path,
            .type = c->type,
            .from = c->from,
            .target = c->target,
            .mode = c->mode,
            .old_mode = c->old_mode,
            .diff = diff != NULL && diff[0] != '\0' ? diff : NULL,
            .size = c->size,
        };
        if (!unchanged && rc == MIGRATE_OK)
            rc = mig_report_add_change(r, i, &pub);
        free(diff);
        change_free(v, c);
    }
    v->nchanges = 0;
    return rc;
}
