/* fuzz_edit.c - random edit sequences on documents (SPEC §5.1). The input
 * is a format byte (which backend: json, dotenv; yaml joins the table
 * below when it exists), the document text up to a NUL, and edit
 * operations, three bytes each: method, path choice, value choice. Every
 * edit must either raise, leaving the text exactly as it was, or leave a
 * text that still parses and reads back as the edit intended: the set value
 * at its path, a deleted key gone, a renamed key under its new name only,
 * a moved value at its new place, an appended item last. */
#include "fuzz_lua.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lua expressions giving (edit, decode) for each format byte value mod the
 * table's size. */
static const char *const backends[] = {
    "json.edit, json.decode",
    "dotenv.edit, dotenv.decode",
};

static const char EDITS[] =
    "local edit, decode, text, ops = ...\n"
    "local ok, d = pcall(edit, text)\n"
    "if not ok then assert(type(d) == 'string') return end\n"
    "local values = { 1, -2.5, 'str', 'line\\nbreak', true, false, json.null, {}, {1, 2},\n"
    "  {k = 'v', n = {deep = 1}}, json.array({}), '\\u{e9}', 2^40 }\n"
    "local keys = { 'a', 'b', 'new', 'x.y', '', 'k', 'n' }\n"
    "local function same(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    /* every path in the value, breadth first, at most 64 */
    "local function paths(root)\n"
    "  local out, queue = {}, { {} }\n"
    "  local i = 1\n"
    "  while queue[i] and #out < 64 do\n"
    "    local p = queue[i]; i = i + 1\n"
    "    local node = root\n"
    "    for _, e in ipairs(p) do node = node[e] end\n"
    "    if type(node) == 'table' then\n"
    "      local n = #node\n"
    "      if n > 0 then for j = 1, n do local q = {table.unpack(p)}; q[#q + 1] = j; out[#out + 1] = q; queue[#queue + 1] = q end\n"
    "      else for k in pairs(node) do if type(k) == 'string' then local q = {table.unpack(p)}; q[#q + 1] = k; out[#out + 1] = q; queue[#queue + 1] = q end end end\n"
    "    end\n"
    "  end\n"
    "  table.sort(out, function(x, y) return table.concat(x, '\\0', 1, #x) < table.concat(y, '\\0', 1, #y) end)\n"
    "  return out\n"
    "end\n"
    "local methods = { 'set', 'insert', 'delete', 'rename', 'move', 'append', 'set_new' }\n"
    "for at = 1, #ops - 2, 3 do\n"
    "  local m = methods[ops:byte(at) % #methods + 1]\n"
    "  local all = paths(decode(d:text()))\n"
    "  local p = all[ops:byte(at + 1) % math.max(#all, 1) + 1] or { 'a' }\n"
    "  local v = values[ops:byte(at + 2) % #values + 1]\n"
    "  local key = keys[ops:byte(at + 2) % #keys + 1]\n"
    "  local before = d:text()\n"
    "  local parent = {table.unpack(p, 1, #p - 1)}\n"
    "  local sibling = {table.unpack(parent)}; sibling[#sibling + 1] = key\n"
    "  local moved = d:get(p)\n"
    "  local done, err = pcall(function()\n"
    "    if m == 'set' then d:set(p, v)\n"
    "    elseif m == 'set_new' then d:set(sibling, v)\n"
    "    elseif m == 'insert' then d:insert(sibling, v, { after = type(p[#p]) == 'string' and p[#p] or nil })\n"
    "    elseif m == 'delete' then d:delete(p)\n"
    "    elseif m == 'rename' then d:rename(p, key)\n"
    "    elseif m == 'move' then d:move(p, { key })\n"
    "    elseif m == 'append' then d:append(parent, v) end\n"
    "  end)\n"
    "  if not done then\n"
    "    if type(err) ~= 'string' then error(err, 0) end\n"
    "    assert(d:text() == before, 'a refused ' .. m .. ' changed the text: ' .. err)\n"
    "  else\n"
    "    local after = decode(d:text())\n"
    "    local function at_path(q) local n = after; for _, e in ipairs(q) do if type(n) ~= 'table' then return nil end n = n[e] end return n end\n"
    "    if m == 'set' then assert(same(v, at_path(p)), 'set lost its value')\n"
    "    elseif m == 'set_new' or m == 'insert' then assert(same(v, at_path(sibling)), m .. ' lost its value')\n"
    "    elseif m == 'delete' and type(p[#p]) == 'string' then assert(at_path(p) == nil, 'deleted key still there')\n"
    "    elseif m == 'rename' and key ~= p[#p] then assert(at_path(p) == nil and same(moved, at_path(sibling)), 'rename')\n"
    "    elseif m == 'move' then assert(same(moved, after[key]), 'move lost its value')\n"
    "    elseif m == 'append' then local s = at_path(parent); assert(same(v, s[#s]), 'append') end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *backend = backends[data[0] % (sizeof backends / sizeof backends[0])];
    const char *text = (const char *)data + 1;
    const char *end = memchr(text, '\0', size - 1);
    size_t text_len = end != NULL ? (size_t)(end - text) : size - 1;
    const char *ops = end != NULL ? end + 1 : text + text_len;
    size_t ops_len = size - 1 - text_len - (end != NULL);
    if (ops_len > 60)
        ops_len = 60; /* bounded work per input */
    lua_State *L = fuzz_lua_state(TL_WITH_DOTENV);
    char prologue[256];
    snprintf(prologue, sizeof prologue, "return %s", backend);
    REQUIRE(luaL_loadstring(L, EDITS) == LUA_OK);
    REQUIRE(luaL_dostring(L, prologue) == LUA_OK);
    lua_pushlstring(L, text, text_len);
    lua_pushlstring(L, ops, ops_len);
    int rc = lua_pcall(L, 4, 0, 0);
    if (rc != LUA_OK && rc != LUA_ERRMEM) {
        fprintf(stderr, "edit sequence: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_close(L);
    return 0;
}
