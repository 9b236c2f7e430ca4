/* dotenv.c - the `dotenv` module: lua/dotenv.lua run with the json table
 * (its ordered objects and json.null), a private utf8 library (the
 * script's own utf8 global may be replaced or still unopened) and a loader
 * of the document layer for dotenv.edit. */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

/* doc_new(): the document layer's new(backend, text), loaded (and cached
 * by doc.c) only when a script first calls dotenv.edit. */
static int doc_new(lua_State *L)
{
    mig_push_doc(L);
    lua_getfield(L, -1, "new");
    return 1;
}

/* Stack: json. Replaces it with the dotenv table (and the backend). */
void mig_open_dotenv(lua_State *L, bool with_backend)
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
    lua_pushcfunction(L, doc_new);
    lua_call(L, 3, with_backend ? 2 : 1);
}
