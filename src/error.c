/* error.c - return codes and error text, and growing arrays. */
#include "internal.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *migrate_strerror(int code)
{
    switch (code) {
    case MIGRATE_OK: return "success";
    case MIGRATE_EFAILED: return "a migration failed";
    case MIGRATE_EINVAL: return "invalid argument";
    case MIGRATE_EMANIFEST: return "invalid migrations tree or script";
    case MIGRATE_ESTATE: return "corrupt state file";
    case MIGRATE_ELOCKED: return "state is locked by another run";
    case MIGRATE_EIO: return "input/output error";
    case MIGRATE_ENOMEM: return "out of memory";
    case MIGRATE_ECANCELED: return "the run was cancelled by its event callback";
    default: return "unknown error code";
    }
}

int mig_errf(char *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, MIG_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *mig_strerror(int errnum, char *buf, size_t len)
{
    /* _GNU_SOURCE selects the GNU strerror_r, which may return a static
     * string instead of filling buf. */
    return strerror_r(errnum, buf, len);
}

int mig_raise_at_caller(lua_State *L)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

void *mig_grow(void *items, size_t *cap, size_t size, size_t first)
{
    size_t n = *cap ? *cap : first / 2;
    if (n > SIZE_MAX / 2 / size)
        return NULL;
    void *bigger = realloc(items, 2 * n * size);
    if (bigger != NULL)
        *cap = 2 * n;
    return bigger;
}
