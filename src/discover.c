/* discover.c - the migrations tree (SPEC §2): version directories, numbered
 * scripts, their order, and the slice of them a run covers. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct vdir {
    char *name; /* "v1.2.0" */
    migrate_version ver; /* points into name + 1 */
} vdir;

typedef struct names {
    char **items;
    size_t count, cap;
} names;

static void names_free(names *n)
{
    for (size_t i = 0; i < n->count; i++)
        free(n->items[i]);
    free(n->items);
}

/* Every entry of dir except "." and "..". */
static int list_dir(const char *dir, names *out, char *err)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        char buf[128];
        return mig_errf(err, MIGRATE_EMANIFEST, "%s: cannot list directory: %s", dir,
                        mig_strerror(errno, buf, sizeof buf));
    }
    int rc = MIGRATE_OK;
    struct dirent *e;
    while (rc == MIGRATE_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (out->count == out->cap) {
            char **items = mig_grow(out->items, &out->cap, sizeof *items, 32);
            if (items == NULL) {
                rc = MIGRATE_ENOMEM;
                break;
            }
            out->items = items;
        }
        if ((out->items[out->count] = strdup(e->d_name)) == NULL)
            rc = MIGRATE_ENOMEM;
        else
            out->count++;
    }
    int read_errno = errno;
    closedir(d);
    if (rc == MIGRATE_ENOMEM)
        return mig_errf(err, rc, "out of memory listing %s", dir);
    if (e == NULL && read_errno != 0) {
        char buf[128];
        return mig_errf(err, MIGRATE_EMANIFEST, "%s: cannot list directory: %s", dir,
                        mig_strerror(read_errno, buf, sizeof buf));
    }
    return MIGRATE_OK;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (s != NULL) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, c, lc + 1);
    }
    return s;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_vdir(const void *a, const void *b)
{
    return migrate_version_compare(&((const vdir *)a)->ver, &((const vdir *)b)->ver);
}

/* The version directories of the tree, sorted; "v" + digit entries that are
 * not SemVer directories are errors, never skipped. */
static int find_versions(const char *root, vdir **out, size_t *count, char *err)
{
    names all = {0};
    int rc = list_dir(root, &all, err);
    vdir *v = rc == MIGRATE_OK ? calloc(all.count + 1, sizeof *v) : NULL;
    if (rc == MIGRATE_OK && v == NULL)
        rc = mig_errf(err, MIGRATE_ENOMEM, "out of memory listing %s", root);
    size_t n = 0;
    for (size_t i = 0; rc == MIGRATE_OK && i < all.count; i++) {
        char *name = all.items[i];
        if (name[0] != 'v' || name[1] < '0' || name[1] > '9')
            continue; /* README.md, lib/, anything else is not a version */
        const char *why = NULL;
        if (mig_version_parse(name + 1, strlen(name + 1), &v[n].ver, &why) != MIGRATE_OK) {
            rc = mig_errf(err, MIGRATE_EMANIFEST, "%s/%s: not a SemVer version directory (%s)",
                          root, name, why ? why : "invalid");
            break;
        }
        char *path = join3(root, "/", name);
        bool dir = path != NULL && is_dir(path);
        free(path);
        if (!dir) {
            rc = mig_errf(err, MIGRATE_EMANIFEST, "%s/%s: a version must be a directory", root, name);
            break;
        }
        v[n].name = name;
        all.items[i] = NULL; /* moved into v */
        n++;
    }
    names_free(&all);
    if (rc == MIGRATE_OK)
        qsort(v, n, sizeof *v, cmp_vdir);
    for (size_t i = 1; rc == MIGRATE_OK && i < n; i++)
        if (cmp_vdir(&v[i - 1], &v[i]) == 0)
            rc = mig_errf(err, MIGRATE_EMANIFEST,
                          "%s: %s and %s have the same version precedence", root,
                          v[i - 1].name, v[i].name);
    if (rc != MIGRATE_OK) {
        for (size_t i = 0; i < n; i++)
            free(v[i].name);
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return MIGRATE_OK;
}

/* "<digits>_<name>.lua" with name of letters, digits, '_' and '-'.
 * Returns 1 (a migration, *number set), 0 (not numbered: a helper module),
 * -1 (numbered but malformed, *why set). */
static int parse_migration_name(const char *name, uint64_t *number, const char **why)
{
    if (name[0] < '0' || name[0] > '9')
        return 0;
    size_t len = strlen(name);
    if (len < 4 || strcmp(name + len - 4, ".lua") != 0)
        return 0; /* "001_notes.txt": not Lua, not ours */
    uint64_t n = 0;
    const char *p = name;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10) {
            *why = "the number is too large";
            return -1;
        }
        n = n * 10 + d;
    }
    if (*p != '_' || p + 1 == name + len - 4) {
        *why = "expected <digits>_<name>.lua";
        return -1;
    }
    for (const char *q = p + 1; q < name + len - 4; q++) {
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '_' || *q == '-')) {
            *why = "a name may hold only letters, digits, '_' and '-'";
            return -1;
        }
    }
    *number = n;
    return 1;
}

/* An entry's four strings share one allocation, owned through e->dir: a
 * tree of thousands of migrations costs one malloc per migration, not four. */
static void entry_free(mig_entry *e)
{
    free(e->dir);
}

static char *put(char **at, const char *a, size_t la, const char *b, size_t lb, const char *c,
                 size_t lc)
{
    char *s = *at;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc);
    s[la + lb + lc] = '\0';
    *at = s + la + lb + lc + 1;
    return s;
}

static int entry_init(mig_entry *e, const char *root, const char *vname, const char *file,
                      uint64_t number)
{
    size_t lr = strlen(root), lv = strlen(vname), lf = strlen(file), stem = lf - 4;
    memset(e, 0, sizeof *e);
    e->number = number;
    char *at = malloc((lr + 1 + lv + 1) + (lr + 1 + lv + 1 + lf + 1) + (lv + 1 + stem + 1) + lv);
    if (at == NULL)
        return MIGRATE_ENOMEM;
    e->dir = put(&at, root, lr, "/", 1, vname, lv);
    e->path = put(&at, e->dir, lr + 1 + lv, "/", 1, file, lf);
    e->id = put(&at, vname, lv, "/", 1, file, stem); /* without ".lua" */
    e->version = put(&at, vname + 1, lv - 1, "", 0, "", 0);
    return mig_version_parse(e->version, lv - 1, &e->ver, NULL);
}

static int cmp_entry(const void *a, const void *b)
{
    const mig_entry *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

typedef struct plan_builder {
    mig_plan *plan;
    size_t cap;
} plan_builder;

static mig_entry *plan_push(plan_builder *b)
{
    mig_plan *p = b->plan;
    if (p->count == b->cap) {
        mig_entry *items = mig_grow(p->items, &b->cap, sizeof *items, 64);
        if (items == NULL)
            return NULL;
        p->items = items;
    }
    return &p->items[p->count++];
}

/* One name of a version directory: appended to the plan if it is a
 * migration, an error if it is a malformed one, ignored otherwise. */
static int scan_name(const char *root, const char *vname, const char *dir, const char *name,
                     plan_builder *b, char *err)
{
    uint64_t number = 0;
    const char *why = NULL;
    int kind = parse_migration_name(name, &number, &why);
    if (kind < 0)
        return mig_errf(err, MIGRATE_EMANIFEST, "%s/%s: not a valid migration file name (%s)",
                        dir, name, why);
    if (kind == 0)
        return MIGRATE_OK;
    mig_entry *e = plan_push(b);
    if (e == NULL)
        return mig_errf(err, MIGRATE_ENOMEM, "out of memory");
    if (entry_init(e, root, vname, name, number) != MIGRATE_OK) {
        b->plan->count--;
        entry_free(e);
        return mig_errf(err, MIGRATE_ENOMEM, "out of memory");
    }
    return MIGRATE_OK;
}

/* Hands every name of dir to scan_name() as it is read: no copy of the
 * listing (a run over 10,000 migrations made and freed 10,000 of them). */
static int scan_dir(const char *root, const char *vname, const char *dir, plan_builder *b,
                    char *err)
{
    char buf[128];
    DIR *d = opendir(dir);
    if (d == NULL)
        return mig_errf(err, MIGRATE_EMANIFEST, "%s: cannot list directory: %s", dir,
                        mig_strerror(errno, buf, sizeof buf));
    int rc = MIGRATE_OK;
    struct dirent *e;
    while (rc == MIGRATE_OK && (errno = 0, e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = scan_name(root, vname, dir, e->d_name, b, err);
    int read_errno = errno;
    closedir(d);
    if (rc == MIGRATE_OK && e == NULL && read_errno != 0)
        return mig_errf(err, MIGRATE_EMANIFEST, "%s: cannot list directory: %s", dir,
                        mig_strerror(read_errno, buf, sizeof buf));
    return rc;
}

/* The migrations of one version directory, appended in number order when
 * `keep`, validated either way. */
static int scan_version(const char *root, const char *vname, bool keep, plan_builder *b, char *err)
{
    char *dir = join3(root, "/", vname);
    if (dir == NULL)
        return mig_errf(err, MIGRATE_ENOMEM, "out of memory");
    size_t first = b->plan->count;
    int rc = scan_dir(root, vname, dir, b, err);
    /* items is NULL until the first migration: NULL + 0 and qsort(NULL)
     * are undefined behaviour, however harmless they look. */
    size_t n = b->plan->count - first;
    mig_entry *mine = n > 0 ? b->plan->items + first : NULL;
    if (rc == MIGRATE_OK && n > 1)
        qsort(mine, n, sizeof *mine, cmp_entry);
    for (size_t i = 1; rc == MIGRATE_OK && i < n; i++)
        if (mine[i - 1].number == mine[i].number)
            rc = mig_errf(err, MIGRATE_EMANIFEST,
                          "%s: %s.lua and %s.lua have the same number %llu", dir,
                          strchr(mine[i - 1].id, '/') + 1, strchr(mine[i].id, '/') + 1,
                          (unsigned long long)mine[i].number);
    if (rc != MIGRATE_OK || !keep) {
        for (size_t i = 0; i < n; i++)
            entry_free(&mine[i]);
        b->plan->count = first;
    }
    free(dir);
    return rc;
}

static bool in_range(const migrate_version *v, const migrate_version *from,
                     const migrate_version *to)
{
    return (from == NULL || migrate_version_compare(from, v) < 0) &&
           (to == NULL || migrate_version_compare(v, to) <= 0);
}

int mig_plan_discover(const char *root, const migrate_version *from, const migrate_version *to,
                      mig_plan *out, char *err)
{
    memset(out, 0, sizeof *out);
    vdir *versions = NULL;
    size_t nversions = 0;
    int rc = find_versions(root, &versions, &nversions, err);
    plan_builder b = {out, 0};
    /* Out-of-range directories are validated too: a malformed tree is a
     * shipping bug, better caught on every run than on the one that needs it. */
    for (size_t i = 0; rc == MIGRATE_OK && i < nversions; i++)
        rc = scan_version(root, versions[i].name, in_range(&versions[i].ver, from, to), &b, err);
    for (size_t i = 0; i < nversions; i++)
        free(versions[i].name);
    free(versions);
    if (rc != MIGRATE_OK)
        mig_plan_free(out);
    return rc;
}

void mig_plan_free(mig_plan *plan)
{
    for (size_t i = 0; i < plan->count; i++)
        entry_free(&plan->items[i]);
    free(plan->items);
    plan->items = NULL;
    plan->count = 0;
}
