/* fuzz_json.c - json.decode on arbitrary text, through a Lua state as a
 * script sees it. Whatever decodes must encode, and encoding is stable:
 * decode(encode(v)) encodes to the same text. A decoded object then has a
 * key deleted and set again, one added and one renamed: the set key and the
 * added one must come last, in that order, and nothing else may change. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ROUND_TRIP[] =
    "local text = ...\n"
    "local ok, v = pcall(json.decode, text)\n"
    "if not ok then assert(type(v) == 'string', 'decode error is not a message') return end\n"
    "local ok2, once = pcall(json.encode, v)\n"
    "if not ok2 then return 'encode failed: ' .. tostring(once) end\n"
    "local twice = json.encode(json.decode(once))\n"
    "if once ~= twice then return 'unstable: ' .. once .. ' vs ' .. twice end\n"
    "json.encode(v, {indent = 2})\n"
    "if getmetatable(v) ~= 'json object' or next(v) == nil or v.zz_added ~= nil then return end\n"
    "local n = 0\n"
    "for _ in pairs(v) do n = n + 1 end\n"
    "local k = next(v)\n"
    "local value = v[k]\n"
    "v[k] = nil\n"
    "v[k] = value\n"
    "v.zz_added = 1\n"
    "local out = json.encode(v)\n"
    "local tail = json.encode(k) .. ':' .. json.encode(value) .. ',\"zz_added\":1}'\n"
    "if out:sub(-#tail) ~= tail then return 'set again, not last: ' .. out end\n"
    "local m = 0\n"
    "for _ in pairs(json.decode(out)) do m = m + 1 end\n"
    "if m ~= n + 1 then return 'keys lost: ' .. out end\n"
    "if v[k .. '~'] == nil then\n"
    "  json.rename(v, k, k .. '~')\n"
    "  local renamed = json.encode(v)\n"
    "  local want = json.encode(k .. '~') .. ':' .. json.encode(value) .. ',\"zz_added\":1}'\n"
    "  if renamed:sub(-#want) ~= want then return 'renamed, moved: ' .. renamed end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_check(0, ROUND_TRIP, sizeof ROUND_TRIP - 1, "=round_trip", "json round trip", data,
                   size);
    return 0;
}
