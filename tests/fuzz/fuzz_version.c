/* fuzz_version.c - SemVer parsing and precedence on arbitrary text.
 * The input is two versions separated by the first newline. Beyond not
 * crashing: parse and cmp agree on what is valid, precedence is
 * antisymmetric and reflexive, and the parsed parts point into the text. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) ((cond) ? (void)0 : abort())

static void check_parts(const char *text, const migrate_version *v)
{
    size_t len = strlen(text);
    if (v->prerelease_len > 0)
        REQUIRE(v->prerelease >= text && v->prerelease + v->prerelease_len <= text + len);
    if (v->build_len > 0)
        REQUIRE(v->build >= text && v->build + v->build_len <= text + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a = malloc(size + 1);
    if (a == NULL)
        return 0;
    memcpy(a, data, size);
    a[size] = '\0';
    /* Without the NUL: the length-taking parser must not read past len. */
    char *raw = malloc(size ? size : 1);
    memcpy(raw, data, size);
    migrate_version vr;
    (void)mig_version_parse(raw, size, &vr, NULL);
    free(raw);

    char *nl = strchr(a, '\n');
    const char *b = "1.0.0";
    if (nl != NULL) {
        *nl = '\0';
        b = nl + 1;
    }
    migrate_version va, vb;
    bool oka = migrate_version_parse(a, &va) == MIGRATE_OK;
    bool okb = migrate_version_parse(b, &vb) == MIGRATE_OK;
    if (oka)
        check_parts(a, &va);
    if (okb)
        check_parts(b, &vb);
    int ab = 2, ba = 2, aa = 2;
    int rc = migrate_version_cmp(a, b, &ab);
    REQUIRE((rc == MIGRATE_OK) == (oka && okb));
    if (oka && okb) {
        REQUIRE(migrate_version_cmp(b, a, &ba) == MIGRATE_OK);
        REQUIRE(ab == -ba && ab >= -1 && ab <= 1);
        REQUIRE(migrate_version_compare(&va, &vb) == ab);
        REQUIRE(migrate_version_cmp(a, a, &aa) == MIGRATE_OK && aa == 0);
        bool in = false;
        REQUIRE(migrate_version_in_range(a, NULL, b, &in) == MIGRATE_OK);
        REQUIRE(in == (ab <= 0));
        if (ab <= 0) {
            REQUIRE(migrate_version_in_range(b, a, b, &in) == MIGRATE_OK);
            REQUIRE(in == (ab < 0));
        }
    }
    free(a);
    return 0;
}
