/* fuzz_dotenv.c - dotenv.decode and .env documents on arbitrary text.
 * decode raises a message or gives key -> string (or json.null); then the
 * first key is set to a value cut from the input, a key is inserted after
 * it, and it is deleted: each edit either raises with the document's text
 * unchanged, or the new text decodes to exactly the intended values. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char EDITS[] =
    "local text = ...\n"
    "local ok, v = pcall(dotenv.decode, text)\n"
    "if not ok then assert(type(v) == 'string', 'decode error is not a message') return end\n"
    "for k, x in pairs(v) do\n"
    "  if type(k) ~= 'string' or (type(x) ~= 'string' and x ~= json.null) then\n"
    "    return 'decoded a ' .. type(k) .. ' -> ' .. type(x)\n"
    "  end\n"
    "end\n"
    "local k = next(v)\n"
    "if k == nil then k = 'NEW' end\n"
    "local function same_but(d, key, want)\n"
    "  local got = dotenv.decode(d:text())\n"
    "  if got[key] ~= want then return 'edit of ' .. key .. ' not applied: ' .. d:text() end\n"
    "  for kk, x in pairs(v) do\n"
    "    if kk ~= key and got[kk] ~= x then return 'edit of ' .. key .. ' changed ' .. kk end\n"
    "  end\n"
    "end\n"
    "local value = text:sub(-12)\n"
    "local edits = {\n"
    "  {'set', k, value, value},\n"
    "  {'insert', 'ZZ_NEW', value, value, {after = v[k] and k or nil, comment = 'c'}},\n"
    "  {'delete', k, nil, nil},\n"
    "}\n"
    "for _, e in ipairs(edits) do\n"
    "  local d = dotenv.edit(text)\n"
    "  local ok2, err = pcall(d[e[1]], d, {e[2]}, e[3], e[5])\n"
    "  if not ok2 then\n"
    "    if d:text() ~= text then return e[1] .. ' raised and changed the text' end\n"
    "    if type(err) ~= 'string' then return e[1] .. ' raised a ' .. type(err) end\n"
    "  else\n"
    "    local bad = same_but(d, e[2], e[4])\n"
    "    if bad then return bad end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_check(TL_WITH_DOTENV, EDITS, sizeof EDITS - 1, "=edits", "dotenv edits", data,
                   size);
    return 0;
}
