/* dotenv.c - the `dotenv` module: lua/dotenv.lua run with the json table
 * (its ordered objects and json.null) and a private utf8 library (the
 * script's own utf8 global may be replaced or still unopened). */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

/* Stack: json. Replaces it with the dotenv table. */
void mig_open_dotenv(lua_State *L)
{
    luaL_checkstack(L, 4, "dotenv");
    const mig_embedded *src = mig_embedded_find("lua/dotenv.lua");
    if (src == NULL)
        luaL_error(L, "lua/dotenv.lua is not embedded in this build");
    if (luaL_loadbufferx(L, src->data, src->len, "@lua/dotenv.lua", "t") != LUA_OK)
        lua_error(L);
    lua_insert(L, -2);
    lua_pushcfunction(L, luaopen_utf8);
    lua_call(L, 0, 1);
    lua_call(L, 2, 1);
}
