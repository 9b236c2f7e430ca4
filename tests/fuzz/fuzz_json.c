/* fuzz_json.c - json.decode on arbitrary text, through a Lua state as a
 * script sees it. Whatever decodes must encode, and encoding is stable:
 * decode(encode(v)) encodes to the same text. */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) ((cond) ? (void)0 : abort())

static const char ROUND_TRIP[] =
    "local text = ...\n"
    "local ok, v = pcall(json.decode, text)\n"
    "if not ok then assert(type(v) == 'string', 'decode error is not a message') return end\n"
    "local ok2, once = pcall(json.encode, v)\n"
    "if not ok2 then return 'encode failed: ' .. tostring(once) end\n"
    "local twice = json.encode(json.decode(once))\n"
    "if once ~= twice then return 'unstable: ' .. once .. ' vs ' .. twice end\n"
    "json.encode(v, {indent = 2})\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return 0;
    luaL_openlibs(L);
    mig_open_json(L);
    lua_setglobal(L, "json");
    REQUIRE(luaL_loadbufferx(L, ROUND_TRIP, sizeof ROUND_TRIP - 1, "=round_trip", "t") == LUA_OK);
    lua_pushlstring(L, (const char *)data, size);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK || lua_isstring(L, -1)) {
        /* A raised error other than out of memory, or a broken promise. */
        const char *msg = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM)
            msg = NULL;
        if (msg != NULL) {
            fprintf(stderr, "json round trip: %s\n", msg);
            abort();
        }
    }
    lua_close(L);
    return 0;
}
