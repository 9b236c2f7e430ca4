/* fuzz_pattern.c - the sandbox's pattern functions (src/pattern.c) against
 * the stock Lua 5.4 ones on fuzzer input; any difference in values, types
 * or error message aborts with both printed.
 * Input: byte 0 picks the function, byte 1 the init (a signed byte; 0x80:
 * none), then the pattern, a 0xff byte, and the subject. */
#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stock matcher backtracks exponentially in the number of
 * repetitions: the bounds keep every input well under a second. */
#define MAX_PATTERN 40
#define MAX_SUBJECT 24
#define MAX_REPEATS 3

static const char DRIVER[] =
    "local select, tostring, type, concat, pcall = select, tostring, type, table.concat, pcall\n"
    "local function ser(ok, ...)\n"
    "  local out = {tostring(ok)}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    out[#out + 1] = type(v) .. ':' .. tostring(v)\n"
    "  end\n"
    "  return concat(out, '\\1')\n"
    "end\n"
    "local function collect(s, p, a)\n"
    "  local out, iter = {}, string.gmatch(s, p, a)\n"
    "  for _ = 1, 200 do\n"
    "    local r = table.pack(iter())\n"
    "    if r[1] == nil then break end\n"
    "    for i = 1, r.n do out[#out + 1] = type(r[i]) .. ':' .. tostring(r[i]) end\n"
    "  end\n"
    "  return concat(out, ',')\n"
    "end\n"
    "local t = {a = 'A', b = false, [1] = 'one', c = {}}\n"
    "local function f(x, y) if x == 'b' then return nil end return y or 7 end\n"
    "local ops = {\n"
    "  function(s, p, a) return ser(pcall(string.find, s, p, a)) end,\n"
    "  function(s, p, a) return ser(pcall(string.find, s, p, a, true)) end,\n"
    "  function(s, p, a) return ser(pcall(string.match, s, p, a)) end,\n"
    "  function(s, p, a) return ser(pcall(collect, s, p, a)) end,\n"
    "  function(s, p, a) return ser(pcall(string.gsub, s, p, '<%0%1>', a)) end,\n"
    "  function(s, p, a) return ser(pcall(string.gsub, s, p, t, a)) end,\n"
    "  function(s, p, a) return ser(pcall(string.gsub, s, p, f, a)) end,\n"
    "  function(s, p, a) return ser(pcall(string.gsub, s, p, '%2%%', a)) end,\n"
    "}\n"
    "return function(op, s, p, a) return ops[op % #ops + 1](s, p, a) end\n";

static lua_State *stock, *ours;

static lua_State *new_state(bool mine)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    if (mine) {
        lua_getglobal(L, LUA_STRLIBNAME);
        mig_open_patterns(L, -1);
        lua_pop(L, 1);
    }
    if (luaL_dostring(L, DRIVER) != LUA_OK)
        abort();
    lua_setglobal(L, "RUN");
    return L;
}

static size_t repeats(const uint8_t *p, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?';
    return count;
}

static const char *run(lua_State *L, int op, const uint8_t *s, size_t ls, const uint8_t *p,
                       size_t lp, int init, size_t *len)
{
    lua_settop(L, 0);
    lua_getglobal(L, "RUN");
    lua_pushinteger(L, op);
    lua_pushlstring(L, (const char *)s, ls);
    lua_pushlstring(L, (const char *)p, lp);
    if (init == -128)
        lua_pushnil(L);
    else
        lua_pushinteger(L, init);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK)
        abort();
    return lua_tolstring(L, -1, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (stock == NULL) {
        stock = new_state(false);
        ours = new_state(true);
    }
    int op = data[0];
    int init = (int)(int8_t)data[1];
    const uint8_t *p = data + 2, *end = data + size;
    const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));
    size_t lp = sep != NULL ? (size_t)(sep - p) : (size_t)(end - p);
    const uint8_t *s = sep != NULL ? sep + 1 : end;
    size_t ls = (size_t)(end - s);
    if (lp > MAX_PATTERN || ls > MAX_SUBJECT || repeats(p, lp) > MAX_REPEATS)
        return 0;
    size_t l1, l2;
    const char *r1 = run(stock, op, s, ls, p, lp, init, &l1);
    const char *r2 = run(ours, op, s, ls, p, lp, init, &l2);
    if (l1 != l2 || memcmp(r1, r2, l1) != 0) {
        fprintf(stderr, "pattern difference, op %d init %d\n  pattern '%.*s'\n  subject '%.*s'\n"
                        "  stock %.*s\n  ours  %.*s\n",
                op, init, (int)lp, (const char *)p, (int)ls, (const char *)s, (int)l1, r1,
                (int)l2, r2);
        abort();
    }
    lua_settop(stock, 0);
    lua_settop(ours, 0);
    /* The states persist across inputs; keep their garbage bounded. */
    lua_gc(stock, LUA_GCSTEP, 0);
    lua_gc(ours, LUA_GCSTEP, 0);
    return 0;
}
