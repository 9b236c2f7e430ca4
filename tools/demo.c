/*
 * demo.c - a small update executor: runs migrations the way a daemon would
 * and shows the progress it receives through the event callback.
 *
 *   migrate-demo [--dry-run] [--json] [--migrations DIR] [--home DIR] FROM [TO]
 *
 * FROM and TO are versions ("-" for unbounded). Exit status: 0 when the run
 * succeeded, 1 when it did not, 2 on a usage error.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct progress {
    size_t counts[MIGRATE_NOT_RUN + 1];
    double seconds;
} progress;

static const char *level_name(int level)
{
    return level == MIGRATE_LOG_ERROR ? "error" : level == MIGRATE_LOG_WARN ? "warn" : "info";
}

static void on_event(const migrate_event *ev, void *payload)
{
    progress *p = payload;
    switch (ev->kind) {
    case MIGRATE_EVENT_PLAN:
        printf("plan: %zu migration%s in range\n", ev->total, ev->total == 1 ? "" : "s");
        break;
    case MIGRATE_EVENT_START:
        printf("[%zu/%zu] %s\n", ev->index + 1, ev->total, ev->migration->id);
        break;
    case MIGRATE_EVENT_LOG:
        printf("        %-5s %s\n", level_name(ev->level), ev->message);
        break;
    case MIGRATE_EVENT_DONE:
        p->counts[ev->migration->outcome]++;
        p->seconds += ev->migration->seconds;
        printf("        -> %s (%.1f ms)\n", migrate_outcome_name(ev->migration->outcome),
               ev->migration->seconds * 1000);
        if (ev->migration->error != NULL)
            printf("%s\n", ev->migration->error);
        break;
    case MIGRATE_EVENT_WARNING:
        printf("warning: %s\n", ev->message);
        break;
    }
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: migrate-demo [--dry-run] [--json] [--migrations DIR] [--home DIR] "
                    "FROM [TO]\n");
    return 2;
}

int main(int argc, char **argv)
{
    migrate_options opts;
    migrate_options_init(&opts);
    bool json = false;
    const char *versions[2] = {NULL, NULL};
    int nversions = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            opts.dry_run = true;
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
    progress p = {{0}, 0};
    opts.on_event = on_event;
    opts.payload = &p;
    printf("libmigrate %s: %s%s from %s to %s, home %s\n", migrate_library_version(),
           opts.dry_run ? "dry run of " : "", opts.migrations_dir ? opts.migrations_dir : "migrations",
           versions[0] ? versions[0] : "the start", versions[1] ? versions[1] : "the newest",
           opts.home ? opts.home : "$HOME");
    migrate_report *report = NULL;
    int rc = migrate_run(versions[0], versions[1], &opts, &report);
    printf("summary: %zu applied, %zu skipped (state), %zu skipped (check), %zu pending, "
           "%zu failed, %zu not run; %.1f ms in scripts\n",
           p.counts[MIGRATE_APPLIED], p.counts[MIGRATE_SKIPPED_STATE],
           p.counts[MIGRATE_SKIPPED_CHECK], p.counts[MIGRATE_PENDING], p.counts[MIGRATE_FAILED],
           p.counts[MIGRATE_NOT_RUN], p.seconds * 1000);
    if (rc != MIGRATE_OK)
        printf("result: %s: %s\n", migrate_strerror(rc),
               migrate_report_error(report) ? migrate_report_error(report) : "");
    else
        printf("result: ok\n");
    if (json) {
        char *text = migrate_report_json(report);
        printf("report:\n%s\n", text ? text : "(out of memory)");
        free(text);
    }
    migrate_report_free(report);
    return rc == MIGRATE_OK ? 0 : 1;
}
