/* fuzz_yaml.c - yaml.decode on arbitrary text, through a Lua state as a
 * script sees it. decode either raises a message or gives a value; the
 * value encodes (unless nested deeper than encode's limit), its encoding
 * decodes without error, and encoding is stable: encode(decode(encode(v)))
 * is encode(v), so decode(encode(v)) is v. */
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
    "local ok, v = pcall(yaml.decode, text)\n"
    "if not ok then assert(type(v) == 'string', 'decode error is not a message') return end\n"
    "local ok2, once = pcall(yaml.encode, v)\n"
    "if not ok2 then\n"
    "  if tostring(once):find('nesting deeper than', 1, true) then return end\n"
    "  return 'encode failed: ' .. tostring(once)\n"
    "end\n"
    "local ok3, back = pcall(yaml.decode, once)\n"
    "if not ok3 then return 'decode of the encoding failed: ' .. back .. '\\n' .. once end\n"
    "local twice = yaml.encode(back)\n"
    "if once ~= twice then return 'unstable:\\n' .. once .. '\\nvs\\n' .. twice end\n"
    "yaml.encode(v, {indent = 4})\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return 0;
    luaL_openlibs(L);
    mig_open_json(L);
    lua_getfield(L, -1, "decode");
    mig_open_yaml(L, -1);
    lua_setglobal(L, "yaml");
    lua_pop(L, 1);
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
            fprintf(stderr, "yaml round trip: %s\n", msg);
            abort();
        }
    }
    lua_close(L);
    return 0;
}
