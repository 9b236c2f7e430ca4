/* cut.c - bounded copies of the text a script hands the library. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A script controls the length of its reasons, errors and log lines; the
 * host copies them out of the Lua state (where memory_limit no longer
 * counts them) into the report and again into its JSON. So each copy keeps
 * at most `max` bytes and says how much it left out. */
char *mig_strndup_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return strndup(s, len);
    size_t keep = max;
    /* Back up to a character boundary so the kept text stays valid UTF-8
     * (JSON readers reject a split sequence). */
    for (int i = 0; i < 3 && keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80; i++)
        keep--;
    char mark[64];
    int m = snprintf(mark, sizeof mark, "\xE2\x80\xA6 [cut: %zu bytes]", len - keep);
    char *out = malloc(keep + (size_t)m + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, s, keep);
    memcpy(out + keep, mark, (size_t)m + 1);
    return out;
}

char *mig_strdup_cut(const char *s)
{
    return mig_strndup_cut(s, strlen(s), MIGRATE_MAX_SCRIPT_TEXT);
}
