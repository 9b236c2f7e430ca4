/* fuzz_lua.h - the Lua state the script-level fuzz targets share: the
 * standard libraries and the `json` global, plus `yaml` and `dotenv` when
 * asked, opened the way the sandbox opens them for a script. Header-only,
 * like fuzz_tmp.h, so each target stays a single translation unit for its
 * build rule (libFuzzer's and the replay's). */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include "../lua_formats.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond) ((cond) ? (void)0 : abort())

/* A fresh state with the globals json and, per `with` (TL_WITH_*), yaml
 * and dotenv; aborts when out of memory. */
static inline lua_State *fuzz_lua_state(unsigned with)
{
    lua_State *L = tl_formats_state(with);
    REQUIRE(L != NULL);
    return L;
}

/* Runs `chunk` (its text, named `name`) on the input text in a fresh state
 * and closes it. The chunk returns nothing when every promise held, or a
 * message saying which broke; that message, or an error the chunk raised
 * (other than running out of memory), is a finding: printed after `label`,
 * then abort(). */
static inline void fuzz_lua_check(unsigned with, const char *chunk, size_t chunk_len,
                                  const char *name, const char *label, const uint8_t *data,
                                  size_t size)
{
    lua_State *L = fuzz_lua_state(with);
    REQUIRE(luaL_loadbufferx(L, chunk, chunk_len, name, "t") == LUA_OK);
    lua_pushlstring(L, (const char *)data, size);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK || lua_isstring(L, -1)) {
        const char *msg = rc == LUA_ERRMEM ? NULL : lua_tostring(L, -1);
        if (msg != NULL) {
            fprintf(stderr, "%s: %s\n", label, msg);
            abort();
        }
    }
    lua_close(L);
}

#endif
