/*
 * demo.c - a small update executor: runs migrations the way a daemon would
 * and shows the progress it receives through the event callback, on an
 * 80-column terminal.
 *
 *   migrate-demo [--dry-run] [--json] [--migrations DIR] [--home DIR] FROM [TO]
 *
 * FROM and TO are versions ("-" for unbounded). Exit status: 0 when the run
 * succeeded, 1 when it did not, 2 on a usage error.
 */
#include "migrate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLUMNS 80
#define ID_WIDTH 36 /* "v1.1.0/001_rename_config_key" and a little more */

/* What the callback keeps between events: a script's log lines wait for
 * its outcome, so that each migration reads as one line with its log
 * under it. */
typedef struct progress {
    size_t counts[MIGRATE_NOT_RUN + 1];
    double seconds;
    char **log;
    size_t nlog;
    int phase; /* 0: none yet; 1: the rehearsal's events; 2: the real run's */
} progress;

/* Prints text indented, broken at spaces so no line passes COLUMNS; a word
 * longer than a line is split rather than cut. A traceback's tabs become
 * two spaces each, since a terminal's tab width is not ours to know. */
static void print_wrapped(const char *text, int indent)
{
    while (*text != '\0') {
        int tabs = 0;
        while (text[tabs] == '\t')
            tabs++;
        text += tabs;
        size_t width = (size_t)(COLUMNS - indent - 2 * tabs);
        size_t n = strcspn(text, "\n");
        if (n > width) {
            n = width;
            while (n > 0 && text[n] != ' ')
                n--;
            if (n == 0)
                n = width;
        }
        printf("%*s%.*s\n", indent + 2 * tabs, "", (int)n, text);
        text += n;
        text += *text == ' ' || *text == '\n';
    }
}

static const char *level_name(int level)
{
    return level == MIGRATE_LOG_ERROR ? "error" : level == MIGRATE_LOG_WARN ? "warn" : "info";
}

static void keep_log(progress *p, const migrate_event *ev)
{
    size_t n = strlen(ev->message) + 8;
    char *line = malloc(n);
    char **grown = realloc(p->log, (p->nlog + 1) * sizeof *p->log);
    if (line == NULL || grown == NULL) {
        free(line);
        if (grown != NULL)
            p->log = grown;
        return;
    }
    snprintf(line, n, "%-5s %s", level_name(ev->level), ev->message);
    p->log = grown;
    p->log[p->nlog++] = line;
}

static void flush_log(progress *p)
{
    for (size_t i = 0; i < p->nlog; i++) {
        print_wrapped(p->log[i], 10);
        free(p->log[i]);
    }
    p->nlog = 0;
}

static void on_start(const migrate_event *ev)
{
    int len = printf("  [%zu/%zu] %s", ev->index + 1, ev->total, ev->migration->id);
    /* A long id gets the outcome on a line of its own rather than a cut. */
    if (len > 2 + 8 + ID_WIDTH)
        printf("\n%*s", 2 + 8 + ID_WIDTH, "");
    else
        printf("%*s", 2 + 8 + ID_WIDTH - len, "");
}

static void on_done(progress *p, const migrate_event *ev)
{
    const migrate_result *m = ev->migration;
    /* Applied in the rehearsal: on the view only, so far. */
    bool rehearsed = ev->rehearsal && m->outcome == MIGRATE_APPLIED;
    p->counts[rehearsed ? MIGRATE_PENDING : m->outcome]++;
    p->seconds += m->seconds;
    printf(" %-13s %8.1f ms\n", rehearsed ? "would apply" : migrate_outcome_name(m->outcome),
           m->seconds * 1000);
    flush_log(p);
    if (m->error != NULL)
        print_wrapped(m->error, 10);
}

/* A run with rehearse sends START and DONE twice: say which pass this is,
 * and count only the last. */
static void note_phase(progress *p, const migrate_event *ev)
{
    if (ev->kind != MIGRATE_EVENT_START)
        return;
    int phase = ev->rehearsal ? 1 : 2;
    if (phase == p->phase)
        return;
    if (phase == 1)
        printf(" rehearsing on a copy-on-write view of the files (nothing is written):\n");
    else if (p->phase == 1)
        printf(" the rehearsal passed; now for real:\n");
    if (p->phase == 1)
        memset(p->counts, 0, sizeof p->counts), p->seconds = 0;
    p->phase = phase;
}

static int on_event(const migrate_event *ev, void *payload)
{
    progress *p = payload;
    note_phase(p, ev);
    switch (ev->kind) {
    case MIGRATE_EVENT_PLAN:
        printf("running %zu migration%s:\n", ev->total, ev->total == 1 ? "" : "s");
        break;
    case MIGRATE_EVENT_START:
        on_start(ev);
        break;
    case MIGRATE_EVENT_LOG:
        keep_log(p, ev);
        break;
    case MIGRATE_EVENT_DONE:
        on_done(p, ev);
        break;
    case MIGRATE_EVENT_WARNING:
        printf("  warning:\n");
        print_wrapped(ev->message, 4);
        break;
    }
    fflush(stdout);
    return 0;
}

/* The migrations in range, before anything runs: what an operator wants
 * to see first. */
static void print_plan(const char *from, const char *to, const migrate_options *opts)
{
    migrate_report *plan = NULL;
    if (migrate_discover(from, to, opts, &plan) == MIGRATE_OK) {
        size_t n = migrate_report_count(plan);
        printf("plan: %zu migration%s from %s to %s\n", n, n == 1 ? "" : "s",
               from ? from : "the start", to ? to : "the newest");
        for (size_t i = 0; i < n; i++)
            printf("  %zu. %s\n", i + 1, migrate_report_get(plan, i)->id);
    }
    migrate_report_free(plan);
}

static void print_summary(const progress *p, int rc, const migrate_report *report)
{
    static const char *const said[] = {
        [MIGRATE_PENDING] = "pending (dry run, or applied in a preview)",
        [MIGRATE_APPLIED] = "applied",
        [MIGRATE_SKIPPED_STATE] = "skipped (recorded)",
        [MIGRATE_SKIPPED_CHECK] = "skipped (check() true)",
        [MIGRATE_FAILED] = "failed",
        [MIGRATE_NOT_RUN] = "not run",
    };
    printf("summary:");
    const char *sep = " ";
    for (int o = MIGRATE_PENDING; o <= MIGRATE_NOT_RUN; o++)
        if (p->counts[o] > 0) {
            printf("%s%zu %s", sep, p->counts[o], said[o]);
            sep = ", ";
        }
    if (sep[0] == ',')
        printf("; %.1f ms in scripts\n", p->seconds * 1000);
    else
        printf(" no migration ran\n");
    if (rc == MIGRATE_OK) {
        printf("result:  ok\n");
        return;
    }
    printf("result:  %s\n", migrate_strerror(rc));
    const migrate_result *failed = migrate_report_failed(report);
    const char *error = migrate_report_error(report);
    /* A failed migration's error was shown under it already. */
    if (error != NULL && (failed == NULL || failed->error == NULL || strcmp(error, failed->error) != 0))
        print_wrapped(error, 9);
}

/* What each migration changed in the rehearsal, with its diffs. */
static void print_changes(const migrate_report *report, const char *home)
{
    size_t home_len = home ? strlen(home) : 0;
    for (size_t i = 0; i < migrate_report_count(report); i++) {
        size_t n = migrate_result_change_count(report, i);
        if (n == 0)
            continue;
        printf("  %s:\n", migrate_report_get(report, i)->id);
        for (size_t j = 0; j < n; j++) {
            const migrate_change *c = migrate_result_change(report, i, j);
            const char *path = c->path;
            /* ~/ for the home, as the scripts wrote it */
            bool in_home = home_len > 0 && strncmp(path, home, home_len) == 0 && path[home_len] == '/';
            printf("    %-9s %s %s%s", migrate_change_kind_name(c->kind), c->type,
                   in_home ? "~" : "", in_home ? path + home_len : path);
            if (c->from != NULL)
                printf(" (from %s%s)", home_len && strncmp(c->from, home, home_len) == 0 ? "~" : "",
                       home_len && strncmp(c->from, home, home_len) == 0 ? c->from + home_len : c->from);
            if (c->target != NULL)
                printf(" -> %s", c->target);
            if (c->kind == MIGRATE_CHANGE_MODE || (c->kind == MIGRATE_CHANGE_MODIFIED && c->old_mode != c->mode))
                printf(" (mode %04o -> %04o)", (unsigned)c->old_mode, (unsigned)c->mode);
            printf("\n");
            for (const char *l = c->diff; l != NULL && *l != '\0';) {
                const char *nl = strchr(l, '\n');
                int len = nl ? (int)(nl - l) : (int)strlen(l);
                printf("      %.*s\n", len, l);
                l += len + (nl != NULL);
            }
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: migrate-demo [--dry-run] [--rehearse] [--json] [--migrations DIR] "
                    "[--home DIR] FROM [TO]\n");
    return 2;
}

int main(int argc, char **argv)
{
    migrate_options opts;
    migrate_options_init(&opts, MIGRATE_OPTIONS_VERSION);
    bool json = false;
    const char *versions[2] = {NULL, NULL};
    int nversions = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            opts.dry_run = true;
        else if (strcmp(argv[i], "--rehearse") == 0)
            opts.rehearse = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--migrations") == 0 && i + 1 < argc)
            opts.migrations_dir = argv[++i];
        else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
            opts.home = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage();
        else if (nversions < 2)
            versions[nversions++] = strcmp(argv[i], "-") == 0 ? NULL : argv[i];
        else
            return usage();
    }
    if (nversions == 0)
        return usage();
    progress p = {{0}, 0, NULL, 0, 0};
    opts.on_event = on_event;
    opts.payload = &p;
    char title[PATH_MAX * 2 + 64];
    snprintf(title, sizeof title, "libmigrate %s: %s%s/ on the home %s", migrate_library_version(),
             opts.dry_run && opts.rehearse ? "a preview of "
             : opts.dry_run                 ? "a dry run of "
             : opts.rehearse                ? "a rehearsed run of "
                                            : "",
             opts.migrations_dir ? opts.migrations_dir : "migrations", opts.home ? opts.home : "$HOME");
    print_wrapped(title, 0);
    print_plan(versions[0], versions[1], &opts);
    migrate_report *report = NULL;
    int rc = migrate_run(versions[0], versions[1], &opts, &report);
    flush_log(&p);
    free(p.log);
    print_summary(&p, rc, report);
    if (opts.rehearse && opts.dry_run) {
        printf("what the upgrade would change:\n");
        print_changes(report, opts.home);
    }
    if (json) {
        char *text = migrate_report_json(report);
        printf("report:\n%s\n", text ? text : "(out of memory)");
        free(text);
    }
    migrate_report_free(report);
    return rc == MIGRATE_OK ? 0 : 1;
}
