/* fuzz_yaml.c - yaml.decode on arbitrary text, through a Lua state as a
 * script sees it. decode either raises a message or gives a value; the
 * value encodes (unless nested deeper than encode's limit), its encoding
 * decodes without error, and encoding is stable: encode(decode(encode(v)))
 * is encode(v), so decode(encode(v)) is v. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ROUND_TRIP[] =
    "local text = ...\n"
    "local ok, v = pcall(yaml.decode, text)\n"
    "if not ok then assert(type(v) == 'string', 'decode error is not a message') return end\n"
    "local ok2, once = pcall(yaml.encode, v)\n"
    "if not ok2 then\n"
    "  if tostring(once):find('nesting deeper than', 1, true) then return end\n"
    "  return 'encode failed: ' .. tostring(once)\n"
    "end\n"
    "local ok3, back = pcall(yaml.decode, once)\n"
    "if not ok3 then return 'decode of the encoding failed: ' .. back .. '\\n' .. once end\n"
    "local twice = yaml.encode(back)\n"
    "if once ~= twice then return 'unstable:\\n' .. once .. '\\nvs\\n' .. twice end\n"
    "yaml.encode(v, {indent = 4})\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_check(TL_WITH_YAML, ROUND_TRIP, sizeof ROUND_TRIP - 1, "=round_trip",
                   "yaml round trip", data, size);
    return 0;
}
