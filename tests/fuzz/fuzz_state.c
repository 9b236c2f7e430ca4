/* fuzz_state.c - the state loader on arbitrary file content. A load either
 * fails cleanly or gives a state whose ids are all found again, which
 * survives a record and a save, and reloads with the same ids plus one. */
#include "fuzz_tmp.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) ((cond) ? (void)0 : abort())

static char dir[64];

static void make_dir(void)
{
    if (dir[0] == '\0')
        snprintf(dir, sizeof dir, "%s", fuzz_scratch_dir("state"));
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, size, f) == size || size == 0);
    REQUIRE(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_dir();
    char path[128], saved[128], err[MIG_ERRLEN];
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(saved, sizeof saved, "%s/saved.json", dir);
    write_file(path, data, size);
    mig_state *s = NULL;
    int rc = mig_state_load(path, &s, err);
    REQUIRE(rc == MIGRATE_OK || rc == MIGRATE_ESTATE);
    REQUIRE((rc == MIGRATE_OK) == (s != NULL));
    if (s == NULL) {
        REQUIRE(err[0] != '\0');
        return 0;
    }
    size_t n = mig_state_count(s);
    for (size_t i = 0; i < n; i++) {
        const char *id = mig_state_id(s, i);
        REQUIRE(id != NULL && mig_state_has(s, id));
        (void)mig_state_sha256(s, id);
    }
    const char *fresh = "v9.9.9/999_fuzz_record";
    bool had = mig_state_has(s, fresh);
    if (!had)
        REQUIRE(mig_state_record(s, fresh, "applied", 0.5, NULL) == MIGRATE_OK);
    REQUIRE(mig_state_save(s, saved, err) == MIGRATE_OK);
    mig_state *again = NULL;
    REQUIRE(mig_state_load(saved, &again, err) == MIGRATE_OK);
    REQUIRE(mig_state_count(again) == n + !had);
    for (size_t i = 0; i < n; i++)
        REQUIRE(strcmp(mig_state_id(again, i), mig_state_id(s, i)) == 0);
    mig_state_free(again);
    mig_state_free(s);
    unlink(saved);
    return 0;
}
