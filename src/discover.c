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
            size_t cap = out->cap ? out->cap * 2 : 32;
            char **items = realloc(out->items, cap * sizeof *items);
            if (items == NULL) {
                rc = MIGRATE_ENOMEM;
                break;
            }
            out->items = items;
            out->cap = cap;
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
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s%s", a, b, c);
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

static void entry_free(mig_entry *e)
{
    free(e->id);
    free(e->version);
    free(e->path);
    free(e->dir);
}

static int entry_init(mig_entry *e, const char *root, const char *vname, const char *file,
                      uint64_t number)
{
    size_t stem = strlen(file) - 4;
    memset(e, 0, sizeof *e);
    e->number = number;
    e->dir = join3(root, "/", vname);
    e->path = e->dir ? join3(e->dir, "/", file) : NULL;
    e->id = join3(vname, "/", file);
    e->version = strdup(vname + 1);
    if (e->dir == NULL || e->path == NULL || e->id == NULL || e->version == NULL)
        return MIGRATE_ENOMEM;
    e->id[strlen(vname) + 1 + stem] = '\0'; /* drop ".lua" */
    return mig_version_parse(e->version, strlen(e->version), &e->ver, NULL);
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
        size_t cap = b->cap ? b->cap * 2 : 64;
        mig_entry *items = realloc(p->items, cap * sizeof *items);
        if (items == NULL)
            return NULL;
        p->items = items;
        b->cap = cap;
    }
    return &p->items[p->count++];
}

/* The migrations of one version directory, appended in number order when
 * `keep`, validated either way. */
static int scan_version(const char *root, const char *vname, bool keep, plan_builder *b, char *err)
{
    char *dir = join3(root, "/", vname);
    if (dir == NULL)
        return mig_errf(err, MIGRATE_ENOMEM, "out of memory");
    names files = {0};
    int rc = list_dir(dir, &files, err);
    size_t first = b->plan->count;
    for (size_t i = 0; rc == MIGRATE_OK && i < files.count; i++) {
        uint64_t number = 0;
        const char *why = NULL;
        int kind = parse_migration_name(files.items[i], &number, &why);
        if (kind < 0)
            rc = mig_errf(err, MIGRATE_EMANIFEST, "%s/%s: not a valid migration file name (%s)",
                          dir, files.items[i], why);
        if (kind <= 0)
            continue;
        mig_entry *e = plan_push(b);
        if (e == NULL) {
            rc = mig_errf(err, MIGRATE_ENOMEM, "out of memory");
            break;
        }
        if (entry_init(e, root, vname, files.items[i], number) != MIGRATE_OK) {
            rc = mig_errf(err, MIGRATE_ENOMEM, "out of memory");
            b->plan->count--;
            entry_free(e);
        }
    }
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
    names_free(&files);
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
