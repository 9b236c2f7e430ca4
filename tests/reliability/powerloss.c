/* powerloss.c - what a power cut can leave on disk, in the style of
 * SQLite's crash tests and ALICE (Pillai et al., OSDI '14).
 *
 * A SIGKILL leaves the page cache intact, so crash_test cannot see a
 * missing fsync. This program records every file-system operation a real
 * run makes under its home (fsrec.so, LD_PRELOAD), then, for every crash
 * point (after each recorded operation), builds the disk states a power cut
 * there could leave under this persistence model, weaker than ext4's
 * data=ordered:
 *   - a file's data (writes, truncations) since its last fsync may be lost
 *     or kept in part: any prefix of those operations, in their order;
 *   - a directory's entries (create, mkdir, rename, unlink) since the last
 *     fsync of that directory may be lost: any prefix of them, in order; a
 *     rename within one directory is one entry operation (atomic);
 *   - an fsync makes durable exactly what it covers, nothing else.
 * Every combination is built when there are at most MAX_COMBOS at a crash
 * point, else MAX_COMBOS random ones (both extremes always among them).
 * Identical disk states are recovered once.
 *
 * For each state it checks the promises of RELIABILITY.md:
 *   1. the state file is absent or whole: it parses and lists a prefix of
 *      the plan (never torn);
 *   2. a migration reported applied (its DONE event came before the crash)
 *      is in the state: once recorded and reported, never lost;
 *   3. every file written by fs.write/fs.write_json holds its old content or
 *      its whole new content, and a recorded migration's file the new one;
 * then "recovers" (migrate_run on that state) and checks that the run
 * succeeds, records every migration in order, leaves every file new and no
 * temp file behind.
 *
 * Then it shows the model bites: it records again with each fsync of the
 * durable write and the state save switched off in turn (the test build's
 * MIGRATE_TEST_SKIP_FSYNC=file|dir|mkdir), and each must produce violations.
 *
 * usage: powerloss [--full]    (MAX_COMBOS 64; --full or REL_FULL=1: 512) */
#include "rel.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The test build of the library calls this at its seams; nothing to do. */
void migrate_test_seam(const char *point);
void migrate_test_seam(const char *point)
{
    (void)point;
}

#define NMIG 3
static const char *const IDS[NMIG] = {"v1.0.0/001_out", "v1.0.0/002_conf", "v1.1.0/001_out"};
/* Destination files (relative to home) and whether they exist before. */
static const char *const DEST[NMIG] = {"out1.txt", "conf.json", "sub/out3.txt"};
static const char CONF_OLD[] = "{\n  \"v\": 1,\n  \"name\": \"old\"\n}\n";

static const char *const SCRIPTS[NMIG] = {
    "local want = ('one '):rep(3000)\n"
    "function check() return fs.exists('~/out1.txt') and fs.read('~/out1.txt') == want end\n"
    "function migrate() fs.write('~/out1.txt', want) return true end\n",
    "function check() return fs.read_json('~/conf.json').v == 2 end\n"
    "function migrate()\n"
    "  local c = fs.read_json('~/conf.json')\n"
    "  c.v = 2 c.name = ('new'):rep(500)\n"
    "  fs.write_json('~/conf.json', c)\n"
    "  return true\n"
    "end\n",
    "local want = ('three '):rep(2000)\n"
    "function check() return fs.exists('~/sub/out3.txt') and fs.read('~/sub/out3.txt') == want end\n"
    "function migrate() fs.mkdir('~/sub') fs.write('~/sub/out3.txt', want) return true end\n",
};

/* ---- the record ------------------------------------------------------------ */

typedef enum { OP_OPEN, OP_WRITE, OP_TRUNC, OP_SYNC, OP_CLOSE, OP_RENAME, OP_UNLINK, OP_RMDIR,
               OP_MKDIR, OP_MARK } op_kind;

typedef struct op {
    op_kind kind;
    int fd, flags;
    long long off;
    size_t len;
    char *data;       /* WRITE */
    char *a, *b;      /* paths; MARK: a is the text */
} op;

typedef struct record {
    op *ops;
    size_t n;
} record;

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void parse_record(const char *path, record *r)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        rel_die("%s: %s", path, strerror(errno));
    r->ops = NULL;
    r->n = 0;
    size_t cap = 0;
    char line[3 * PATH_MAX];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (r->n == cap) {
            cap = cap ? 2 * cap : 256;
            r->ops = realloc(r->ops, cap * sizeof *r->ops);
        }
        op o = {0};
        char *rest = line + 2;
        int used = 0;
        switch (line[0]) {
        case 'O':
            o.kind = OP_OPEN;
            sscanf(rest, "%d %d %n", &o.fd, &o.flags, &used);
            o.a = strdup(rest + used);
            break;
        case 'W':
            o.kind = OP_WRITE;
            sscanf(rest, "%d %lld %zu", &o.fd, &o.off, &o.len);
            o.data = malloc(o.len + 1);
            if (fread(o.data, 1, o.len, f) != o.len)
                rel_die("%s: short write record", path);
            break;
        case 'T':
            o.kind = OP_TRUNC;
            sscanf(rest, "%d %lld", &o.fd, &o.off);
            break;
        case 'S': o.kind = OP_SYNC; sscanf(rest, "%d", &o.fd); break;
        case 'C': o.kind = OP_CLOSE; sscanf(rest, "%d", &o.fd); break;
        case 'R': {
            o.kind = OP_RENAME;
            char *tab = strchr(rest, '\t');
            if (tab == NULL)
                rel_die("%s: bad rename record", path);
            o.a = dupn(rest, (size_t)(tab - rest));
            o.b = strdup(tab + 1);
            break;
        }
        case 'U': o.kind = OP_UNLINK; o.a = strdup(rest); break;
        case 'D': o.kind = OP_RMDIR; o.a = strdup(rest); break;
        case 'M': o.kind = OP_MKDIR; o.a = strdup(rest); break;
        case 'K': o.kind = OP_MARK; o.a = strdup(rest); break;
        default: rel_die("%s: unknown record '%c'", path, line[0]);
        }
        r->ops[r->n++] = o;
    }
    fclose(f);
}

static void free_record(record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ops[i].data);
        free(r->ops[i].a);
        free(r->ops[i].b);
    }
    free(r->ops);
}

/* ---- the model ----------------------------------------------------------- */

#define MAX_INODES 512
#define MAX_NAMES 512
#define MAX_PENDING 64

typedef struct data_op {
    bool trunc;
    long long off;
    size_t len;
    const char *data;
} data_op;

typedef struct inode {
    bool dir;
    char *vol, *dur; /* volatile and durable content */
    size_t vlen, dlen;
    data_op pend[MAX_PENDING];
    size_t npend;
} inode;

typedef struct name {
    char *path;
    int ino;
} name;

/* One directory-entry operation; in the pending list of its directory. */
typedef enum { E_LINK, E_UNLINK, E_RENAME } entry_kind;
typedef struct entry_op {
    entry_kind kind;
    char *dir; /* the directory it lives in */
    char *path, *to;
    int ino;
} entry_op;

typedef struct model {
    inode in[MAX_INODES];
    int nin;
    name vol[MAX_NAMES], dur[MAX_NAMES];
    int nvol, ndur;
    entry_op pend[MAX_PENDING * 4];
    int npend;
    int fd_ino[4096];
    int reported; /* DONE marks of applied migrations seen */
    char *root;
} model;

static int find(name *ns, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ns[i].path, path) == 0)
            return i;
    return -1;
}

static void ns_set(name *ns, int *n, const char *path, int ino)
{
    int i = find(ns, *n, path);
    if (i >= 0) {
        ns[i].ino = ino;
        return;
    }
    if (*n == MAX_NAMES)
        rel_die("model: too many names");
    ns[*n].path = strdup(path);
    ns[(*n)++].ino = ino;
}

static void ns_del(name *ns, int *n, const char *path)
{
    int i = find(ns, *n, path);
    if (i < 0)
        return;
    free(ns[i].path);
    ns[i] = ns[--*n];
}

static char *parent_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return dupn(path, s ? (size_t)(s - path) : 0);
}

static int new_inode(model *m, bool dir)
{
    if (m->nin == MAX_INODES)
        rel_die("model: too many inodes");
    inode *in = &m->in[m->nin];
    memset(in, 0, sizeof *in);
    in->dir = dir;
    return m->nin++;
}

static void pend_entry(model *m, entry_kind k, const char *path, const char *to, int ino)
{
    if (m->npend == (int)(sizeof m->pend / sizeof m->pend[0]))
        rel_die("model: too many pending entries");
    entry_op *e = &m->pend[m->npend++];
    e->kind = k;
    e->dir = parent_of(to ? to : path);
    e->path = strdup(path);
    e->to = to ? strdup(to) : NULL;
    e->ino = ino;
}

static void apply_entry(name *ns, int *n, const entry_op *e)
{
    switch (e->kind) {
    case E_LINK: ns_set(ns, n, e->path, e->ino); break;
    case E_UNLINK: ns_del(ns, n, e->path); break;
    case E_RENAME:
        ns_set(ns, n, e->to, e->ino);
        ns_del(ns, n, e->path);
        break;
    }
}

static void free_entry(entry_op *e)
{
    free(e->dir);
    free(e->path);
    free(e->to);
}

static void apply_data(char **buf, size_t *len, const data_op *d)
{
    if (d->trunc) {
        size_t nl = (size_t)d->off;
        *buf = realloc(*buf, nl + 1);
        if (nl > *len)
            memset(*buf + *len, 0, nl - *len);
        *len = nl;
        return;
    }
    size_t end = (size_t)d->off + d->len;
    if (end > *len) {
        *buf = realloc(*buf, end + 1);
        memset(*buf + *len, 0, end - *len);
        *len = end;
    }
    memcpy(*buf + d->off, d->data, d->len);
}

static void add_data(inode *in, data_op d)
{
    if (in->npend == MAX_PENDING)
        rel_die("model: too many pending writes");
    in->pend[in->npend++] = d;
    apply_data(&in->vol, &in->vlen, &d);
}

static void sync_inode(model *m, int ino)
{
    inode *in = &m->in[ino];
    if (!in->dir) {
        free(in->dur);
        in->dur = malloc(in->vlen + 1);
        if (in->vlen > 0)
            memcpy(in->dur, in->vol, in->vlen);
        in->dlen = in->vlen;
        in->npend = 0;
        return;
    }
    /* A directory: the pending entries in it become durable, in order. */
    int at = -1;
    for (int i = 0; i < m->nvol; i++)
        if (m->vol[i].ino == ino)
            at = i;
    const char *path = at >= 0 ? m->vol[at].path : m->root;
    int kept = 0;
    for (int i = 0; i < m->npend; i++) {
        if (strcmp(m->pend[i].dir, path) == 0) {
            apply_entry(m->dur, &m->ndur, &m->pend[i]);
            free_entry(&m->pend[i]);
        } else {
            m->pend[kept++] = m->pend[i];
        }
    }
    m->npend = kept;
}

/* The tree under root as it is on disk now: every name durable. */
static void snapshot(model *m, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        rel_die("opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = rel_fmt("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            rel_die("lstat %s", path);
        int ino = new_inode(m, S_ISDIR(st.st_mode));
        ns_set(m->vol, &m->nvol, path, ino);
        ns_set(m->dur, &m->ndur, path, ino);
        if (S_ISDIR(st.st_mode)) {
            snapshot(m, path);
        } else {
            char *text = rel_read(path);
            inode *in = &m->in[ino];
            in->vlen = in->dlen = (size_t)st.st_size;
            in->vol = malloc(in->vlen + 1);
            in->dur = malloc(in->vlen + 1);
            memcpy(in->vol, text, in->vlen);
            memcpy(in->dur, text, in->vlen);
            free(text);
        }
        free(path);
    }
    closedir(d);
}

static void model_init(model *m, const char *root)
{
    memset(m, 0, sizeof *m);
    m->root = strdup(root);
    int ino = new_inode(m, true); /* the root itself: always there */
    (void)ino;
    for (int i = 0; i < 4096; i++)
        m->fd_ino[i] = -1;
    snapshot(m, root);
}

static void model_free(model *m)
{
    for (int i = 0; i < m->nin; i++) {
        free(m->in[i].vol);
        free(m->in[i].dur);
    }
    for (int i = 0; i < m->nvol; i++)
        free(m->vol[i].path);
    for (int i = 0; i < m->ndur; i++)
        free(m->dur[i].path);
    for (int i = 0; i < m->npend; i++)
        free_entry(&m->pend[i]);
    free(m->root);
}

static int ino_of(model *m, const char *path)
{
    if (strcmp(path, m->root) == 0)
        return 0;
    int i = find(m->vol, m->nvol, path);
    return i >= 0 ? m->vol[i].ino : -1;
}

static void step(model *m, const op *o)
{
    switch (o->kind) {
    case OP_OPEN: {
        int ino = ino_of(m, o->a);
        if (ino < 0) {
            if (!(o->flags & O_CREAT))
                rel_die("model: %s opened without existing", o->a);
            ino = new_inode(m, false);
            ns_set(m->vol, &m->nvol, o->a, ino);
            pend_entry(m, E_LINK, o->a, NULL, ino);
        } else if ((o->flags & O_TRUNC) && m->in[ino].vlen > 0) {
            add_data(&m->in[ino], (data_op){true, 0, 0, NULL});
        }
        m->fd_ino[o->fd] = ino;
        break;
    }
    case OP_WRITE:
    case OP_TRUNC:
    case OP_SYNC:
    case OP_CLOSE: {
        int ino = o->fd >= 0 && o->fd < 4096 ? m->fd_ino[o->fd] : -1;
        if (ino < 0)
            rel_die("model: operation on unknown fd %d", o->fd);
        if (o->kind == OP_WRITE)
            add_data(&m->in[ino], (data_op){false, o->off, o->len, o->data});
        else if (o->kind == OP_TRUNC)
            add_data(&m->in[ino], (data_op){true, o->off, 0, NULL});
        else if (o->kind == OP_SYNC)
            sync_inode(m, ino);
        else
            m->fd_ino[o->fd] = -1;
        break;
    }
    case OP_RENAME: {
        int ino = ino_of(m, o->a);
        if (ino < 0 || m->in[ino].dir)
            rel_die("model: rename of %s (unknown, or a directory)", o->a);
        char *pa = parent_of(o->a), *pb = parent_of(o->b);
        bool same = strcmp(pa, pb) == 0;
        free(pa);
        free(pb);
        ns_set(m->vol, &m->nvol, o->b, ino);
        ns_del(m->vol, &m->nvol, o->a);
        if (same) {
            pend_entry(m, E_RENAME, o->a, o->b, ino);
        } else { /* weaker than a journal: two entries, each may be lost */
            pend_entry(m, E_LINK, o->b, NULL, ino);
            pend_entry(m, E_UNLINK, o->a, NULL, -1);
        }
        break;
    }
    case OP_UNLINK:
    case OP_RMDIR:
        ns_del(m->vol, &m->nvol, o->a);
        pend_entry(m, E_UNLINK, o->a, NULL, -1);
        break;
    case OP_MKDIR: {
        int ino = new_inode(m, true);
        ns_set(m->vol, &m->nvol, o->a, ino);
        pend_entry(m, E_LINK, o->a, NULL, ino);
        break;
    }
    case OP_MARK:
        if (strncmp(o->a, "applied ", 8) == 0)
            m->reported++;
        break;
    }
}

/* ---- crash states ---------------------------------------------------------- */

/* The choices a power cut leaves at one crash point: for each directory
 * with pending entries, how many of them persist; for each file with
 * pending data, how many of its operations. */
typedef struct dims {
    int n;
    char *dir[64];  /* a directory dimension, or NULL */
    int ino[64];    /* else a file dimension */
    int size[64];   /* choices: pending + 1 */
} dims;

static void make_dims(model *m, dims *d)
{
    d->n = 0;
    for (int i = 0; i < m->npend; i++) {
        int k;
        for (k = 0; k < d->n; k++)
            if (d->dir[k] && strcmp(d->dir[k], m->pend[i].dir) == 0)
                break;
        if (k == d->n) {
            if (d->n == 64)
                rel_die("model: too many dimensions");
            d->dir[d->n] = m->pend[i].dir;
            d->size[d->n++] = 1;
        }
        d->size[k]++;
    }
    for (int ino = 0; ino < m->nin; ino++) {
        if (m->in[ino].npend == 0 || d->n == 64)
            continue;
        d->dir[d->n] = NULL;
        d->ino[d->n] = ino;
        d->size[d->n++] = (int)m->in[ino].npend + 1;
    }
}

/* Writes the disk state `choice` picks into out (a fresh directory
 * standing for the root); returns a signature of it. */
static uint64_t realize(model *m, const dims *d, const int *choice, const char *out)
{
    name ns[MAX_NAMES];
    int n = 0;
    for (int i = 0; i < m->ndur; i++) {
        ns[n].path = strdup(m->dur[i].path);
        ns[n++].ino = m->dur[i].ino;
    }
    for (int k = 0; k < d->n; k++) {
        if (d->dir[k] == NULL)
            continue;
        int left = choice[k];
        for (int i = 0; i < m->npend && left > 0; i++)
            if (strcmp(m->pend[i].dir, d->dir[k]) == 0) {
                apply_entry(ns, &n, &m->pend[i]);
                left--;
            }
    }
    /* Shortest paths first: parents before children. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strlen(ns[j].path) < strlen(ns[i].path)) {
                name t = ns[i];
                ns[i] = ns[j];
                ns[j] = t;
            }
    uint64_t sig = 1469598103934665603ull;
#define MIX(p, len)                                                   \
    for (size_t z_ = 0; z_ < (len); z_++)                             \
        sig = (sig ^ (unsigned char)((const char *)(p))[z_]) * 1099511628211ull;
    size_t rl = strlen(m->root);
    for (int i = 0; i < n; i++) {
        const char *rel = ns[i].path + rl;
        char *parent = parent_of(ns[i].path);
        bool reachable = strcmp(parent, m->root) == 0 || find(ns, i, parent) >= 0;
        free(parent);
        if (!reachable) { /* its directory's entry was lost: so is it */
            free(ns[i].path);
            ns[i].path = strdup("");
            continue;
        }
        char *dst = rel_fmt("%s%s", out, rel);
        inode *in = &m->in[ns[i].ino];
        MIX(rel, strlen(rel) + 1);
        if (in->dir) {
            if (mkdir(dst, 0700) != 0)
                rel_die("mkdir %s: %s", dst, strerror(errno));
        } else {
            char *buf = malloc(in->dlen + 1);
            if (in->dlen > 0)
                memcpy(buf, in->dur, in->dlen);
            size_t len = in->dlen;
            for (int k = 0; k < d->n; k++)
                if (d->dir[k] == NULL && d->ino[k] == ns[i].ino)
                    for (int j = 0; j < choice[k]; j++)
                        apply_data(&buf, &len, &in->pend[j]);
            int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd < 0 || (len > 0 && write(fd, buf, len) != (ssize_t)len) || close(fd) != 0)
                rel_die("write %s: %s", dst, strerror(errno));
            MIX(buf, len);
            MIX("\0F", 2);
            free(buf);
        }
        free(dst);
    }
    for (int i = 0; i < n; i++)
        free(ns[i].path);
    return sig;
}

/* ---- the checks -------------------------------------------------------------- */

typedef struct expect {
    const char *old[NMIG]; /* NULL: absent before the run */
    char *new_[NMIG];
} expect;

typedef struct tally {
    long points, states, unique, violations;
    char first[1024];
} tally;

static void violation(tally *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(tally *t, const char *fmt, ...)
{
    if (t->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->first, sizeof t->first, fmt, ap);
        va_end(ap);
    }
}

static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* Promises 1-3 on the disk state in home, then the recovery. */
static void check_state(const char *migrations, const char *home, const expect *x, int reported,
                        long point, tally *t)
{
    char *state = rel_fmt("%s/.teleclaude/migration_state.json", home);
    char **ids = NULL;
    size_t count = 0;
    const char *why = NULL;
    int st = rel_state_ids(state, &ids, &count, &why);
    if (st < 0)
        violation(t, "crash point %ld: the state file is torn: %s", point, why);
    for (size_t i = 0; st > 0 && i < count; i++)
        if (i >= NMIG || strcmp(ids[i], IDS[i]) != 0)
            violation(t, "crash point %ld: the state lists %s at %zu", point, ids[i], i);
    if ((int)count < reported)
        violation(t, "crash point %ld: %d migrations reported applied, the state lists %zu",
                  point, reported, count);
    for (int i = 0; i < NMIG; i++) {
        char *path = rel_fmt("%s/%s", home, DEST[i]);
        char *got = rel_read(path);
        bool is_new = got != NULL && strcmp(got, x->new_[i]) == 0;
        bool is_old = x->old[i] == NULL ? got == NULL : got != NULL && strcmp(got, x->old[i]) == 0;
        if (!is_new && !is_old)
            violation(t, "crash point %ld: %s is half-written (%zu bytes)", point, DEST[i],
                      got ? strlen(got) : 0);
        else if (!is_new && (size_t)i < count)
            violation(t, "crash point %ld: %s is recorded but %s lost its new content", point,
                      IDS[i], DEST[i]);
        free(got);
        free(path);
    }
    rel_free_ids(ids, count);
    /* Recovery. A torn state is already a finding; recover it aside. */
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = migrations;
    o.home = home;
    o.memory_limit = 32u << 20;
    o.timeout_ms = 20000;
    o.recover_corrupt_state = st < 0;
    migrate_report *rep = NULL;
    int rc = migrate_run(NULL, NULL, &o, &rep);
    if (rc != MIGRATE_OK)
        violation(t, "crash point %ld: recovery returned %d: %s", point, rc,
                  migrate_report_error(rep));
    migrate_report_free(rep);
    st = rel_state_ids(state, &ids, &count, &why);
    if (rc == MIGRATE_OK && (st <= 0 || count != NMIG))
        violation(t, "crash point %ld: after recovery the state lists %zu migrations", point,
                  count);
    if (st > 0)
        rel_free_ids(ids, count);
    for (int i = 0; rc == MIGRATE_OK && i < NMIG; i++) {
        char *path = rel_fmt("%s/%s", home, DEST[i]);
        char *got = rel_read(path);
        if (got == NULL || strcmp(got, x->new_[i]) != 0)
            violation(t, "crash point %ld: after recovery %s is not new", point, DEST[i]);
        free(got);
        free(path);
    }
    char *tdir = rel_fmt("%s/.teleclaude", home);
    char *sdir = rel_fmt("%s/sub", home);
    if (rc == MIGRATE_OK && count_temps(home) + count_temps(tdir) + count_temps(sdir) != 0)
        violation(t, "crash point %ld: recovery left a temp file", point);
    free(tdir);
    free(sdir);
    free(state);
}

/* ---- recording ---------------------------------------------------------------- */

static int mark_event(const migrate_event *e, void *payload)
{
    void (*mark)(const char *) = (void (*)(const char *))payload;
    if (e->kind == MIGRATE_EVENT_DONE && e->migration->outcome == MIGRATE_APPLIED && mark) {
        char text[256];
        snprintf(text, sizeof text, "applied %s", e->migration->id);
        mark(text);
    }
    return 0;
}

/* The recording child: one run, operations logged by fsrec.so. */
static int record_main(const char *migrations, const char *home)
{
    void *sym = dlsym(RTLD_DEFAULT, "fsrec_mark");
    if (sym == NULL)
        rel_die("fsrec.so is not preloaded");
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = migrations;
    o.home = home;
    o.memory_limit = 32u << 20;
    o.timeout_ms = 20000;
    o.on_event = mark_event;
    o.payload = sym;
    migrate_report *rep = NULL;
    int rc = migrate_run(NULL, NULL, &o, &rep);
    if (rc != MIGRATE_OK)
        fprintf(stderr, "powerloss: the recorded run returned %d: %s\n", rc,
                migrate_report_error(rep));
    migrate_report_free(rep);
    return rc == MIGRATE_OK ? 0 : 1;
}

static char *exe_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        rel_die("readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    return strdup(exe);
}

/* Records one run from the initial home into log; skip: the fsync switched
 * off (NULL: none). */
static void record_run(const char *migrations, const char *home, const char *log,
                       const char *skip)
{
    char *dir = exe_dir();
    char *shim = rel_fmt("%s/fsrec.so", dir);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    unlink(log);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LD_PRELOAD", shim, 1);
        /* Under ASan the runtime must come first; the recorder only forwards. */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        setenv("FSREC_LOG", log, 1);
        setenv("FSREC_PREFIX", home, 1);
        if (skip)
            setenv("MIGRATE_TEST_SKIP_FSYNC", skip, 1);
        else
            unsetenv("MIGRATE_TEST_SKIP_FSYNC");
        execl(exe, exe, "--record", migrations, home, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rel_die("the recording run failed (status %d)", status);
    free(shim);
    free(dir);
}

static void reset_home(const char *home)
{
    rel_reset_home(home);
    char *conf = rel_fmt("%s/conf.json", home);
    rel_write(conf, CONF_OLD);
    free(conf);
}

/* Every crash point of one record: the model's states, checked. */
static void explore(const char *migrations, const char *home, const record *r, const expect *x,
                    int max_combos, tally *t)
{
    uint64_t *seen = NULL;
    size_t nseen = 0, capseen = 0;
    char *scratch = rel_tmpdir("powerloss-state");
    unsigned seed = 12345;
    for (size_t k = 0; k <= r->n; k++) {
        model m;
        model_init(&m, home);
        for (size_t i = 0; i < k; i++)
            step(&m, &r->ops[i]);
        dims d;
        make_dims(&m, &d);
        double total = 1;
        for (int i = 0; i < d.n; i++)
            total *= d.size[i];
        long combos = total <= max_combos ? (long)total : max_combos;
        t->points++;
        for (long c = 0; c < combos; c++) {
            int choice[64];
            long rest = c;
            for (int i = 0; i < d.n; i++) {
                if (total <= max_combos) { /* every combination, in order */
                    choice[i] = (int)(rest % d.size[i]);
                    rest /= d.size[i];
                } else if (c == 0) {
                    choice[i] = 0; /* nothing pending persisted */
                } else if (c == 1) {
                    choice[i] = d.size[i] - 1; /* everything */
                } else {
                    seed = seed * 1103515245u + 12345u;
                    choice[i] = (int)((seed >> 16) % (unsigned)d.size[i]);
                }
            }
            char *state_home = rel_fmt("%s/home", scratch);
            rel_rmtree(state_home);
            if (mkdir(state_home, 0700) != 0)
                rel_die("mkdir %s", state_home);
            uint64_t sig = realize(&m, &d, choice, state_home) * 31 + (uint64_t)m.reported;
            t->states++;
            bool dup = false;
            for (size_t i = 0; i < nseen && !dup; i++)
                dup = seen[i] == sig;
            if (!dup) {
                if (nseen == capseen) {
                    capseen = capseen ? 2 * capseen : 256;
                    seen = realloc(seen, capseen * sizeof *seen);
                }
                seen[nseen++] = sig;
                t->unique++;
                check_state(migrations, state_home, x, m.reported, (long)k, t);
            }
            free(state_home);
        }
        model_free(&m);
    }
    rel_rmtree(scratch);
    free(scratch);
    free(seen);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--record") == 0)
        return record_main(argv[2], argv[3]);
    int max_combos = rel_full(argc, argv) ? 512 : 64;
    rel_world w;
    rel_world_init(&w, "powerloss", 20000);
    for (int i = 0; i < NMIG; i++) {
        char *path = rel_fmt("%s/%s.lua", w.migrations, IDS[i]);
        rel_write(path, SCRIPTS[i]);
        free(path);
    }
    char *log = rel_fmt("%s/ops.log", w.root);
    expect x = {{NULL, CONF_OLD, NULL}, {NULL, NULL, NULL}};

    /* The library as built: no violation anywhere. */
    reset_home(w.home);
    record_run(w.migrations, w.home, log, NULL);
    for (int i = 0; i < NMIG; i++) {
        char *path = rel_fmt("%s/%s", w.home, DEST[i]);
        x.new_[i] = rel_read(path);
        if (x.new_[i] == NULL)
            rel_die("the recorded run did not write %s", DEST[i]);
        free(path);
    }
    reset_home(w.home);
    record r;
    parse_record(log, &r);
    long fsyncs = 0;
    for (size_t i = 0; i < r.n; i++)
        fsyncs += r.ops[i].kind == OP_SYNC;
    tally t = {0};
    explore(w.migrations, w.home, &r, &x, max_combos, &t);
    REL_CHECK(t.violations == 0, "%ld violations; the first: %s", t.violations, t.first);
    printf("powerloss: %zu operations (%ld fsyncs) recorded; %ld crash points, %ld disk states "
           "built, %ld distinct recovered: %ld violations\n",
           r.n, fsyncs, t.points, t.states, t.unique, t.violations);
    free_record(&r);
    rel_case();

    /* Each fsync switched off in turn: the simulator must catch it. */
    static const char *const SKIPS[] = {"file", "dir", "mkdir"};
    static const char *const WHAT[] = {"fsync of a written temp file (durable.c fill_temp)",
                                       "fsync of the directory after the rename (durable.c)",
                                       "fsync of a new directory's parent (durable.c mkdir)"};
    for (size_t s = 0; s < sizeof SKIPS / sizeof SKIPS[0]; s++) {
        reset_home(w.home);
        record_run(w.migrations, w.home, log, SKIPS[s]);
        reset_home(w.home);
        parse_record(log, &r);
        tally u = {0};
        explore(w.migrations, w.home, &r, &x, max_combos, &u);
        REL_CHECK(u.violations > 0, "without the %s, no violation was found", WHAT[s]);
        printf("powerloss: without the %s: %ld crash points, %ld distinct states, %ld violations; "
               "the first: %s\n",
               WHAT[s], u.points, u.unique, u.violations, u.first);
        free_record(&r);
        rel_case();
    }
    for (int i = 0; i < NMIG; i++)
        free(x.new_[i]);
    free(log);
    rel_world_free(&w);
    return rel_summary();
}
