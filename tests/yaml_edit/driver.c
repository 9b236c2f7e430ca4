/*
 * driver.c - runs a Lua script against the YAML editing backend, for the
 * differential suite (tests/yaml_edit/oracle.py reads what it writes).
 *
 * Globals: backend (lua/yaml_edit.lua's splicers), scan, json, yaml,
 * read(path), write(path, text). Usage: driver script.lua [args...]
 */
#include "../lua_formats.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

static int l_read(lua_State *L)
{
    char *data;
    size_t len;
    int rc = mig_read_file(luaL_checkstring(L, 1), 64u << 20, &data, &len);
    if (rc != 0)
        return luaL_error(L, "read %s: error %d", lua_tostring(L, 1), rc);
    lua_pushlstring(L, data, len);
    free(data);
    return 1;
}

static int l_write(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    FILE *f = fopen(luaL_checkstring(L, 1), "wb");
    if (f == NULL || fwrite(s, 1, len, f) != len || fclose(f) != 0)
        return luaL_error(L, "write %s failed", lua_tostring(L, 1));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
        return 2;
    }
    lua_State *L = tl_formats_state(TL_WITH_YAML);
    if (L == NULL)
        return 2;
    lua_register(L, "read", l_read);
    lua_register(L, "write", l_write);
    mig_push_yaml_scan(L);
    lua_setglobal(L, "scan");
    const mig_embedded *src = mig_embedded_find("lua/yaml_edit.lua");
    if (src == NULL || luaL_loadbufferx(L, src->data, src->len, "@lua/yaml_edit.lua", "t") != LUA_OK) {
        fprintf(stderr, "cannot load lua/yaml_edit.lua\n");
        return 2;
    }
    lua_getglobal(L, "scan");
    lua_getglobal(L, "yaml");
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    lua_setglobal(L, "backend");
    lua_newtable(L);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    if (luaL_dofile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}
