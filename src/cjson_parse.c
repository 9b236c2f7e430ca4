/* cjson_parse.c - the library's one way into cJSON's parser.
 *
 * cJSON_ParseWithLengthOpts resets and sets a file-level static
 * (global_error, for cJSON_GetErrorPtr) on every call, so two runs loading
 * their state on two threads race on it, however separate their files.
 * The library never reads that static; it only needs the writes not to
 * overlap, so every parse it makes goes through this mutex. A parse is
 * short (a state file, or a json.decode text whose syntax is already
 * checked), so the lock is held briefly. A host that calls cJSON itself on
 * another thread still races with cJSON there; that is cJSON's limitation,
 * noted in RELIABILITY.md. */
#include "internal.h"

#include <cJSON.h>
#include <pthread.h>

static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

cJSON *mig_cjson_parse(const char *text, size_t len, const char **end, bool require_null)
{
    pthread_mutex_lock(&parse_lock);
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, end, require_null);
    pthread_mutex_unlock(&parse_lock);
    return root;
}
