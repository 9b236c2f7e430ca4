/* fuzz_names.c - discovery over a tree of arbitrary names. Each input line
 * is "dir" or "dir/file"; the tree is made on disk and discovered. A
 * discovery either fails with a message or lists migrations in version
 * then number order, each id once, each path an existing file. */
#include "fuzz_tmp.h"
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) ((cond) ? (void)0 : abort())
#define MAX_LINES 24

static char base[64];

/* A usable single path component: not empty, ".", ".." and short. */
static bool component_ok(const char *s, size_t len)
{
    if (len == 0 || len > 120 || (len == 1 && s[0] == '.') || (len == 2 && !memcmp(s, "..", 2)))
        return false;
    return memchr(s, '/', len) == NULL && memchr(s, '\0', len) == NULL;
}

static void make_entry(const char *root, const char *line, size_t len)
{
    const char *slash = memchr(line, '/', len);
    size_t dlen = slash ? (size_t)(slash - line) : len;
    if (!component_ok(line, dlen))
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%.*s", root, (int)dlen, line);
    mkdir(path, 0755);
    if (slash == NULL)
        return;
    const char *file = slash + 1;
    size_t flen = len - dlen - 1;
    if (!component_ok(file, flen))
        return;
    snprintf(path, sizeof path, "%s/%.*s/%.*s", root, (int)dlen, line, (int)flen, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
}

static void check_report(const migrate_report *r)
{
    size_t n = migrate_report_count(r);
    for (size_t i = 0; i < n; i++) {
        const migrate_result *m = migrate_report_get(r, i);
        REQUIRE(m->outcome == MIGRATE_PENDING && m->id && m->version && m->path);
        REQUIRE(access(m->path, F_OK) == 0);
        if (i == 0)
            continue;
        const migrate_result *p = migrate_report_get(r, i - 1);
        int c = 2;
        REQUIRE(migrate_version_cmp(p->version, m->version, &c) == MIGRATE_OK);
        REQUIRE(c <= 0);
        REQUIRE(strcmp(p->id, m->id) != 0);
        if (c == 0) {
            /* Same version directory: numbers ascend by value. */
            const char *pn = strrchr(p->id, '/') + 1, *mn = strrchr(m->id, '/') + 1;
            size_t pl = strspn(pn, "0123456789"), ml = strspn(mn, "0123456789");
            while (pl > 1 && *pn == '0')
                pn++, pl--;
            while (ml > 1 && *mn == '0')
                mn++, ml--;
            REQUIRE(pl < ml || (pl == ml && memcmp(pn, mn, pl) < 0));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base[0] == '\0')
        snprintf(base, sizeof base, "%s", fuzz_scratch_dir("names"));
    char root[128];
    snprintf(root, sizeof root, "%s/m", base);
    REQUIRE(mkdir(root, 0755) == 0);
    const char *p = (const char *)data, *end = p + size;
    for (int lines = 0; p < end && lines < MAX_LINES; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        make_entry(root, p, len);
        p += len + 1;
    }
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = root;
    static const char *const bounds[][2] = {{NULL, NULL}, {"0.1.0", "2.0.0-rc.1"}};
    for (size_t b = 0; b < 2; b++) {
        migrate_report *r = NULL;
        int rc = migrate_discover(bounds[b][0], bounds[b][1], &o, &r);
        REQUIRE(r != NULL);
        REQUIRE(rc == MIGRATE_OK || rc == MIGRATE_EMANIFEST);
        if (rc == MIGRATE_OK)
            check_report(r);
        else
            REQUIRE(migrate_report_error(r) != NULL);
        migrate_report_free(r);
    }
    fuzz_remove_tree(root);
    return 0;
}
