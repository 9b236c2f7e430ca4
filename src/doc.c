/*
 * doc.c - loads the document layer (lua/doc.lua, SPEC §5.1) and the
 * editors' Lua backends on first use.
 *
 * Most scripts never edit a file, and compiling a chunk costs far more than
 * the rest of a sandbox, so nothing is compiled until a script first calls
 * json.edit, yaml.edit, dotenv.edit or fs.edit; the result is then cached in
 * the registry for the rest of the lua_State's life.
 */
#include "internal.h"

#include <lauxlib.h>

/* Registry key of the table: chunk name -> what the chunk returned. */
static const char KEY_DOC_CHUNKS = 0;

void mig_push_doc_chunk(lua_State *L, const char *name)
{
    luaL_checkstack(L, 6, "doc");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_DOC_CHUNKS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_DOC_CHUNKS);
    }
    if (lua_getfield(L, -1, name) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    const mig_embedded *chunk = mig_embedded_find(name);
    if (chunk == NULL)
        luaL_error(L, "%s is not embedded in this build", name);
    lua_pushfstring(L, "@%s", name);
    if (luaL_loadbufferx(L, chunk->data, chunk->len, lua_tostring(L, -1), "t") != LUA_OK)
        lua_error(L);
    lua_remove(L, -2);
    mig_json_push_internals(L);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1))
        luaL_error(L, "%s returned nothing", name);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    lua_remove(L, -2);
}

void mig_push_doc(lua_State *L)
{
    mig_push_doc_chunk(L, "lua/doc.lua");
}
