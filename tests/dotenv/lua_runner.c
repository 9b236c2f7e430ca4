/* lua_runner.c - runs a Lua file with the json and dotenv modules (and the
 * .env backend as `dotenv_backend`) over stdin, for tests/dotenv/diff.py:
 * the oracle comparison needs the library's own decode and splicers
 * driven from Python. Usage: lua_runner script.lua < input */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s script.lua < input\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return 1;
    luaL_openlibs(L);
    mig_open_json(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "json");
    mig_open_dotenv(L, true);
    lua_setglobal(L, "dotenv_backend");
    lua_setglobal(L, "dotenv");
    int rc = 0;
    if (luaL_dofile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        rc = 1;
    }
    lua_close(L);
    return rc;
}
