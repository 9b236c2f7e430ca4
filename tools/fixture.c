/*
 * fixture.c - migrate-fixture: proves, on fixture homes, that migrations turn
 * an old home into the expected new one, that running them again changes
 * nothing, and that each check() recognises its own effect.
 *
 *   migrate-fixture [--migrations DIR] [--require-coverage DIR] [--verbose]
 *                   FIXTURE_DIR...
 *
 * A fixture directory holds before/ (a home before the upgrade), after/ (the
 * home expected after it), case.json and optionally its own migrations/.
 * migrations/README.md, "Testing a migration on fixtures", is the guide.
 * Exit status: 0 when every fixture passed (and, with --require-coverage,
 * every migration there is covered), 1 otherwise, 2 on a usage error.
 *
 * Unlike the library, this is a short-lived tool: it prints, and it stops
 * on out-of-memory.
 */
#include "migrate.h"
/* One internal piece: the library's unified diff (mig_unified_diff), so that
 * the harness and the rehearsal's changes show differences alike. */
#include "internal.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the library keeps its state under a home (its default state_path). */
#define STATE_DIR ".teleclaude"
#define STATE_REL STATE_DIR "/migration_state.json"
#define LOCK_REL STATE_REL ".lock"
/* Git stores no empty directory: a file of this name stands for one. It is
 * never copied into a home and never compared. */
#define KEEP_MARKER ".keep"
/* Per check()/migrate() call: a fixture home is tiny, so a script still
 * running after this long is stuck, and the suite must not wait 5 minutes. */
#define CALL_TIMEOUT_MS 10000
#define INDENT "    "
#define DIFF_INDENT "      "

/* ---- memory and text ----------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fputs("migrate-fixture: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

/* "a/b"; b "" gives a copy of a. free() it. */
static char *path_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = xrealloc(NULL, na + nb + 2);
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    if (nb == 0)
        p[na] = '\0';
    return p;
}

/* A growing string: reasons and details of a failure. */
typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = xrealloc(t->data, t->cap);
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void text_printf(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *s = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    text_add(t, s, (size_t)n);
    free(s);
}

/* Appends s with every line indented, ending in a newline. */
static void text_add_indented(text *t, const char *indent, const char *s)
{
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        text_printf(t, "%s%.*s\n", indent, (int)n, s);
        s += n + (nl != NULL);
    }
}

static const char *text_str(const text *t)
{
    return t->data ? t->data : "";
}

/* ---- files and trees -------------------------------------------------- */

/* The whole file, NUL-terminated; NULL with errno set. free() it. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *data = xrealloc(NULL, cap);
    for (;;) {
        if (n + 1 == cap)
            data = xrealloc(data, cap *= 2);
        ssize_t got = read(fd, data + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            int e = errno;
            close(fd);
            if (got < 0) {
                free(data);
                errno = e;
                return NULL;
            }
            break;
        }
        n += (size_t)got;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir without "." and "..", sorted; NULL with errno set. */
static char **list_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *count = n;
    return names != NULL ? names : xrealloc(NULL, sizeof *names);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool fail_errno(text *why, const char *what, const char *path)
{
    text_printf(why, "%s %s: %s", what, path, strerror(errno));
    return false;
}

static bool copy_file(const char *src, const char *dst, mode_t mode, text *why)
{
    size_t len;
    char *data = read_file(src, &len);
    if (data == NULL)
        return fail_errno(why, "cannot read", src);
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t put = write(fd, data + done, len - done);
        if (put < 0 && errno == EINTR)
            continue;
        ok = put > 0;
        done += ok ? (size_t)put : 0;
    }
    /* fchmod, not the open mode: the umask must not change what is compared. */
    ok = ok && fchmod(fd, mode & 07777) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    free(data);
    errno = e;
    return ok || fail_errno(why, "cannot write", dst);
}

static bool copy_tree(const char *src, const char *dst, text *why);

static bool copy_dir(const char *src, const char *dst, mode_t mode, text *why)
{
    if (mkdir(dst, 0700) != 0)
        return fail_errno(why, "cannot create", dst);
    size_t n;
    char **names = list_dir(src, &n);
    if (names == NULL)
        return fail_errno(why, "cannot list", src);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (strcmp(names[i], KEEP_MARKER) == 0)
            continue;
        char *s = path_join(src, names[i]), *d = path_join(dst, names[i]);
        ok = copy_tree(s, d, why);
        free(s);
        free(d);
    }
    free_names(names, n);
    /* Last, so a read-only directory could still be filled. */
    return ok && (chmod(dst, mode & 07777) == 0 || fail_errno(why, "cannot chmod", dst));
}

/* Copies src to dst (which must not exist): directories, regular files
 * with their permission bits, symlinks as links; .keep markers left out. */
static bool copy_tree(const char *src, const char *dst, text *why)
{
    struct stat st;
    if (lstat(src, &st) != 0)
        return fail_errno(why, "cannot read", src);
    if (S_ISDIR(st.st_mode))
        return copy_dir(src, dst, st.st_mode, why);
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, st.st_mode, why);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(src, target, sizeof target - 1);
        if (n < 0)
            return fail_errno(why, "cannot read link", src);
        target[n] = '\0';
        return symlink(target, dst) == 0 || fail_errno(why, "cannot create link", dst);
    }
    text_printf(why, "%s: not a file, directory or symlink", src);
    return false;
}

/* rm -rf, not following links; it makes directories writable first, since
 * a migration under test may have left one read-only. */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        size_t n;
        char **names = list_dir(path, &n);
        for (size_t i = 0; names != NULL && i < n; i++) {
            char *child = path_join(path, names[i]);
            remove_tree(child);
            free(child);
        }
        if (names != NULL)
            free_names(names, n);
        if (rmdir(path) != 0)
            fprintf(stderr, "migrate-fixture: cannot remove %s: %s\n", path, strerror(errno));
    } else if (unlink(path) != 0) {
        fprintf(stderr, "migrate-fixture: cannot remove %s: %s\n", path, strerror(errno));
    }
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- unified diff of two texts ---------------------------------------------- */

/* A unified diff from the expected text to the one found, indented: the
 * library's own (the one its rehearsal reports), so what is shown here is
 * what a preview shows. */
static void unified_diff(text *out, const char *label_a, const char *ta, size_t la,
                         const char *label_b, const char *tb, size_t lb)
{
    bool too_large;
    char *diff = mig_unified_diff(DIFF_INDENT, label_a, ta, la, label_b, tb, lb, &too_large);
    if (diff == NULL && !too_large) {
        fputs("migrate-fixture: out of memory\n", stderr);
        exit(2);
    }
    if (diff != NULL)
        text_add(out, diff, strlen(diff));
    else
        text_printf(out, DIFF_INDENT "(too many lines differ to diff)\n");
    free(diff);
}

/* ---- comparing two trees ------------------------------------------------ */

typedef struct compare {
    const char *expected_root, *found_root;
    const char *expected_label, *found_label; /* "after/", "home" */
    bool skip_state;                          /* leave out the state file and lock */
    text *out;                                /* one indented line per difference */
    size_t differences;
} compare;

static bool is_ignored(const compare *c, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (strcmp(slash ? slash + 1 : rel, KEEP_MARKER) == 0)
        return true;
    return c->skip_state && (strcmp(rel, STATE_REL) == 0 || strcmp(rel, LOCK_REL) == 0);
}

/* The state directory the library creates holds only the state and its
 * lock: on one side only, and empty of anything else, it is no difference. */
static bool is_bare_state_dir(const compare *c, const char *root, const char *rel)
{
    if (!c->skip_state || strcmp(rel, STATE_DIR) != 0)
        return false;
    char *dir = path_join(root, rel);
    size_t n;
    char **names = list_dir(dir, &n);
    bool bare = names != NULL;
    for (size_t i = 0; bare && i < n; i++) {
        char *child = path_join(rel, names[i]);
        bare = is_ignored(c, child);
        free(child);
    }
    if (names != NULL)
        free_names(names, n);
    free(dir);
    return bare;
}

static const char *kind_name(mode_t mode)
{
    return S_ISDIR(mode) ? "directory" : S_ISREG(mode) ? "file" : S_ISLNK(mode) ? "symlink" : "special file";
}

__attribute__((format(printf, 2, 3))) static void difference(compare *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line_text[PATH_MAX * 3];
    vsnprintf(line_text, sizeof line_text, fmt, ap);
    va_end(ap);
    text_printf(c->out, INDENT "%s\n", line_text);
    c->differences++;
}

static void compare_dir(compare *c, const char *rel);

static void compare_files(compare *c, const char *rel, const char *exp, const char *found,
                          const struct stat *se, const struct stat *sf)
{
    size_t le, lf;
    char *te = read_file(exp, &le), *tf = read_file(found, &lf);
    if (te == NULL || tf == NULL) {
        difference(c, "%s: cannot read: %s", rel, strerror(errno));
    } else if (le != lf || memcmp(te, tf, le) != 0) {
        if (memchr(te, '\0', le) || memchr(tf, '\0', lf)) {
            difference(c, "%s: binary content differs (%zu bytes, expected %zu)", rel, lf, le);
        } else {
            difference(c, "%s: content differs:", rel);
            char *la = path_join(c->expected_label, rel), *lb = path_join(c->found_label, rel);
            unified_diff(c->out, la, te, le, lb, tf, lf);
            free(la);
            free(lb);
        }
    }
    if ((se->st_mode & 07777) != (sf->st_mode & 07777))
        difference(c, "%s: mode %04o, expected %04o", rel, (unsigned)(sf->st_mode & 07777),
                   (unsigned)(se->st_mode & 07777));
    free(te);
    free(tf);
}

static void compare_links(compare *c, const char *rel, const char *exp, const char *found)
{
    char te[PATH_MAX], tf[PATH_MAX];
    ssize_t ne = readlink(exp, te, sizeof te - 1), nf = readlink(found, tf, sizeof tf - 1);
    if (ne < 0 || nf < 0) {
        difference(c, "%s: cannot read the link: %s", rel, strerror(errno));
        return;
    }
    te[ne] = tf[nf] = '\0';
    if (strcmp(te, tf) != 0)
        difference(c, "%s: symlink to \"%s\", expected \"%s\"", rel, tf, te);
}

static void compare_entry(compare *c, const char *rel)
{
    char *exp = path_join(c->expected_root, rel), *found = path_join(c->found_root, rel);
    struct stat se, sf;
    if (lstat(exp, &se) != 0 || lstat(found, &sf) != 0)
        difference(c, "%s: cannot stat: %s", rel, strerror(errno));
    else if ((se.st_mode & S_IFMT) != (sf.st_mode & S_IFMT))
        difference(c, "%s: a %s, expected a %s", rel, kind_name(sf.st_mode), kind_name(se.st_mode));
    else if (S_ISDIR(se.st_mode))
        compare_dir(c, rel);
    else if (S_ISLNK(se.st_mode))
        compare_links(c, rel, exp, found);
    else if (S_ISREG(se.st_mode))
        compare_files(c, rel, exp, found, &se, &sf);
    free(exp);
    free(found);
}

/* An entry on one side only. */
static void one_side_only(compare *c, const char *rel, bool expected)
{
    const char *root = expected ? c->expected_root : c->found_root;
    if (is_ignored(c, rel) || is_bare_state_dir(c, root, rel))
        return;
    char *p = path_join(root, rel);
    struct stat st;
    const char *kind = lstat(p, &st) == 0 ? kind_name(st.st_mode) : "entry";
    if (expected)
        difference(c, "%s: missing (%s/ has a %s here)", rel, c->expected_label, kind);
    else
        difference(c, "%s: unexpected %s (not in %s/)", rel, kind, c->expected_label);
    free(p);
}

static void compare_dir(compare *c, const char *rel)
{
    char *exp = path_join(c->expected_root, rel), *found = path_join(c->found_root, rel);
    size_t ne = 0, nf = 0;
    char **e = list_dir(exp, &ne), **f = list_dir(found, &nf);
    if (e == NULL || f == NULL) {
        difference(c, "%s: cannot list: %s", rel[0] ? rel : ".", strerror(errno));
        ne = e ? ne : 0;
        nf = f ? nf : 0;
    }
    for (size_t i = 0, j = 0; i < ne || j < nf;) {
        int order = i == ne ? 1 : j == nf ? -1 : strcmp(e[i], f[j]);
        char *child = rel[0] ? path_join(rel, order <= 0 ? e[i] : f[j])
                             : xstrdup(order <= 0 ? e[i] : f[j]);
        if (order < 0)
            one_side_only(c, child, true);
        else if (order > 0)
            one_side_only(c, child, false);
        else if (!is_ignored(c, child))
            compare_entry(c, child);
        i += order <= 0;
        j += order >= 0;
        free(child);
    }
    if (e != NULL)
        free_names(e, ne);
    if (f != NULL)
        free_names(f, nf);
    free(exp);
    free(found);
}

/* Compares the trees; the differences go to out. True when there are none. */
static bool same_tree(const char *expected_root, const char *expected_label, const char *found_root,
                      const char *found_label, bool skip_state, text *out)
{
    compare c = {expected_root, found_root, expected_label, found_label, skip_state, out, 0};
    compare_dir(&c, "");
    return c.differences == 0;
}

/* ---- case.json ------------------------------------------------------------- */

typedef struct fixture_case {
    char *from, *to; /* NULL: unbounded */
    bool expect_failure;
    char *failed_id, *error_contains;
    cJSON *outcomes; /* {"id": "outcome name"} expected of the first run, or NULL */
    cJSON *logs;     /* ["text", ...]: each in one of the first run's log lines, or NULL */
} fixture_case;

static void case_free(fixture_case *fc)
{
    free(fc->from);
    free(fc->to);
    free(fc->failed_id);
    free(fc->error_contains);
    cJSON_Delete(fc->outcomes);
    cJSON_Delete(fc->logs);
}

/* A string member, or NULL for null; false (with why) for anything else. */
static bool case_string(const cJSON *item, bool null_ok, char **out, text *why)
{
    if (cJSON_IsNull(item) && null_ok)
        return true;
    if (!cJSON_IsString(item)) {
        text_printf(why, "case.json: \"%s\" must be a string%s", item->string,
                    null_ok ? " or null" : "");
        return false;
    }
    *out = xstrdup(item->valuestring);
    return true;
}

static bool is_outcome_name(const char *name)
{
    for (int o = MIGRATE_PENDING; o <= MIGRATE_NOT_RUN; o++)
        if (strcmp(name, migrate_outcome_name((migrate_outcome)o)) == 0)
            return true;
    return false;
}

static bool case_outcomes(const cJSON *item, fixture_case *fc, text *why)
{
    const cJSON *each = cJSON_IsObject(item) ? item->child : NULL;
    for (; each != NULL; each = each->next)
        if (!cJSON_IsString(each) || !is_outcome_name(each->valuestring))
            break;
    if (!cJSON_IsObject(item) || each != NULL) {
        text_printf(why, "case.json: \"outcomes\" must map ids to \"applied\", "
                         "\"skipped_state\", \"skipped_check\", \"failed\" or \"not_run\"");
        return false;
    }
    fc->outcomes = cJSON_Duplicate(item, true);
    return fc->outcomes != NULL || (text_printf(why, "out of memory"), false);
}

static bool case_logs(const cJSON *item, fixture_case *fc, text *why)
{
    const cJSON *each = cJSON_IsArray(item) ? item->child : NULL;
    while (each != NULL && cJSON_IsString(each) && each->valuestring[0] != '\0')
        each = each->next;
    if (!cJSON_IsArray(item) || each != NULL) {
        text_printf(why, "case.json: \"logs\" must be an array of non-empty strings");
        return false;
    }
    fc->logs = cJSON_Duplicate(item, true);
    return fc->logs != NULL || (text_printf(why, "out of memory"), false);
}

static bool case_member(const cJSON *item, fixture_case *fc, text *why)
{
    const char *key = item->string;
    if (strcmp(key, "from") == 0)
        return case_string(item, true, &fc->from, why);
    if (strcmp(key, "to") == 0)
        return case_string(item, true, &fc->to, why);
    if (strcmp(key, "failed_id") == 0)
        return case_string(item, false, &fc->failed_id, why);
    if (strcmp(key, "error_contains") == 0)
        return case_string(item, false, &fc->error_contains, why);
    if (strcmp(key, "description") == 0) {
        char *ignored = NULL;
        bool ok = case_string(item, false, &ignored, why);
        free(ignored);
        return ok;
    }
    if (strcmp(key, "outcomes") == 0)
        return case_outcomes(item, fc, why);
    if (strcmp(key, "logs") == 0)
        return case_logs(item, fc, why);
    if (strcmp(key, "expect") == 0) {
        const char *v = cJSON_GetStringValue(item);
        fc->expect_failure = v != NULL && strcmp(v, "failed") == 0;
        if (v != NULL && (strcmp(v, "ok") == 0 || fc->expect_failure))
            return true;
        text_printf(why, "case.json: \"expect\" must be \"ok\" or \"failed\"");
        return false;
    }
    text_printf(why, "case.json: unknown key \"%s\" (known: from, to, expect, failed_id, "
                     "error_contains, outcomes, logs, description)", key);
    return false;
}

static bool case_check(const cJSON *root, const fixture_case *fc, text *why)
{
    const char *missing = !cJSON_HasObjectItem(root, "from") ? "from"
                          : !cJSON_HasObjectItem(root, "to") ? "to"
                                                             : NULL;
    if (missing != NULL)
        text_printf(why, "case.json: \"%s\" is missing (null means unbounded)", missing);
    else if (fc->expect_failure && (fc->failed_id == NULL || fc->error_contains == NULL))
        text_printf(why, "case.json: \"expect\": \"failed\" needs \"failed_id\" and \"error_contains\"");
    else if (!fc->expect_failure && (fc->failed_id != NULL || fc->error_contains != NULL))
        text_printf(why, "case.json: \"failed_id\" and \"error_contains\" need \"expect\": \"failed\"");
    else
        return true;
    return false;
}

static bool case_load(const char *path, fixture_case *fc, text *why)
{
    size_t len;
    char *data = read_file(path, &len);
    if (data == NULL)
        return fail_errno(why, "cannot read", path);
    cJSON *root = cJSON_Parse(data);
    free(data);
    bool ok = cJSON_IsObject(root);
    if (!ok)
        text_printf(why, "case.json: not a JSON object");
    for (const cJSON *item = ok ? root->child : NULL; ok && item != NULL; item = item->next)
        ok = case_member(item, fc, why);
    ok = ok && case_check(root, fc, why);
    cJSON_Delete(root);
    return ok;
}

/* ---- one fixture ------------------------------------------------------------- */

typedef struct harness {
    const char *migrations; /* the repository's tree, or --migrations */
    bool verbose;
    char *coverage_root;    /* realpath of --require-coverage DIR, or NULL */
    char **covered;         /* ids that ended applied in a first run there */
    size_t ncovered;
} harness;

typedef struct fixture {
    harness *h;
    const char *name;
    char *before, *after, *case_path, *migrations;
    fixture_case fc;
    char *tmp, *home, *dry_home, *preview_home, *rehearsed_home;
    text why;     /* the reason, one line */
    text detail;  /* indented lines under it: errors, differences */
    text summary; /* what the first run did, for the PASS line */
    text logs;    /* the log lines of the run in progress, one per line */
} fixture;

static int on_event(const migrate_event *ev, void *payload)
{
    fixture *f = payload;
    if (ev->kind == MIGRATE_EVENT_LOG)
        text_printf(&f->logs, "%s\n", ev->message);
    if (!f->h->verbose)
        return 0;
    if (ev->kind == MIGRATE_EVENT_DONE)
        printf(INDENT "[%s] %s: %s\n", f->name, ev->migration->id,
               migrate_outcome_name(ev->migration->outcome));
    else if (ev->kind == MIGRATE_EVENT_LOG)
        printf(INDENT "[%s]   log: %s\n", f->name, ev->message);
    else if (ev->kind == MIGRATE_EVENT_WARNING)
        printf(INDENT "[%s] warning: %s\n", f->name, ev->message);
    return 0;
}

static int run_once_with(fixture *f, const char *home, const char *run, bool dry_run,
                         bool rehearse, migrate_report **report)
{
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = f->migrations;
    o.home = home;
    o.dry_run = dry_run;
    o.rehearse = rehearse;
    o.timeout_ms = CALL_TIMEOUT_MS;
    o.on_event = on_event;
    o.payload = f;
    f->logs.len = 0;
    if (f->logs.data != NULL)
        f->logs.data[0] = '\0';
    if (f->h->verbose)
        printf(INDENT "[%s] %s\n", f->name, run);
    *report = NULL;
    return migrate_run(f->fc.from, f->fc.to, &o, report);
}

static int run_once(fixture *f, const char *home, const char *run, bool dry_run,
                    migrate_report **report)
{
    return run_once_with(f, home, run, dry_run, false, report);
}

/* Why the run did not succeed: the failed migration's error, or the
 * run-level one. */
static void explain_failure(fixture *f, int rc, const migrate_report *r)
{
    const migrate_result *failed = migrate_report_failed(r);
    const char *err = failed ? failed->error : migrate_report_error(r);
    if (failed != NULL)
        text_printf(&f->why, "%s failed", failed->id);
    else
        text_printf(&f->why, "%s", migrate_strerror(rc));
    text_add_indented(&f->detail, INDENT, err ? err : "(no message)");
}

static bool expect_failure_at(fixture *f, int rc, const migrate_report *r, const char *run)
{
    const migrate_result *failed = migrate_report_failed(r);
    if (rc == MIGRATE_OK) {
        text_printf(&f->why, "the %s succeeded; expected %s to fail", run, f->fc.failed_id);
        return false;
    }
    if (failed == NULL || strcmp(failed->id, f->fc.failed_id) != 0) {
        text_printf(&f->why, "the %s: expected %s to fail, but ", run, f->fc.failed_id);
        explain_failure(f, rc, r);
        return false;
    }
    if (strstr(failed->error ? failed->error : "", f->fc.error_contains) == NULL) {
        text_printf(&f->why, "the %s: the error of %s does not contain \"%s\"", run, failed->id,
                    f->fc.error_contains);
        text_add_indented(&f->detail, INDENT, failed->error ? failed->error : "(no message)");
        return false;
    }
    return true;
}

/* The result the fixture expects: success, or failure at failed_id. */
static bool expect_result(fixture *f, int rc, const migrate_report *r, const char *run)
{
    if (f->fc.expect_failure)
        return expect_failure_at(f, rc, r, run);
    if (rc == MIGRATE_OK)
        return true;
    text_printf(&f->why, "the %s failed: ", run);
    explain_failure(f, rc, r);
    return false;
}

static bool home_matches_after(fixture *f, const char *when)
{
    if (same_tree(f->after, "after", f->home, "home", true, &f->detail))
        return true;
    text_printf(&f->why, "%s, the home differs from after/:", when);
    return false;
}

static void note_coverage(fixture *f, const migrate_report *r)
{
    harness *h = f->h;
    char *real = realpath(f->migrations, NULL);
    bool repository = h->coverage_root != NULL && real != NULL && strcmp(real, h->coverage_root) == 0;
    free(real);
    for (size_t i = 0; repository && i < migrate_report_count(r); i++) {
        const migrate_result *m = migrate_report_get(r, i);
        if (m->outcome != MIGRATE_APPLIED)
            continue;
        h->covered = xrealloc(h->covered, (h->ncovered + 1) * sizeof *h->covered);
        h->covered[h->ncovered++] = xstrdup(m->id);
    }
}

static void summarise(fixture *f, const migrate_report *r)
{
    size_t counts[MIGRATE_NOT_RUN + 1] = {0};
    for (size_t i = 0; i < migrate_report_count(r); i++)
        counts[migrate_report_get(r, i)->outcome]++;
    text_printf(&f->summary, "%zu migration%s", migrate_report_count(r),
                migrate_report_count(r) == 1 ? "" : "s");
    for (int o = MIGRATE_APPLIED; o <= MIGRATE_NOT_RUN; o++)
        if (counts[o] > 0)
            text_printf(&f->summary, ", %zu %s", counts[o], migrate_outcome_name((migrate_outcome)o));
}

/* Each outcome case.json names is the one the first run ended with. */
static bool expect_outcomes(fixture *f, const migrate_report *r)
{
    const cJSON *want = f->fc.outcomes ? f->fc.outcomes->child : NULL;
    for (; want != NULL; want = want->next) {
        const migrate_result *m = NULL;
        for (size_t i = 0; m == NULL && i < migrate_report_count(r); i++)
            if (strcmp(migrate_report_get(r, i)->id, want->string) == 0)
                m = migrate_report_get(r, i);
        if (m != NULL && strcmp(migrate_outcome_name(m->outcome), want->valuestring) == 0)
            continue;
        if (m == NULL)
            text_printf(&f->why, "the first run: %s (in case.json \"outcomes\") is not in its plan",
                        want->string);
        else
            text_printf(&f->why, "the first run: %s ended %s, case.json expects %s", m->id,
                        migrate_outcome_name(m->outcome), want->valuestring);
        return false;
    }
    return true;
}

/* Each text case.json lists under "logs" is in a log line of the run. */
static bool expect_logs(fixture *f)
{
    const cJSON *want = f->fc.logs ? f->fc.logs->child : NULL;
    for (; want != NULL; want = want->next) {
        if (strstr(text_str(&f->logs), want->valuestring) != NULL)
            continue;
        text_printf(&f->why, "the first run logged no line containing \"%s\" (case.json \"logs\")",
                    want->valuestring);
        text_add_indented(&f->detail, INDENT, f->logs.len ? text_str(&f->logs) : "(no log lines)");
        return false;
    }
    return true;
}

static bool step_first_run(fixture *f)
{
    if (!copy_tree(f->before, f->home, &f->why))
        return false;
    migrate_report *r;
    int rc = run_once(f, f->home, "first run", false, &r);
    note_coverage(f, r);
    summarise(f, r);
    if (rc == MIGRATE_OK && migrate_report_count(r) == 0) {
        /* Most likely a from/to that misses the migration meant. */
        text_printf(&f->why, "no migration is in range from %s to %s, so this fixture proves "
                             "nothing", f->fc.from ? f->fc.from : "null", f->fc.to ? f->fc.to : "null");
        migrate_report_free(r);
        return false;
    }
    bool ok = expect_result(f, rc, r, "first run") && expect_outcomes(f, r) && expect_logs(f) &&
              home_matches_after(f, "after the first run");
    migrate_report_free(r);
    return ok;
}

/* Every migration of the run ended `want`; else why names the first that
 * did not, and how. */
static bool all_ended(fixture *f, const migrate_report *r, migrate_outcome want, const char *run)
{
    for (size_t i = 0; i < migrate_report_count(r); i++) {
        const migrate_result *m = migrate_report_get(r, i);
        if (m->outcome == want)
            continue;
        text_printf(&f->why, "the %s: %s ended %s, expected %s", run, m->id,
                    migrate_outcome_name(m->outcome), migrate_outcome_name(want));
        if (m->error != NULL)
            text_add_indented(&f->detail, INDENT, m->error);
        return false;
    }
    return true;
}

static bool step_rerun_with_state(fixture *f)
{
    migrate_report *r;
    const char *run = "second run (state kept)";
    int rc = run_once(f, f->home, run, false, &r);
    bool ok = f->fc.expect_failure ? expect_failure_at(f, rc, r, run)
                                   : expect_result(f, rc, r, run) &&
                                         all_ended(f, r, MIGRATE_SKIPPED_STATE, run);
    migrate_report_free(r);
    return ok && home_matches_after(f, "after the second run (state kept)");
}

/* The first migration that did not end skipped_check has a check() that
 * does not recognise its own effect once the upgrade is complete. */
static bool explain_inexact_check(fixture *f, const migrate_report *r)
{
    for (size_t i = 0; i < migrate_report_count(r); i++) {
        const migrate_result *m = migrate_report_get(r, i);
        if (m->outcome == MIGRATE_SKIPPED_CHECK)
            continue;
        text_printf(&f->why, "the check() of %s is inexact:", m->id);
        text_printf(&f->detail, INDENT "run again on the upgraded home with the state deleted, ");
        if (m->outcome == MIGRATE_APPLIED)
            text_printf(&f->detail, "it returned false,\n" INDENT "so its migrate() ran again");
        else if (m->outcome == MIGRATE_FAILED)
            text_printf(&f->detail, "it did not return true\n" INDENT "and the run failed there");
        else
            text_printf(&f->detail, "the migration ended\n" INDENT "%s",
                        migrate_outcome_name(m->outcome));
        text_printf(&f->detail, " (expected skipped_check: check() must return true\n" INDENT
                                "whenever its own change is there, also after later migrations)\n");
        if (m->error != NULL)
            text_add_indented(&f->detail, INDENT, m->error);
        return false;
    }
    return true;
}

static bool step_rerun_without_state(fixture *f)
{
    char *state = path_join(f->home, STATE_REL);
    if (unlink(state) != 0 && errno != ENOENT) {
        fail_errno(&f->why, "cannot delete", state);
        free(state);
        return false;
    }
    free(state);
    migrate_report *r;
    int rc = run_once(f, f->home, "third run (state deleted)", false, &r);
    bool ok = explain_inexact_check(f, r) &&
              expect_result(f, rc, r, "third run (state deleted)");
    migrate_report_free(r);
    return ok && home_matches_after(f, "after the third run (state deleted)");
}

static bool step_dry_run(fixture *f)
{
    if (!copy_tree(f->before, f->dry_home, &f->why))
        return false;
    migrate_report *r;
    int rc = run_once(f, f->dry_home, "dry run", true, &r);
    bool ok = true;
    if (rc != MIGRATE_OK && !f->fc.expect_failure) {
        text_printf(&f->why, "the dry run on before/ failed: ");
        explain_failure(f, rc, r);
        ok = false;
    }
    migrate_report_free(r);
    if (ok && !same_tree(f->before, "before", f->dry_home, "home", false, &f->detail)) {
        text_printf(&f->why, "the dry run on before/ wrote to the home:");
        ok = false;
    }
    return ok;
}

/* ---- the preview: its changes, applied, give after/ ------------------------ */

/* The lines of s (each with its '\n', if any). */
typedef struct lines {
    const char **at;
    size_t *len;
    size_t n;
} lines;

static lines split(const char *s, size_t n)
{
    lines l = {NULL, NULL, 0};
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (s + i)) + 1 : n - i;
        l.at = xrealloc(l.at, (l.n + 1) * sizeof *l.at);
        l.len = xrealloc(l.len, (l.n + 1) * sizeof *l.len);
        l.at[l.n] = s + i;
        l.len[l.n++] = len;
        i += len;
    }
    return l;
}

/* Applies a unified diff to old (the whole file), checking every context
 * and removed line against it, as patch does without fuzz: the new text, or
 * NULL with *why. The diff's own "\ No newline at end of file" marks say
 * where a last line has no '\n'. */
static char *apply_diff(const char *old, size_t old_len, const char *diff, size_t *new_len,
                        text *why)
{
    lines o = split(old, old_len), d = split(diff, strlen(diff));
    text out = {NULL, 0, 0};
    text_add(&out, "", 0);
    size_t pos = 0;
    bool ok = true;
    for (size_t k = 0; ok && k < d.n; k++) {
        const char *l = d.at[k];
        size_t n = d.len[k];
        if (strncmp(l, "--- ", 4) == 0 || strncmp(l, "+++ ", 4) == 0)
            continue;
        if (strncmp(l, "@@ -", 4) == 0) {
            unsigned long a = strtoul(l + 4, NULL, 10);
            const char *comma = memchr(l, ',', n);
            unsigned long count = comma ? strtoul(comma + 1, NULL, 10) : 1;
            size_t start = count == 0 ? a : a - 1;
            if (start < pos || start > o.n) {
                text_printf(why, "a hunk starts at line %lu, outside the file", a);
                ok = false;
                break;
            }
            for (; pos < start; pos++)
                text_add(&out, o.at[pos], o.len[pos]);
            continue;
        }
        if (l[0] == '\\')
            continue; /* "\\ No newline at end of file": read with the line before */
        /* An op, the line without its '\n', the diff's '\n'; the file's
         * line has that '\n' too unless a "\\ No newline" mark follows. */
        bool no_nl = k + 1 < d.n && d.at[k + 1][0] == '\\';
        size_t body = n >= 2 ? n - 2 : 0;
        if (l[0] == '+') {
            text_add(&out, l + 1, body);
            if (!no_nl)
                text_add(&out, "\n", 1);
            continue;
        }
        if ((l[0] != ' ' && l[0] != '-') || pos >= o.n || o.len[pos] != body + !no_nl ||
            memcmp(o.at[pos], l + 1, body) != 0) {
            text_printf(why, "line %zu of the file does not match the diff's \"%.*s\"", pos + 1,
                        (int)body, l + 1);
            ok = false;
            break;
        }
        if (l[0] == ' ')
            text_add(&out, o.at[pos], o.len[pos]);
        pos++;
    }
    for (; ok && pos < o.n; pos++)
        text_add(&out, o.at[pos], o.len[pos]);
    free(o.at);
    free(o.len);
    free(d.at);
    free(d.len);
    if (!ok) {
        free(out.data);
        return NULL;
    }
    *new_len = out.len;
    return out.data;
}

static bool write_whole(const char *path, const char *data, size_t len, int mode, text *why)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && (len == 0 || write(fd, data, len) == (ssize_t)len) &&
              fchmod(fd, (mode_t)mode) == 0;
    if (!ok)
        fail_errno(why, "cannot write", path);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A created or modified file: its new bytes from the diff (or the source
 * of the copy that made it). */
static bool apply_file_change(const migrate_change *c, text *why)
{
    size_t old_len = 0, new_len = 0;
    char *old = NULL, *new_text = NULL;
    if (c->from != NULL) {
        new_text = read_file(c->from, &new_len);
        if (new_text == NULL)
            return fail_errno(why, "cannot read the copy's source", c->from);
    } else {
        if (c->kind == MIGRATE_CHANGE_MODIFIED && (old = read_file(c->path, &old_len)) == NULL)
            return fail_errno(why, "cannot read", c->path);
        if (c->diff != NULL) {
            new_text = apply_diff(old ? old : "", old_len, c->diff, &new_len, why);
        } else if (c->size == (c->kind == MIGRATE_CHANGE_MODIFIED ? old_len : 0)) {
            new_text = old ? old : xstrdup(""); /* same bytes (a new mode), or empty */
            new_len = old_len;
            old = NULL;
        } else {
            text_printf(why, "the change of %s has no diff (binary, or over %zu bytes): the "
                             "preview cannot be checked against after/", c->path,
                        (size_t)MIGRATE_MAX_DIFF_BYTES);
        }
    }
    bool ok = new_text != NULL && write_whole(c->path, new_text, new_len, c->mode, why);
    free(old);
    free(new_text);
    return ok;
}

static bool apply_change(const migrate_change *c, text *why)
{
    bool ok = true;
    switch (c->kind) {
    case MIGRATE_CHANGE_CREATED:
        if (strcmp(c->type, "dir") == 0)
            ok = (mkdir(c->path, 0700) == 0 && chmod(c->path, (mode_t)c->mode) == 0) ||
                 fail_errno(why, "cannot make the directory", c->path);
        else if (strcmp(c->type, "link") == 0)
            ok = symlink(c->target, c->path) == 0 ||
                 fail_errno(why, "cannot make the symlink", c->path);
        else
            ok = apply_file_change(c, why);
        break;
    case MIGRATE_CHANGE_MODIFIED:
        ok = apply_file_change(c, why);
        break;
    case MIGRATE_CHANGE_REMOVED:
        remove_tree(c->path);
        break;
    case MIGRATE_CHANGE_RENAMED:
        ok = rename(c->from, c->path) == 0 || fail_errno(why, "cannot rename", c->from);
        break;
    case MIGRATE_CHANGE_MODE:
        ok = chmod(c->path, (mode_t)c->mode) == 0 || fail_errno(why, "cannot chmod", c->path);
        break;
    }
    return ok;
}

/* The preview (dry_run with rehearse) on a copy of before/: the result the
 * fixture expects, nothing written, and its changes, applied in order to
 * before/, give after/ exactly: the rehearsal's view is faithful. */
static bool step_preview(fixture *f)
{
    if (!copy_tree(f->before, f->preview_home, &f->why))
        return false;
    migrate_report *r;
    int rc = run_once_with(f, f->preview_home, "preview", true, true, &r);
    bool ok = expect_result(f, rc, r, "preview");
    if (ok && !same_tree(f->before, "before", f->preview_home, "home", false, &f->detail)) {
        text_printf(&f->why, "the preview wrote to the home:");
        ok = false;
    }
    for (size_t i = 0; ok && i < migrate_report_count(r); i++)
        for (size_t j = 0; ok && j < migrate_result_change_count(r, i); j++) {
            const migrate_change *c = migrate_result_change(r, i, j);
            text why = {NULL, 0, 0};
            if (!apply_change(c, &why)) {
                text_printf(&f->why, "the preview's change %zu of %s (%s %s) does not apply: %s",
                            j + 1, migrate_report_get(r, i)->id, migrate_change_kind_name(c->kind),
                            c->path, text_str(&why));
                ok = false;
            }
            free(why.data);
        }
    migrate_report_free(r);
    if (ok && !same_tree(f->after, "after", f->preview_home, "before + the preview's changes",
                         true, &f->detail)) {
        text_printf(&f->why, "the preview's changes, applied to before/, do not give after/:");
        ok = false;
    }
    return ok;
}

/* A real run with rehearse on a copy of before/: the same tree as without
 * (after/); or, for a fixture whose migration fails, refused by its
 * rehearsal with nothing at all written (before/, not even a state file). */
static bool step_rehearsed_run(fixture *f)
{
    if (!copy_tree(f->before, f->rehearsed_home, &f->why))
        return false;
    migrate_report *r;
    const char *run = "run with rehearse";
    int rc = run_once_with(f, f->rehearsed_home, run, false, true, &r);
    bool ok = expect_result(f, rc, r, run);
    const migrate_result *failed = migrate_report_failed(r);
    if (ok && f->fc.expect_failure && (failed == NULL || !failed->rehearsal)) {
        text_printf(&f->why, "the %s: the failure is not marked as the rehearsal's", run);
        ok = false;
    }
    migrate_report_free(r);
    const char *want = f->fc.expect_failure ? f->before : f->after;
    if (ok && !same_tree(want, f->fc.expect_failure ? "before" : "after", f->rehearsed_home,
                         "home", !f->fc.expect_failure, &f->detail)) {
        text_printf(&f->why, f->fc.expect_failure
                                 ? "the %s was refused, but the home differs from before/:"
                                 : "after the %s, the home differs from after/:", run);
        ok = false;
    }
    return ok;
}

static bool fixture_paths(fixture *f, const char *dir)
{
    if (!is_dir(dir)) {
        text_printf(&f->why, "%s is not a directory", dir);
        return false;
    }
    f->before = path_join(dir, "before");
    f->after = path_join(dir, "after");
    f->case_path = path_join(dir, "case.json");
    char *own = path_join(dir, "migrations");
    f->migrations = is_dir(own) ? own : xstrdup(f->h->migrations);
    if (is_dir(own))
        own = NULL;
    free(own);
    const char *missing = !is_dir(f->before) ? "before/" : !is_dir(f->after) ? "after/" : NULL;
    if (missing != NULL) {
        text_printf(&f->why, "%s is missing (an empty home is a directory holding a %s file)",
                    missing, KEEP_MARKER);
        return false;
    }
    return case_load(f->case_path, &f->fc, &f->why);
}

static bool fixture_tmp(fixture *f)
{
    const char *base = getenv("TMPDIR");
    char *templ = path_join(base && *base ? base : "/tmp", "migrate-fixture.XXXXXX");
    if (mkdtemp(templ) == NULL) {
        fail_errno(&f->why, "cannot create a temporary directory in", base ? base : "/tmp");
        free(templ);
        return false;
    }
    /* The library resolves links when confining paths: give it the real one. */
    f->tmp = realpath(templ, NULL);
    if (f->tmp == NULL)
        f->tmp = xstrdup(templ);
    free(templ);
    f->home = path_join(f->tmp, "home");
    f->dry_home = path_join(f->tmp, "dry-run-home");
    f->preview_home = path_join(f->tmp, "preview-home");
    f->rehearsed_home = path_join(f->tmp, "rehearsed-home");
    return true;
}

static bool fixture_steps(fixture *f, const char *dir)
{
    if (!fixture_paths(f, dir) || !fixture_tmp(f))
        return false;
    return step_first_run(f) && step_rerun_with_state(f) &&
           (f->fc.expect_failure || step_rerun_without_state(f)) && step_dry_run(f) &&
           step_preview(f) && step_rehearsed_run(f);
}

/* Removes the temporary homes and frees what the fixture holds. */
static void fixture_free(fixture *f)
{
    if (f->tmp != NULL)
        remove_tree(f->tmp);
    case_free(&f->fc);
    char *paths[] = {f->before, f->after, f->case_path, f->migrations,
                     f->tmp,    f->home,  f->dry_home, f->preview_home, f->rehearsed_home};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        free(paths[i]);
    free(f->why.data);
    free(f->detail.data);
    free(f->summary.data);
    free(f->logs.data);
}

static void strip_slashes(char *s)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
}

/* The last component of dir, trailing slashes dropped (in place). */
static const char *base_name(char *dir)
{
    strip_slashes(dir);
    const char *slash = strrchr(dir, '/');
    return slash && slash[1] ? slash + 1 : dir;
}

/* Runs one fixture and prints its PASS or FAIL line. */
static bool run_fixture(harness *h, const char *dir)
{
    char *path = xstrdup(dir);
    const char *name = base_name(path);
    fixture f = {.h = h, .name = name};
    bool ok = fixture_steps(&f, path);
    if (ok && f.fc.expect_failure)
        printf("PASS %s (%s; failed at %s as expected)\n", name, text_str(&f.summary),
               f.fc.failed_id);
    else if (ok)
        printf("PASS %s (%s)\n", name, text_str(&f.summary));
    else
        printf("FAIL %s: %s\n%s", name, text_str(&f.why), text_str(&f.detail));
    fflush(stdout);
    fixture_free(&f);
    free(path);
    return ok;
}

/* ---- coverage --------------------------------------------------------------- */

static bool is_covered(const harness *h, const char *id)
{
    for (size_t i = 0; i < h->ncovered; i++)
        if (strcmp(h->covered[i], id) == 0)
            return true;
    return false;
}

/* Every migration under dir ended applied in the first run of a fixture
 * that uses dir; prints one line per one that did not. */
static bool check_coverage(const harness *h, const char *dir)
{
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = dir;
    migrate_report *r = NULL;
    int rc = migrate_discover(NULL, NULL, &o, &r);
    size_t uncovered = 0, n = migrate_report_count(r);
    if (rc != MIGRATE_OK)
        printf("FAIL coverage: cannot list %s: %s\n", dir,
               migrate_report_error(r) ? migrate_report_error(r) : migrate_strerror(rc));
    for (size_t i = 0; rc == MIGRATE_OK && i < n; i++) {
        const migrate_result *m = migrate_report_get(r, i);
        if (is_covered(h, m->id))
            continue;
        printf("FAIL coverage: %s has no fixture:\n" INDENT "add tests/fixtures/<name>/ with "
               "before/, after/ and case.json, without a\n" INDENT "migrations/ of its own, "
               "in which it ends applied\n",
               m->path);
        uncovered++;
    }
    if (rc == MIGRATE_OK && uncovered == 0)
        printf("coverage: each of the %zu migration%s under %s ends applied in a fixture\n", n,
               n == 1 ? "" : "s", dir);
    migrate_report_free(r);
    return rc == MIGRATE_OK && uncovered == 0;
}

/* ---- main ------------------------------------------------------------------- */

static int usage(void)
{
    fputs("usage: migrate-fixture [--migrations DIR] [--require-coverage DIR] [--verbose] "
          "FIXTURE_DIR...\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    harness h = {.migrations = "migrations"};
    char *migrations = NULL, *coverage_dir = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--migrations") == 0 && i + 1 < argc)
            migrations = argv[++i];
        else if (strcmp(argv[i], "--require-coverage") == 0 && i + 1 < argc)
            coverage_dir = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0)
            h.verbose = true;
        else
            return usage();
    }
    if (i == argc && coverage_dir == NULL)
        return usage();
    /* "migrations/" must name its scripts "migrations/v1.1.0/...", not "//". */
    if (migrations != NULL) {
        strip_slashes(migrations);
        h.migrations = migrations;
    }
    if (coverage_dir != NULL)
        strip_slashes(coverage_dir);
    if (coverage_dir != NULL && (h.coverage_root = realpath(coverage_dir, NULL)) == NULL) {
        fprintf(stderr, "migrate-fixture: %s: %s\n", coverage_dir, strerror(errno));
        return 2;
    }
    int passed = 0, failed = 0;
    for (; i < argc; i++)
        run_fixture(&h, argv[i]) ? passed++ : failed++;
    bool covered = coverage_dir == NULL || check_coverage(&h, coverage_dir);
    printf("%d passed, %d failed\n", passed, failed);
    for (size_t k = 0; k < h.ncovered; k++)
        free(h.covered[k]);
    free(h.covered);
    free(h.coverage_root);
    return failed == 0 && covered ? 0 : 1;
}
