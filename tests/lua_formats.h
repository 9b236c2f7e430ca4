/* lua_formats.h - a plain Lua state (every standard library) with the
 * library's format modules as globals, opened the way the sandbox opens
 * them for a script: `json` always, `yaml` and `dotenv` when asked. For
 * the tests, oracles, drivers and fuzz targets that drive the modules
 * outside a sandbox. Header-only, so a program that includes it stays one
 * translation unit (the fuzz targets' build rules want that). */
#ifndef LUA_FORMATS_H
#define LUA_FORMATS_H

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

enum { TL_WITH_YAML = 1, TL_WITH_DOTENV = 2 };

/* The state, or NULL when out of memory. */
static inline lua_State *tl_formats_state(unsigned with)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return NULL;
    luaL_openlibs(L);
    mig_open_json(L);
    if (with & TL_WITH_YAML) {
        lua_getfield(L, -1, "decode");
        mig_open_yaml(L, -1);
        lua_setglobal(L, "yaml");
        lua_pop(L, 1);
    }
    if (with & TL_WITH_DOTENV) {
        lua_pushvalue(L, -1);
        mig_open_dotenv(L, false); /* replaces the copy of json */
        lua_setglobal(L, "dotenv");
    }
    lua_setglobal(L, "json");
    return L;
}

#endif
