/*
 * oracle.c - the C side the Python binding's tests compare against.
 *
 *   oracle layout
 *       prints "name size offset" for migrate_options, migrate_result,
 *       migrate_change, migrate_event and migrate_version, as the compiler
 *       lays them out from include/migrate.h (the binding's ctypes structs
 *       must agree), then "NAME value 0" for the constants the binding
 *       copies (the change kinds among them).
 *   oracle run MIGRATIONS HOME STATE FROM TO DRY
 *       runs migrate_run() (FROM/TO "-" for NULL, DRY 0 or 1) and prints
 *       migrate_report_json() of the report, exactly.
 */
#include <migrate.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(type, name) printf("%s.%s %zu %zu\n", #type, #name, sizeof(((type *)0)->name), offsetof(type, name))

static void layout(void)
{
    printf("migrate_options %zu 0\n", sizeof(migrate_options));
    FIELD(migrate_options, version);
    FIELD(migrate_options, migrations_dir);
    FIELD(migrate_options, home);
    FIELD(migrate_options, state_path);
    FIELD(migrate_options, allowed_roots);
    FIELD(migrate_options, dry_run);
    FIELD(migrate_options, rehearse);
    FIELD(migrate_options, recover_corrupt_state);
    FIELD(migrate_options, memory_limit);
    FIELD(migrate_options, rehearsal_memory_limit);
    FIELD(migrate_options, timeout_ms);
    FIELD(migrate_options, lock_timeout_ms);
    FIELD(migrate_options, on_event);
    FIELD(migrate_options, payload);
    printf("migrate_result %zu 0\n", sizeof(migrate_result));
    FIELD(migrate_result, id);
    FIELD(migrate_result, version);
    FIELD(migrate_result, path);
    FIELD(migrate_result, outcome);
    FIELD(migrate_result, error);
    FIELD(migrate_result, seconds);
    FIELD(migrate_result, rehearsal);
    printf("migrate_change %zu 0\n", sizeof(migrate_change));
    FIELD(migrate_change, kind);
    FIELD(migrate_change, path);
    FIELD(migrate_change, type);
    FIELD(migrate_change, from);
    FIELD(migrate_change, target);
    FIELD(migrate_change, mode);
    FIELD(migrate_change, old_mode);
    FIELD(migrate_change, diff);
    FIELD(migrate_change, size);
    printf("migrate_event %zu 0\n", sizeof(migrate_event));
    FIELD(migrate_event, kind);
    FIELD(migrate_event, index);
    FIELD(migrate_event, total);
    FIELD(migrate_event, migration);
    FIELD(migrate_event, level);
    FIELD(migrate_event, message);
    FIELD(migrate_event, rehearsal);
    printf("migrate_version %zu 0\n", sizeof(migrate_version));
    FIELD(migrate_version, major);
    FIELD(migrate_version, minor);
    FIELD(migrate_version, patch);
    FIELD(migrate_version, prerelease);
    FIELD(migrate_version, prerelease_len);
    FIELD(migrate_version, build);
    FIELD(migrate_version, build_len);
    printf("MIGRATE_OPTIONS_VERSION %u 0\n", MIGRATE_OPTIONS_VERSION);
    printf("MIGRATE_VERSION_MAJOR %d 0\n", MIGRATE_VERSION_MAJOR);
    printf("MIGRATE_ECANCELED %d 0\n", MIGRATE_ECANCELED);
    printf("MIGRATE_MAX_DIFF_BYTES %zu 0\n", MIGRATE_MAX_DIFF_BYTES);
    printf("MIGRATE_CHANGE_CREATED %d 0\n", (int)MIGRATE_CHANGE_CREATED);
    printf("MIGRATE_CHANGE_MODIFIED %d 0\n", (int)MIGRATE_CHANGE_MODIFIED);
    printf("MIGRATE_CHANGE_REMOVED %d 0\n", (int)MIGRATE_CHANGE_REMOVED);
    printf("MIGRATE_CHANGE_RENAMED %d 0\n", (int)MIGRATE_CHANGE_RENAMED);
    printf("MIGRATE_CHANGE_MODE %d 0\n", (int)MIGRATE_CHANGE_MODE);
}

static const char *arg(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "layout") == 0) {
        layout();
        return 0;
    }
    if (argc != 8 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "usage: oracle layout | oracle run MIGRATIONS HOME STATE FROM TO DRY\n");
        return 2;
    }
    migrate_options opts;
    if (migrate_options_init(&opts, MIGRATE_OPTIONS_VERSION) != MIGRATE_OK)
        return 3;
    opts.migrations_dir = argv[2];
    opts.home = argv[3];
    opts.state_path = argv[4];
    opts.dry_run = strcmp(argv[7], "1") == 0;
    migrate_report *report = NULL;
    migrate_run(arg(argv[5]), arg(argv[6]), &opts, &report);
    char *json = migrate_report_json(report);
    migrate_report_free(report);
    if (json == NULL)
        return 4;
    fputs(json, stdout);
    free(json);
    return 0;
}
