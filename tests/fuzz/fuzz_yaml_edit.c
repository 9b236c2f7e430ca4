/* fuzz_yaml_edit.c - random edit sequences on YAML documents. The input is
 * a text, a NUL, then bytes that choose edits: a method, a path into what
 * the document decodes to, a key and a value from small pools. Each edit
 * either raises (a message, and the document's text is what it was), or
 * the new text still decodes with yaml.decode and holds the intended
 * change where the edit made it. */
#include "fuzz_lua.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char EDITS[] =
    "local text, ops = ...\n"
    "local ok, doc = pcall(yaml.edit, text)\n"
    "if not ok then assert(type(doc) == 'string', 'yaml.edit error is not a message') return end\n"
    "local at = 0\n"
    "local function pick(n) at = at + 1 return (ops:byte(at) or 0) % n + 1 end\n"
    "local VALUES = { 1, 'x', 'a: b', true, yaml.null, {}, {1, 2}, 'two\\nlines', '${V}',\n"
    "  3.5, '', 'on', {k = 'v'}, '#', '- x', -7, 'a, b', 'x{y}]' }\n"
    "local KEYS = { 'a', 'new', 'key with space', '\\xC3\\xBC', 'x.y', '\"q\"', 'n2', 'k{1}' }\n"
    "local function same(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
    "    return a == b or (type(a) == 'number' and type(b) == 'number' and a == b)\n"
    "  end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function at_path(v, path)\n"
    "  for _, k in ipairs(path) do\n"
    "    if type(v) ~= 'table' then return nil end\n"
    "    v = v[k]\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "local function copy(p) local c = {} for i, k in ipairs(p) do c[i] = k end return c end\n"
    "-- a path to an existing node, chosen by the op bytes\n"
    "local function walk(root)\n"
    "  local path, v = {}, root\n"
    "  while type(v) == 'table' and pick(3) ~= 1 do\n"
    "    local keys = {}\n"
    "    if #v > 0 then for i = 1, #v do keys[i] = i end\n"
    "    else for k in pairs(v) do if type(k) == 'string' then keys[#keys + 1] = k end end\n"
    "      table.sort(keys) end\n"
    "    if #keys == 0 then break end\n"
    "    local k = keys[pick(#keys)]\n"
    "    path[#path + 1] = k\n"
    "    v = v[k]\n"
    "  end\n"
    "  return path, v\n"
    "end\n"
    "for _ = 1, 8 do\n"
    "  if at >= #ops then return end\n"
    "  local before = doc:text()\n"
    "  local root = yaml.decode(before)\n"
    "  local path, node = walk(root)\n"
    "  local method = ({ 'set', 'insert', 'delete', 'rename', 'move', 'append' })[pick(6)]\n"
    "  local value, key = VALUES[pick(#VALUES)], KEYS[pick(#KEYS)]\n"
    "  local args, target = {}, copy(path)\n"
    "  if method == 'set' then\n"
    "    if type(node) == 'table' and #node == 0 and pick(2) == 1 then target[#target + 1] = key end\n"
    "    args = { target, value }\n"
    "  elseif method == 'insert' then\n"
    "    target[#target + 1] = key\n"
    "    local sibling = type(node) == 'table' and next(node) or nil\n"
    "    args = { target, value, { after = pick(2) == 1 and sibling or nil, comment = 'c' } }\n"
    "  elseif method == 'rename' or method == 'move' then\n"
    "    if #path == 0 then goto continue end\n"
    "    target = { key }\n"
    "    if method == 'rename' then target = copy(path) target[#target] = key end\n"
    "    args = method == 'rename' and { path, key } or { path, target }\n"
    "  elseif method == 'append' then\n"
    "    args = { path, value }\n"
    "  else\n"
    "    args = { path }\n"
    "  end\n"
    "  do\n"
    "    local done, err = pcall(doc[method], doc, table.unpack(args, 1, 3))\n"
    "    local after = doc:text()\n"
    "    if not done then\n"
    "      assert(type(err) == 'string', 'an edit error is not a message')\n"
    "      assert(after == before, method .. ' raised and changed the text: ' .. err)\n"
    "    else\n"
    "      local now = yaml.decode(after)\n"
    "      if method == 'set' or method == 'insert' then\n"
    "        assert(same(at_path(now, target), value), method .. ': the value is not there')\n"
    "      elseif method == 'append' then\n"
    "        local seq = at_path(now, path)\n"
    "        assert(same(seq[#seq], value), 'append: not the last item')\n"
    "      elseif method == 'rename' or method == 'move' then\n"
    "        assert(same(at_path(now, target), node), method .. ': the value did not follow')\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  ::continue::\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    lua_State *L = fuzz_lua_state(TL_WITH_YAML);
    if (luaL_loadbufferx(L, EDITS, sizeof EDITS - 1, "=edits", "t") != LUA_OK)
        abort();
    lua_pushlstring(L, (const char *)data, text_len);
    lua_pushlstring(L, nul ? (const char *)nul + 1 : "", nul ? size - text_len - 1 : 0);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* only the invariants' own failures are findings; running out of
         * the memory or depth Lua allows is not */
        if (msg == NULL || strstr(msg, "edits:") != NULL) {
            fprintf(stderr, "%s\n", msg ? msg : "(no message)");
            abort();
        }
    }
    lua_close(L);
    return 0;
}
